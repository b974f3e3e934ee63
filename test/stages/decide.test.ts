import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import type { EmbeddingBatch, ManifestRow } from '../../src/core/sample.js';
import { StreamingDbp, type StreamingDbpOptions } from '../../src/core/streaming-dbp.js';
import { decide, decideBatchRows } from '../../src/stages/decide.js';
import type { DecidedRows } from '../../src/stages/manifest-sink.js';

const K = 6;
const DBP: StreamingDbpOptions = {
  k: K,
  params: { keepRatio: 0.4 },
  calibration: {
    counts: Float64Array.from([17, 16, 18, 17, 15, 17]),
    dIntra: Float64Array.from([0.1, 0.15, 0.2, 0.12, 0.3, 0.25]),
    dInter: Float64Array.from([0.6, 0.5, 0.55, 0.7, 0.65, 0.5]),
    sampleSize: 100,
  },
};

/** Batches of `size` rows; every 17th row errors, every 11th (not erroring) is a duplicate. */
function makeBatches(total: number, size: number, seed: number): EmbeddingBatch[] {
  const rng = new Rng(seed);
  const out: EmbeddingBatch[] = [];
  for (let start = 0; start < total; start += size) {
    const n = Math.min(size, total - start);
    const rows = Array.from({ length: n }, (_, i) => ({ key: `k${start + i}`, shard: '00000', caption: `c${start + i}` }));
    const cluster = new Int32Array(n);
    const distance = new Float32Array(n);
    const errors: EmbeddingBatch['errors'] = new Array(n);
    const duplicateOf = new Array<string | undefined>(n);
    for (let i = 0; i < n; i++) {
      const g = start + i;
      if (g % 17 === 5) {
        errors[i] = { reason: 'error:decode', message: 'bad jpeg', code: ErrorCodes.DECODE };
        cluster[i] = -1;
        distance[i] = Number.NaN;
        continue;
      }
      cluster[i] = rng.int(K);
      distance[i] = 0.05 + 0.3 * rng.next();
      if (g % 11 === 3) duplicateOf[i] = `k${g - 1}`;
    }
    out.push({ rows, dim: 0, embeddings: new Float32Array(0), cluster, distance, errors, duplicateOf });
  }
  return out;
}

async function runStage(batches: EmbeddingBatch[], dbp: StreamingDbp | StreamingDbpOptions = DBP): Promise<ManifestRow[][]> {
  const got: ManifestRow[][] = [];
  await pipeline(
    Readable.from(batches),
    decide({ dbp }),
    new Writable({
      objectMode: true,
      write(rows: ManifestRow[], _enc, cb) {
        got.push(rows);
        cb();
      },
    }),
  );
  return got;
}

describe('decide stage', () => {
  it('emits one row per input row, per batch, in order, with error, duplicate and dbp rows', async () => {
    const batches = [...makeBatches(1000, 64, 1), { rows: [], dim: 0, embeddings: new Float32Array(0) }];
    const dbp = new StreamingDbp(DBP);
    const got = await runStage(batches, dbp);
    expect(got.length).toBe(batches.length);
    for (let b = 0; b < batches.length; b++) {
      expect(got[b].map((r) => r.key)).toEqual(batches[b].rows.map((r) => r.key));
    }
    const all = got.flat();
    expect(all.length).toBe(1000);
    const errs = all.filter((r) => r.reason === 'error:decode');
    const dups = all.filter((r) => r.reason === 'duplicate');
    const dbpRows = all.filter((r) => r.reason === 'dbp');
    expect(errs.length + dups.length + dbpRows.length).toBe(1000);
    expect(errs.every((r) => r.decision === 'drop' && r.error === 'bad jpeg' && r.cluster === -1 && r.distance === null)).toBe(true);
    expect(dups.every((r) => r.decision === 'drop' && r.duplicate_of !== null && r.cluster >= 0 && r.error === null)).toBe(true);
    expect(dups[0].duplicate_of).toBe(`k${Number(dups[0].key.slice(1)) - 1}`);
    // Only dbp rows enter the DBP statistics.
    expect(dbp.seen).toBe(dbpRows.length);
    const kept = dbpRows.filter((r) => r.decision === 'keep').length;
    expect(dbp.keptCount).toBe(kept);
    expect(kept / dbpRows.length).toBeGreaterThan(0.3);
    expect(kept / dbpRows.length).toBeLessThan(0.5);
    expect(dbpRows[0]).toMatchObject({ shard: '00000', caption: 'c0', url: null, duplicate_of: null, error: null });
  });

  it("carries each batch's thumbnails on the rows it emits (DecidedRows), and none where the batch had none", async () => {
    const [withThumbs, without] = makeBatches(20, 10, 3);
    const thumbs = Array.from({ length: 10 }, (_, i) => (i % 3 === 0 ? undefined : Buffer.from([i])));
    const got = (await runStage([{ ...withThumbs, thumbnails: thumbs }, without])) as DecidedRows[];
    expect(got[0].thumbnails).toBe(thumbs);
    expect(got[0].length).toBe(10);
    expect(got[1].thumbnails).toBeUndefined();
  });

  it('is deterministic for the same input, whatever the batching', async () => {
    const a = (await runStage(makeBatches(2000, 100, 2))).flat();
    const b = (await runStage(makeBatches(2000, 100, 2))).flat();
    expect(b).toEqual(a);
    // Same rows cut into other batch sizes: same decisions.
    const big = makeBatches(2000, 2000, 2)[0];
    const c = decideBatchRows(new StreamingDbp(DBP), big);
    expect(c).toEqual(a);
  });

  it('exposes its decider, built from options', () => {
    const stage = decide({ dbp: DBP });
    expect(stage.dbp).toBeInstanceOf(StreamingDbp);
    stage.destroy();
  });

  it('rejects bad options and batches assign never saw', async () => {
    expect(() => decide({ dbp: { ...DBP, k: 0 } })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => decide({} as never)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    const noAssign: EmbeddingBatch = { rows: [{ key: 'a' }], dim: 0, embeddings: new Float32Array(0) };
    await expect(runStage([noAssign])).rejects.toMatchObject({ code: ErrorCodes.INTERNAL });
    const unassigned: EmbeddingBatch = { rows: [{ key: 'a' }], dim: 0, embeddings: new Float32Array(0), cluster: Int32Array.from([-1]), distance: Float32Array.from([0.1]) };
    await expect(runStage([unassigned])).rejects.toMatchObject({ code: ErrorCodes.INTERNAL, context: { key: 'a' } });
    // A batch of error rows only needs no cluster/distance.
    const onlyErrors: EmbeddingBatch = { rows: [{ key: 'e' }], dim: 0, embeddings: new Float32Array(0), errors: [{ reason: 'error:download', message: 'HTTP 404' }] };
    const got = await runStage([onlyErrors]);
    expect(got[0][0]).toMatchObject({ key: 'e', decision: 'drop', reason: 'error:download' });
  });

  it('fails with ERR_DBPRUNE_ABORTED when its signal fires', async () => {
    const ac = new AbortController();
    const source = new Readable({ objectMode: true, read() {} });
    const stage = decide({ dbp: DBP, signal: ac.signal });
    const done = pipeline(source, stage, new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }));
    source.push(makeBatches(10, 10, 3)[0]);
    setTimeout(() => ac.abort(), 10);
    await expect(done).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  });
});
