import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import type { EmbeddingBatch, RowError } from '../../src/core/sample.js';
import { streamingDedupBruteForce } from '../../src/core/semdedup.js';
import { dedup, type DedupOptions, type DedupStream } from '../../src/stages/dedup.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { dbpSmallDir } from '../helpers/fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbprune-dedup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** n unit rows in k clusters, ~dupRate near copies (noise 0.002) of earlier rows of the same cluster. */
function synth(n: number, dim: number, k: number, dupRate: number, seed: number): { x: Float32Array; cluster: Int32Array } {
  const rng = new Rng(seed);
  const centres = new Float32Array(k * dim).map(() => rng.normal());
  const x = new Float32Array(n * dim);
  const cluster = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const src = i > 0 && rng.next() < dupRate ? rng.int(i) : -1;
    const j = src >= 0 ? cluster[src] : rng.int(k);
    cluster[i] = j;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = src >= 0 ? x[src * dim + t] + 0.002 * rng.normal() : centres[j * dim + t] + 0.5 * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
  }
  return { x, cluster };
}

function batches(x: Float32Array, cluster: Int32Array, n: number, dim: number, size: number, from = 0): EmbeddingBatch[] {
  const out: EmbeddingBatch[] = [];
  for (let s = from; s < n; s += size) {
    const e = Math.min(n, s + size);
    out.push({
      rows: Array.from({ length: e - s }, (_, i) => ({ key: `k${s + i}` })),
      dim,
      embeddings: x.slice(s * dim, e * dim),
      cluster: cluster.slice(s, e),
      distance: new Float32Array(e - s),
    });
  }
  return out;
}

async function run(stage: DedupStream, input: EmbeddingBatch[]): Promise<EmbeddingBatch[]> {
  const out: EmbeddingBatch[] = [];
  await pipeline(Readable.from(input), stage, async (source: AsyncIterable<EmbeddingBatch>) => {
    for await (const b of source) out.push(b);
  });
  return out;
}

/** duplicateOf as row indices (−1 when kept) from the stage's keys. */
function dupRows(out: EmbeddingBatch[]): number[] {
  return out.flatMap((b) => b.rows.map((_, i) => (b.duplicateOf?.[i] === undefined ? -1 : Number(b.duplicateOf[i].slice(1)))));
}

describe('dedup stage on small clusters equals the all-pairs brute force', () => {
  const dim = 32;
  const n = 1500;
  const k = 4;
  const { x, cluster } = synth(n, dim, k, 0.2, 3);
  const eps = 0.01;
  const bf = streamingDedupBruteForce(x, cluster, n, dim, eps);

  it.each([
    ['brute-force buffers', {}],
    ['HNSW from the first kept sample', { bruteForceMax: 0 }],
    ['buffer then HNSW (migration)', { bruteForceMax: 50 }],
  ] as [string, Partial<DedupOptions>][])('%s', async (_name, extra) => {
    const stage = dedup({ eps, dim, k, ...extra });
    const out = await run(stage, batches(x, cluster, n, dim, 128));
    expect(out.reduce((a, b) => a + b.rows.length, 0)).toBe(n); // rows in = rows out
    expect(dupRows(out)).toEqual(Array.from(bf.duplicateOf));
    const st = stage.stats();
    const dups = bf.duplicateOf.filter((d) => d >= 0).length;
    expect(dups).toBeGreaterThan(150);
    expect(st.seen).toBe(n);
    expect(st.duplicates).toEqual([dups]);
    expect(st.indexed).toBe(n - dups);
    expect(st.keptFraction[0]).toBeCloseTo((n - dups) / n, 12);
    expect(st.hnswClusters).toBe(extra.bruteForceMax === undefined ? 0 : k);
    expect(st.indexBytesEstimate).toBeGreaterThan((n - dups) * dim * 4);
  });

  it('reports the kept fraction for every ε; eps[0] decides and its count is exact', async () => {
    const stage = dedup({ eps: '0.01,0.001,0.3', dim, k });
    const out = await run(stage, batches(x, cluster, n, dim, 200));
    expect(dupRows(out)).toEqual(Array.from(bf.duplicateOf));
    const st = stage.stats();
    expect(st.eps).toEqual([0.01, 0.001, 0.3]);
    let strict = 0;
    let loose = 0;
    for (let i = 0; i < n; i++) {
      if (bf.maxSim[i] >= 1 - 0.001) strict++;
      if (bf.maxSim[i] >= 1 - 0.3) loose++;
    }
    expect(st.duplicates).toEqual([bf.duplicateOf.filter((d) => d >= 0).length, strict, loose]);
    expect(st.keptFraction[2]).toBeLessThan(st.keptFraction[0]);
  });
});

describe('dedup stage: pass-through, limits and errors', () => {
  const dim = 8;
  const { x, cluster } = synth(60, dim, 2, 0.3, 9);

  it('passes error rows and cluster −1 rows untouched and unchecked', async () => {
    const [b] = batches(x, cluster, 60, dim, 60);
    const errs = new Array<RowError | undefined>(60).fill(undefined);
    errs[5] = { reason: 'error:decode', message: 'bad' };
    b.errors = errs;
    b.cluster![6] = -1;
    const stage = dedup({ eps: 0.05, dim, k: 2 });
    const [out] = await run(stage, [b]);
    expect(out).toBe(b);
    expect(out.rows.length).toBe(60);
    expect(out.duplicateOf).toHaveLength(60);
    expect(out.duplicateOf![5]).toBeUndefined();
    expect(out.duplicateOf![6]).toBeUndefined();
    expect(out.errors![5]!.reason).toBe('error:decode');
    expect(stage.stats().seen).toBe(58);
    expect(stage.stats().skipped).toBe(2);
  });

  it('caps a cluster at maxPerCluster: still checks, stops inserting, counts it', async () => {
    const stage = dedup({ eps: 0.01, dim, k: 2, maxPerCluster: 5 });
    const out = await run(stage, batches(x, cluster, 60, dim, 7));
    expect(out.reduce((a, b) => a + b.rows.length, 0)).toBe(60);
    const st = stage.stats();
    expect(st.indexed).toBe(10);
    expect(st.cappedClusters).toBe(2);
    expect(st.unindexedKept).toBeGreaterThan(0);
    expect(st.indexed + st.unindexedKept + st.duplicates[0]).toBe(60);
  });

  it('rejects bad options at construction and batches without clusters', async () => {
    for (const bad of [{ eps: 0 }, { eps: [0.1, 1.5] }, { M: 1 }, { efSearch: 0 }, { maxPerCluster: 0 }, { bruteForceMax: -1 }, { dim: 0 }]) {
      expect(() => dedup({ eps: 0.1, dim, k: 2, ...bad })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    }
    const [b] = batches(x, cluster, 10, dim, 10);
    delete b.cluster;
    await expect(run(dedup({ eps: 0.1, dim, k: 2 }), [b])).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INTERNAL' });
  });

  it('aborts through its signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(run(dedup({ eps: 0.1, dim, k: 2, signal: ac.signal }), batches(x, cluster, 60, dim, 10))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
    // Aborted mid-stream while waiting for upstream.
    const ac2 = new AbortController();
    const bs = batches(x, cluster, 20, dim, 10);
    const slow = Readable.from(
      (async function* () {
        yield bs[0];
        ac2.abort();
        await new Promise((r) => setTimeout(r, 50));
        yield bs[1];
      })(),
    );
    await expect(
      pipeline(slow, dedup({ eps: 0.1, dim, k: 2, signal: ac2.signal }), async (src: AsyncIterable<EmbeddingBatch>) => {
        for await (const _ of src);
      }),
    ).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
  });
});

describe('dedup stage checkpoints', () => {
  it('snapshot + restoreFrom continue exactly like an uninterrupted run (buffers and HNSW)', async () => {
    const dim = 16;
    const n = 1200;
    const k = 3;
    const { x, cluster } = synth(n, dim, k, 0.2, 21);
    const opts = { eps: [0.01, 0.05], dim, k, bruteForceMax: 100 };
    const whole = await run(dedup(opts), batches(x, cluster, n, dim, 100));
    const first = dedup(opts);
    const a = await run(first, batches(x, cluster, 600, dim, 100));
    const dir = join(tmp, 'snap');
    const info = await first.snapshot(dir);
    expect(info.files.some((f) => f.endsWith('.hnsw'))).toBe(true);
    const second = dedup({ ...opts, restoreFrom: dir });
    const b = await run(second, batches(x, cluster, n, dim, 100, 600));
    expect(dupRows([...a, ...b])).toEqual(dupRows(whole));
    expect(second.stats().seen).toBe(n);
    await expect(run(dedup({ ...opts, k: 4, restoreFrom: dir }), batches(x, cluster, 10, dim, 10))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION' });
  });
});

describe('golden fixture (dbp-small): HNSW streaming dedup vs brute force', () => {
  it.each([0.01, 0.05])('ε = %s: ≥ 99.5% of decisions match, with the fixture duplicates found', async (eps) => {
    const e = await readNpyFloat32(join(dbpSmallDir, 'embeddings.npy'));
    const c = await readNpyFloat32(join(dbpSmallDir, 'centroids.npy'));
    const dim = e.cols;
    const n = e.rows;
    const { cluster } = nearestBruteForceJs(e.data, n, c.data, c.rows, dim);
    const bf = streamingDedupBruteForce(e.data, cluster, n, dim, eps);
    const stage = dedup({ eps, dim, k: c.rows, bruteForceMax: 0 }); // every lookup through HNSW
    const out = await run(stage, batches(e.data, cluster, n, dim, 1024));
    expect(out.reduce((a, b) => a + b.rows.length, 0)).toBe(n);
    const got = dupRows(out);
    let agree = 0;
    let bfDups = 0;
    for (let i = 0; i < n; i++) {
      if (got[i] >= 0 === bf.duplicateOf[i] >= 0) agree++;
      if (bf.duplicateOf[i] >= 0) bfDups++;
    }
    expect(bfDups).toBeGreaterThanOrEqual(1000); // the fixture's 5% duplicates (plus close pairs)
    expect(agree / n).toBeGreaterThanOrEqual(0.995);
  });
});

describe('dedup in an aborted pipeline', () => {
  it('a pipeline aborted while the stage waits for input settles (rejects) instead of hanging', async () => {
    const { PassThrough, Writable } = await import('node:stream');
    const { pipeline } = await import('node:stream/promises');
    const dim = 4;
    const source = new PassThrough({ objectMode: true }); // never ends: a continuous source
    const ac = new AbortController();
    const done = pipeline(source, dedup({ eps: 0.01, dim, k: 2 }), new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }), { signal: ac.signal });
    source.write({ rows: [{ key: 'a' }], dim, embeddings: Float32Array.from([1, 0, 0, 0]), cluster: Int32Array.from([0]), distance: Float32Array.from([0]) });
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
  });
});
