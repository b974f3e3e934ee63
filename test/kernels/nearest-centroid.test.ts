import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildNearestModel, OrtScorer } from '../../src/kernels/matmul-ort.js';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { NearestCentroid } from '../../src/kernels/nearest-centroid.js';
import { Rng } from '../../src/core/rng.js';
import { normalizedCopy } from '../../src/core/vector.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { dbpSmallDir } from '../helpers/fixture.js';
import { unitRows } from '../helpers/vectors.js';

const BACKENDS = ['ort', 'js'] as const;

describe('NearestCentroid', () => {
  it.each(BACKENDS)('%s: equals the float64 brute force on random data (bitwise δ), across batches', async (backend) => {
    const rng = new Rng(11);
    const dim = 48;
    const k = 37;
    const n = 1500;
    // Centroids deliberately not unit: they must be re-normalised.
    const c = unitRows(rng, k, dim).map((v) => v * 3);
    const x = unitRows(rng, n, dim);
    const ref = nearestBruteForceJs(x, n, c, k, dim);
    const nc = await NearestCentroid.create(c, k, dim, { backend, batchRows: 256, threads: 1 });
    expect(nc.backend).toBe(backend);
    const got = await nc.assign(x, n);
    await nc.dispose();
    expect(Array.from(got.cluster)).toEqual(Array.from(ref.cluster));
    expect(Array.from(got.distance)).toEqual(Array.from(ref.distance));
    expect(Array.from(nc.centroids.subarray(0, dim))).toEqual(Array.from(normalizedCopy(c, k, dim).subarray(0, dim)));
  });

  it.each(BACKENDS)('%s: an exact tie goes to the lowest centroid index', async (backend) => {
    const rng = new Rng(3);
    const dim = 16;
    const k = 9;
    const c = unitRows(rng, k, dim);
    c.copyWithin(7 * dim, 3 * dim, 4 * dim); // centroid 7 == centroid 3
    c.copyWithin(8 * dim, 3 * dim, 4 * dim); // and 8 too
    const x = Float32Array.from([...c.subarray(3 * dim, 4 * dim), ...c.subarray(7 * dim, 8 * dim)]);
    const nc = await NearestCentroid.create(c, k, dim, { backend });
    const got = await nc.assign(x, 2);
    await nc.dispose();
    expect(Array.from(got.cluster)).toEqual([3, 3]);
    expect(Math.abs(got.distance[0])).toBeLessThan(1e-6);
  });

  it.each(BACKENDS)('%s: near-ties (score gaps ~1e-7, below float32 resolution) are decided in float64', async (backend) => {
    const rng = new Rng(5);
    const dim = 64;
    const k = 6;
    const c = unitRows(rng, k, dim);
    const cu = normalizedCopy(c, k, dim);
    const n = 400;
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      // On the bisector of centroids 1 and 4, nudged by ~1e-7 either way.
      let s = 0;
      for (let t = 0; t < dim; t++) {
        const v = cu[1 * dim + t] + cu[4 * dim + t] + 2e-7 * rng.normal();
        x[i * dim + t] = v;
        s += v * v;
      }
      for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
    }
    const ref = nearestBruteForceJs(x, n, c, k, dim);
    const nc = await NearestCentroid.create(c, k, dim, { backend });
    const got = await nc.assign(x, n);
    await nc.dispose();
    expect(Array.from(got.cluster)).toEqual(Array.from(ref.cluster));
    expect(Array.from(got.distance)).toEqual(Array.from(ref.distance));
    if (backend === 'ort') {
      // The raw float32 top-1 gets some of these wrong: the float64 re-check is what fixes them.
      const raw = await OrtScorer.create(cu, k, dim, { threads: 1 });
      const t = await raw.top2(x, n);
      await raw.dispose();
      expect(t.idx1.filter((j, i) => j !== ref.cluster[i]).length).toBeGreaterThan(0);
    }
    const wins4 = ref.cluster.filter((j) => j === 4).length;
    expect(wins4).toBeGreaterThan(n / 10); // both sides of the tie occur
    expect(n - wins4).toBeGreaterThan(n / 10);
  });

  it.each(BACKENDS)('%s: reproduces the reference loop on the dbp-small fixture', async (backend) => {
    const e = await readNpyFloat32(join(dbpSmallDir, 'embeddings.npy'));
    const c = await readNpyFloat32(join(dbpSmallDir, 'centroids.npy'));
    const dim = e.cols;
    const k = c.rows;
    const cu = normalizedCopy(c.data, k, dim);
    const n = backend === 'js' ? 4000 : e.rows;
    const nc = await NearestCentroid.create(c.data, k, dim, { backend });
    const got = await nc.assign(e.data, n);
    await nc.dispose();
    let mismatches = 0;
    for (let i = 0; i < n; i++) {
      let best = -Infinity;
      let arg = -1;
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let t = 0; t < dim; t++) s += e.data[i * dim + t] * cu[j * dim + t];
        if (s > best) {
          best = s;
          arg = j;
        }
      }
      if (got.cluster[i] !== arg || got.distance[i] !== Math.fround(1 - best)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('writes into caller arrays, handles n = 0, flags non-finite rows with NaN', async () => {
    const rng = new Rng(9);
    const dim = 32;
    const k = 70;
    const c = unitRows(rng, k, dim);
    const x = unitRows(rng, 5, dim);
    x[2 * dim + 4] = NaN;
    x[3 * dim] = Infinity;
    for (const backend of BACKENDS) {
      const nc = await NearestCentroid.create(c, k, dim, { backend });
      const out = { cluster: new Int32Array(8).fill(-7), distance: new Float32Array(8) };
      const got = await nc.assign(x, 5, out);
      expect(got.cluster).toBe(out.cluster);
      expect(out.cluster[5]).toBe(-7);
      for (const i of [0, 1, 4]) expect(Number.isFinite(out.distance[i])).toBe(true);
      for (const i of [2, 3]) {
        expect(out.distance[i]).toBeNaN();
        expect(out.cluster[i]).toBeGreaterThanOrEqual(0);
        expect(out.cluster[i]).toBeLessThan(k);
      }
      const empty = await nc.assign(new Float32Array(0), 0);
      expect(empty.cluster.length).toBe(0);
      await nc.dispose();
    }
  });

  it('serialises concurrent assign calls and auto-picks the backend', async () => {
    const rng = new Rng(4);
    const dim = 64;
    const k = 100;
    const c = unitRows(rng, k, dim);
    const x = unitRows(rng, 300, dim);
    const nc = await NearestCentroid.create(c, k, dim);
    expect(nc.backend).toBe('ort');
    const [a, b] = await Promise.all([nc.assign(x, 300), nc.assign(x.subarray(150 * dim), 150)]);
    expect(Array.from(a.cluster.subarray(150))).toEqual(Array.from(b.cluster));
    await nc.dispose();
    const small = await NearestCentroid.create(unitRows(rng, 3, 4), 3, 4);
    expect(small.backend).toBe('js');
    await small.dispose();
  });

  it('validates its inputs with stable codes', async () => {
    const c = new Float32Array(8).fill(0.5);
    await expect(NearestCentroid.create(c, 3, 4)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH' });
    await expect(NearestCentroid.create(c, 2, 4, { threads: 0 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    await expect(NearestCentroid.create(c, 2, 4, { batchRows: 0 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    await expect(NearestCentroid.create(new Float32Array(8), 2, 4)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    const nc = await NearestCentroid.create(c, 2, 4, { backend: 'js' });
    await expect(nc.assign(new Float32Array(7), 2)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH' });
    await nc.dispose();
  });
});

describe('matmul-ort', () => {
  it('builds a valid graph for both heads and k = 1', async () => {
    expect(buildNearestModel(new Float32Array(8), 2, 4).length).toBeGreaterThan(32);
    const rng = new Rng(2);
    const c = unitRows(rng, 5, 8);
    const x = unitRows(rng, 3, 8);
    const arg = await OrtScorer.create(c, 5, 8, { threads: 1, head: 'argmax' });
    const top = await OrtScorer.create(c, 5, 8, { threads: 1 });
    const a = await arg.top2(x, 3);
    const t = await top.top2(x, 3);
    expect(Array.from(a.idx1)).toEqual(Array.from(t.idx1));
    for (let i = 0; i < 3; i++) expect(t.val1[i]).toBeGreaterThanOrEqual(t.val2[i]);
    const one = await OrtScorer.create(c.subarray(0, 8), 1, 8, { threads: 1 });
    const o = await one.top2(x, 3);
    expect(Array.from(o.idx1)).toEqual([0, 0, 0]);
    expect(Array.from(o.idx2)).toEqual([-1, -1, -1]);
    await Promise.all([arg.dispose(), top.dispose(), one.dispose()]);
  });
});
