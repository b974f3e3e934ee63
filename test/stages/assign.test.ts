import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import type { EmbeddingBatch } from '../../src/core/sample.js';
import { assign, measureHnswRecall } from '../../src/stages/assign.js';
import { unitRows } from '../helpers/vectors.js';

/** Clustered data: points near random centroids (so nearest-centroid has a clear answer mostly). */
function clustered(rng: Rng, c: Float32Array, k: number, n: number, dim: number, sigma: number): Float32Array {
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const j = rng.int(k);
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = c[j * dim + t] + sigma * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
  }
  return x;
}

function batches(x: Float32Array, n: number, dim: number, size: number): EmbeddingBatch[] {
  const out: EmbeddingBatch[] = [];
  for (let s = 0; s < n; s += size) {
    const m = Math.min(size, n - s);
    out.push({
      rows: Array.from({ length: m }, (_, i) => ({ key: String(s + i).padStart(6, '0') })),
      dim,
      embeddings: x.slice(s * dim, (s + m) * dim),
    });
  }
  return out;
}

async function run(stage: ReturnType<typeof assign>, input: EmbeddingBatch[]): Promise<EmbeddingBatch[]> {
  const got: EmbeddingBatch[] = [];
  await pipeline(Readable.from(input), stage, async (source: AsyncIterable<EmbeddingBatch>) => {
    for await (const b of source) got.push(b);
  });
  return got;
}

describe('assign stage', () => {
  const rng = new Rng(21);
  const dim = 32;
  const k = 60;
  const c = unitRows(rng, k, dim);
  const n = 2000;
  const x = clustered(rng, c, k, n, dim, 0.25);
  const ref = nearestBruteForceJs(x, n, c, k, dim);

  it.each(['exact', 'hnsw'] as const)('%s: fills cluster/distance for every row, batch order kept', async (mode) => {
    const input = batches(x, n, dim, 300);
    const stage = assign({ centroids: c, k, dim, mode });
    expect(stage.mode).toBe(mode);
    const got = await run(stage, input);
    expect(got.length).toBe(input.length);
    got.forEach((b, i) => expect(b).toBe(input[i]));
    const cl = new Int32Array(n);
    const ds = new Float32Array(n);
    let o = 0;
    for (const b of got) {
      cl.set(b.cluster as Int32Array, o);
      ds.set(b.distance as Float32Array, o);
      o += b.rows.length;
    }
    expect(o).toBe(n);
    let agree = 0;
    for (let i = 0; i < n; i++) {
      if (cl[i] === ref.cluster[i]) {
        agree++;
        expect(ds[i]).toBe(ref.distance[i]); // δ by the same float64 convention
      }
    }
    if (mode === 'exact') expect(agree).toBe(n);
    else expect(agree / n).toBeGreaterThanOrEqual(0.99); // HNSW recall at ef = 64
  });

  it.each(['exact', 'hnsw'] as const)('%s: error rows get -1/NaN untouched; bad embeddings become error:embedding', async (mode) => {
    const [b] = batches(x, 5, dim, 5);
    const upstream = { reason: 'error:decode' as const, message: 'bad jpeg' };
    b.errors = [undefined, upstream];
    b.embeddings.fill(0, 1 * dim, 2 * dim);
    b.embeddings[2 * dim + 3] = NaN;
    b.embeddings.fill(0, 3 * dim, 4 * dim);
    const [out] = await run(assign({ centroids: c, k, dim, mode }), [b]);
    expect(Array.from(out.cluster as Int32Array).map((v, i) => (i === 0 || i === 4 ? v >= 0 : v))).toEqual([true, -1, -1, -1, true]);
    expect(Number.isNaN((out.distance as Float32Array)[1])).toBe(true);
    expect(out.errors?.[1]).toBe(upstream);
    expect(out.errors?.[2]).toMatchObject({ reason: 'error:embedding' });
    expect(out.errors?.[3]?.reason).toBe('error:embedding');
    expect(out.errors?.[3]?.message).toContain('zero');
    expect(out.errors?.[0]).toBeUndefined();
    expect(out.errors?.[4]).toBeUndefined();
  });

  it('passes empty batches and rejects a batch of the wrong dimension', async () => {
    const empty: EmbeddingBatch = { rows: [], dim, embeddings: new Float32Array(0) };
    const auto = assign({ centroids: c, k, dim });
    expect(auto.mode).toBe('exact'); // small k
    const [e] = await run(auto, [empty]);
    expect(e.cluster?.length).toBe(0);
    const wrong: EmbeddingBatch = { rows: [{ key: 'a', shard: 's0' }], dim: 16, embeddings: new Float32Array(16).fill(0.25) };
    const err: unknown = await run(assign({ centroids: c, k, dim }), [wrong]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH' });
    expect((err as Error).message).toMatch(/16.*32/);
  });

  it('validates options at construction and honours abort', async () => {
    expect(() => assign({ centroids: c, k, dim, ef: 0 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => assign({ centroids: c, k, dim, mode: 'fast' as 'exact' })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => assign({ centroids: c, k: k + 1, dim })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_DIM_MISMATCH' }));
    const ac = new AbortController();
    ac.abort();
    await expect(run(assign({ centroids: c, k, dim, signal: ac.signal }), batches(x, 10, dim, 5))).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_ABORTED',
    });
    // Aborted mid-stream, while waiting for upstream.
    const ac2 = new AbortController();
    const slow = Readable.from(
      (async function* () {
        yield batches(x, 5, dim, 5)[0];
        ac2.abort();
        await new Promise((r) => setTimeout(r, 50));
        yield batches(x, 5, dim, 5)[0];
      })(),
    );
    await expect(
      pipeline(slow, assign({ centroids: c, k, dim, signal: ac2.signal }), async (src: AsyncIterable<EmbeddingBatch>) => {
        for await (const _ of src);
      }),
    ).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
  });

  it('measureHnswRecall: recall ≥ 0.99 vs exact at small k with ef = 64', async () => {
    const r = await measureHnswRecall({ centroids: c, k, dim, ef: 64, queries: unitRows(rng, 1000, dim), n: 1000 });
    expect(r.queries).toBe(1000);
    expect(r.recall).toBeGreaterThanOrEqual(0.99);
    expect(r.hnswRowsPerSec).toBeGreaterThan(0);
    expect(r.exactRowsPerSec).toBeGreaterThan(0);
  });
});
