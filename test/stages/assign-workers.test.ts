// The assign stage on worker threads (AssignPool) against the same stage in-thread, and the
// streaming embeddings pipeline (which normalises and assigns on workers) against the public
// normalize → assign stages in-thread: results must be bit-identical, row errors included.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { AssignPool } from '../../src/kernels/assign-pool.js';
import { Rng } from '../../src/core/rng.js';
import type { EmbeddingBatch } from '../../src/core/sample.js';
import { writeNpy } from '../../src/io/npy.js';
import { assign } from '../../src/stages/assign.js';
import { normalize } from '../../src/stages/normalize.js';
import { embeddingsToManifest } from '../../pipelines/embeddings-to-manifest.js';
import { unitRows } from '../helpers/vectors.js';

const dim = 64;
const k = 40;

/** Unit rows near the centroids, then some rows made awkward: scaled, zero, NaN, Inf. */
function awkwardRows(rng: Rng, c: Float32Array, n: number): Float32Array {
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const j = rng.int(k);
    for (let t = 0; t < dim; t++) x[i * dim + t] = c[j * dim + t] + 0.05 * rng.normal();
  }
  const scale = (i: number, f: number): void => {
    for (let t = 0; t < dim; t++) x[i * dim + t] *= f;
  };
  for (let i = 0; i < n; i += 97) scale(i, 3.5); // not unit: renormalised
  x.fill(0, 5 * dim, 6 * dim); // zero row
  x[17 * dim + 3] = NaN;
  x[400 * dim + 9] = Infinity;
  return x;
}

function toBatches(x: Float32Array, n: number, size: number): EmbeddingBatch[] {
  const out: EmbeddingBatch[] = [];
  for (let s = 0; s < n; s += size) {
    const m = Math.min(size, n - s);
    out.push({ rows: Array.from({ length: m }, (_, i) => ({ key: `k${s + i}` })), dim, embeddings: x.slice(s * dim, (s + m) * dim) });
  }
  return out;
}

async function collect(stages: Transform[], input: EmbeddingBatch[]): Promise<EmbeddingBatch[]> {
  const got: EmbeddingBatch[] = [];
  const sink = new Writable({ objectMode: true, write: (b: EmbeddingBatch, _e, cb) => (got.push(b), cb()) });
  await pipeline([Readable.from(input, { objectMode: true }), ...stages, sink]);
  return got;
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('assign on worker threads', () => {
  const rng = new Rng(16);
  const c = unitRows(rng, k, dim);
  const n = 3000;
  const x = awkwardRows(rng, c, n);

  it('normalise + assign on 2 workers equals normalize → assign in-thread, row errors and order included', async () => {
    const inThread = await collect([normalize({ expectedDim: dim }), assign({ centroids: c, k, dim, mode: 'exact' })], toBatches(x, n, 256));
    const pooledStage = assign({ centroids: c, k, dim, mode: 'exact', workers: 2, normalize: true });
    const pooled = await collect([pooledStage], toBatches(x, n, 256));
    expect(pooled.length).toBe(inThread.length);
    for (let b = 0; b < pooled.length; b++) {
      expect(pooled[b].rows.map((r) => r.key)).toEqual(inThread[b].rows.map((r) => r.key));
      expect(Array.from(pooled[b].cluster ?? [])).toEqual(Array.from(inThread[b].cluster ?? []));
      expect(Buffer.from((pooled[b].distance as Float32Array).buffer).equals(Buffer.from((inThread[b].distance as Float32Array).buffer))).toBe(true);
      expect(Buffer.from(pooled[b].embeddings.buffer, pooled[b].embeddings.byteOffset, pooled[b].embeddings.byteLength).equals(Buffer.from(inThread[b].embeddings.buffer, inThread[b].embeddings.byteOffset, inThread[b].embeddings.byteLength))).toBe(true);
      expect(pooled[b].errors ?? []).toEqual(inThread[b].errors ?? []);
    }
    // normalize (main thread, marks the batch `unit`) → assign on workers, which then skip their screen
    const staged = await collect([normalize({ expectedDim: dim }), assign({ centroids: c, k, dim, mode: 'exact', workers: 2 })], toBatches(x, n, 256));
    for (let b = 0; b < staged.length; b++) {
      expect(staged[b].unit).toBe(true);
      expect(Array.from(staged[b].cluster ?? [])).toEqual(Array.from(inThread[b].cluster ?? []));
      expect(Array.from(staged[b].distance ?? [])).toEqual(Array.from(inThread[b].distance ?? []));
      expect(staged[b].errors ?? []).toEqual(inThread[b].errors ?? []);
    }
    const errored = pooled.flatMap((b) => (b.errors ?? []).map((e, i) => (e ? b.rows[i].key : undefined)).filter(Boolean));
    expect(errored).toEqual(['k5', 'k17', 'k400']);
    expect(pooledStage.invalid).toBe(3);
    expect(pooledStage.renormalized).toBeGreaterThan(25);
  });

  it('screens without normalising exactly as the in-thread stage does (zero vs NaN/Inf messages)', async () => {
    const unitOnly = x.slice();
    const inThread = await collect([assign({ centroids: c, k, dim, mode: 'exact' })], toBatches(unitOnly, n, 512));
    const pooled = await collect([assign({ centroids: c, k, dim, mode: 'exact', workers: 1 })], toBatches(unitOnly, n, 512));
    for (let b = 0; b < pooled.length; b++) {
      expect(Array.from(pooled[b].cluster ?? [])).toEqual(Array.from(inThread[b].cluster ?? []));
      expect(Array.from(pooled[b].distance ?? [])).toEqual(Array.from(inThread[b].distance ?? []));
      expect(pooled[b].errors ?? []).toEqual(inThread[b].errors ?? []);
    }
    expect(pooled[0].errors?.[5]?.message).toBe('embedding is a zero vector');
  });

  it('releaseVectors hands each batch\'s vectors back once, as it is assigned, and the batch goes on without them', async () => {
    const input = toBatches(x.slice(), n, 256);
    const lengths = input.map((b) => b.embeddings.length); // read now: the buffers are transferred to the worker
    const released: Float32Array[] = [];
    const reference = await collect([assign({ centroids: c, k, dim, mode: 'exact', workers: 1, normalize: true })], toBatches(x.slice(), n, 256));
    const stage = assign({ centroids: c, k, dim, mode: 'exact', workers: 1, normalize: true, releaseVectors: (v) => released.push(v) });
    const got = await collect([stage], input);
    expect(released.length).toBe(input.length);
    expect(new Set(released).size).toBe(input.length); // each buffer once (transferred to the worker and back: same memory, new views)
    // in the order the worker finished them, which need not be the batch order
    expect(released.map((v) => v.length).sort((a, b) => a - b)).toEqual(lengths.sort((a, b) => a - b));
    for (let b = 0; b < got.length; b++) {
      expect(got[b].embeddings.length).toBe(0);
      expect(Array.from(got[b].cluster ?? [])).toEqual(Array.from(reference[b].cluster ?? []));
    }
    // the released vectors are the normalised rows the reference carries on (in any order, as above)
    const bytesOf = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    expect(released.map(bytesOf).sort()).toEqual(reference.map((b) => bytesOf(b.embeddings)).sort());
  });

  it('rejects a bad worker count at construction, and a batch after dispose', async () => {
    expect(() => assign({ centroids: c, k, dim, workers: -1 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    const pool = await AssignPool.create(c, k, dim, { workers: 1 });
    await pool.dispose();
    await expect(pool.assign(new Float32Array(dim), 1)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INTERNAL' });
  });

  it('the streaming embeddings pipeline writes the same JSONL with and without assign workers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-assign-workers-'));
    dirs.push(dir);
    await writeNpy(join(dir, 'x.npy'), x, [n, dim], 'float32');
    await writeNpy(join(dir, 'c.npy'), c, [k, dim], 'float32');
    const out: Record<number, string> = {};
    for (const workers of [0, 2]) {
      const chunks: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer | string, _enc, cb) {
          chunks.push(chunk.toString());
          cb();
        },
      });
      const r = await embeddingsToManifest({ embeddings: join(dir, 'x.npy'), centroids: join(dir, 'c.npy'), keepRatio: 0.3, stdout: sink, assignWorkers: workers, batchRows: 300 });
      out[workers] = chunks.join('');
      expect(r.stats.totals.samples).toBe(n);
      expect(r.stats.totals.errors).toEqual({ 'error:embedding': 3 });
    }
    expect(out[2].split('\n').length).toBe(n + 1);
    expect(out[2]).toBe(out[0]);
  });
});
