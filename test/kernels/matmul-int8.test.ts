import { describe, expect, it } from 'vitest';
import { certainWinners, probeExactInt8Kernel, Q_HALF, quantizeCentroids } from '../../src/kernels/matmul-int8.js';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { NearestCentroid } from '../../src/kernels/nearest-centroid.js';
import { Rng } from '../../src/core/rng.js';
import { normalizedCopy } from '../../src/core/vector.js';
import { unitRows } from '../helpers/vectors.js';

/** Rows near their centroid (decidable in int8) mixed with rows on a bisector (must fall back). */
function mixedRows(rng: Rng, cu: Float32Array, k: number, dim: number, n: number): Float32Array {
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const a = rng.int(k);
    const b = (a + 1) % k;
    const tie = i % 3 === 0;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = tie ? cu[a * dim + t] + cu[b * dim + t] + 2e-7 * rng.normal() : cu[a * dim + t] + 0.05 * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
  }
  return x;
}

describe('int8 pre-filter', () => {
  it('gives exactly the float32 path and the float64 brute force (bitwise δ), with near-ties falling back', async () => {
    const rng = new Rng(21);
    const dim = 96;
    const k = 40;
    const c = unitRows(rng, k, dim).map((v) => v * 2);
    const cu = normalizedCopy(c, k, dim);
    const n = 3000;
    const x = mixedRows(rng, cu, k, dim, n);
    x[5 * dim + 3] = NaN;
    x[7 * dim] = Infinity;
    x.fill(0, 9 * dim, 10 * dim); // a zero row: scale 0 in the graph's QuantizeLinear, decided in float32
    const ref = nearestBruteForceJs(x, n, c, k, dim);
    const f32 = await NearestCentroid.create(c, k, dim, { backend: 'ort', batchRows: 512 });
    const i8 = await NearestCentroid.create(c, k, dim, { backend: 'ort', batchRows: 512, int8: true });
    const [a, b] = await Promise.all([f32.assign(x, n), i8.assign(x, n)]);
    const stats = i8.int8Stats;
    await Promise.all([f32.dispose(), i8.dispose()]);
    if (!(await probeExactInt8Kernel(1))) return; // int8 kernel not exact here: the path is off
    expect(stats.rows).toBe(n);
    expect(stats.fallback).toBeGreaterThanOrEqual(n / 3); // every bisector row
    expect(stats.fallback).toBeLessThan(n); // and the clear rows were decided in int8
    for (const i of [5, 7]) {
      expect(b.distance[i]).toBeNaN();
      expect(b.cluster[i]).toBeGreaterThanOrEqual(0);
      expect(b.cluster[i]).toBeLessThan(k);
      ref.cluster[i] = a.cluster[i] = b.cluster[i];
      ref.distance[i] = a.distance[i] = b.distance[i];
    }
    expect(Array.from(b.cluster)).toEqual(Array.from(a.cluster));
    expect(Array.from(b.distance)).toEqual(Array.from(a.distance));
    expect(Array.from(b.cluster)).toEqual(Array.from(ref.cluster));
    expect(Array.from(b.distance)).toEqual(Array.from(ref.distance));
  });

  it('reuses buffers of undecided rows across calls of growing size, and calls at once, and stays exact', async () => {
    const rng = new Rng(22);
    const dim = 64;
    const k = 24;
    const c = unitRows(rng, k, dim);
    const n = 2500;
    const x = mixedRows(rng, c, k, dim, n);
    const ref = nearestBruteForceJs(x, n, c, k, dim);
    const i8 = await NearestCentroid.create(c, k, dim, { backend: 'ort', batchRows: 1024, int8: true });
    try {
      // 40 rows (a small gather buffer), then 1,024-row batches: the buffer must grow, not truncate
      for (const [start, rows] of [[0, 40], [40, n - 40], [0, 700]]) {
        const r = await i8.assign(x.subarray(start * dim, (start + rows) * dim), rows);
        expect(Array.from(r.cluster)).toEqual(Array.from(ref.cluster.subarray(start, start + rows)));
        expect(Array.from(r.distance)).toEqual(Array.from(ref.distance.subarray(start, start + rows)));
      }
      // calls at once (the assign worker runs several): each gather has a buffer of its own
      const parts = [[0, 900], [900, 800], [1700, 800]];
      const results = await Promise.all(parts.map(([start, rows]) => i8.assign(x.subarray(start * dim, (start + rows) * dim), rows)));
      results.forEach((r, p) => {
        const [start, rows] = parts[p];
        expect(Array.from(r.cluster)).toEqual(Array.from(ref.cluster.subarray(start, start + rows)));
        expect(Array.from(r.distance)).toEqual(Array.from(ref.distance.subarray(start, start + rows)));
      });
      if (await probeExactInt8Kernel(1)) expect(i8.int8Stats.fallback).toBeGreaterThan(n / 4); // the gather path ran
    } finally {
      await i8.dispose();
    }
  });

  it('the error bound holds for every centroid (quantisation emulated in float64)', () => {
    const rng = new Rng(8);
    const dim = 64;
    const k = 30;
    const cu = unitRows(rng, k, dim);
    const qc = quantizeCentroids(cu, k, dim);
    const x = unitRows(rng, 200, dim);
    for (let i = 0; i < 200; i++) {
      let m = 0;
      for (let t = 0; t < dim; t++) m = Math.max(m, Math.abs(x[i * dim + t]));
      const q = Array.from({ length: dim }, (_, t) => Math.round((x[i * dim + t] * 127) / m));
      const sx = m / 127;
      const ex = Math.sqrt(dim) * sx * Q_HALF;
      const bound = ex * qc.maxNorm + (1 + 1e-3 + ex) * qc.maxErr;
      for (let j = 0; j < k; j++) {
        let exact = 0;
        let int = 0;
        for (let t = 0; t < dim; t++) {
          exact += x[i * dim + t] * cu[j * dim + t];
          int += q[t] * qc.qt[t * k + j];
        }
        expect(Math.abs(exact - sx * qc.scale * int)).toBeLessThanOrEqual(bound);
      }
    }
    // certainWinners: a wide gap is certain, a gap inside the bound and a zero scale are not.
    const win = new Int32Array(3);
    const undecided = certainWinners(
      {
        maxAbs: Float32Array.of(0.3, 0.3, 0),
        norm: Float32Array.of(1, 1, 0),
        values: Int32Array.of(400_000, 0, 400_000, 399_990, 5, 1),
        indices: Int32Array.of(4, 2, 4, 2, 1, 0),
      },
      3,
      dim,
      qc,
      win,
    );
    expect(Array.from(win)).toEqual([4, -1, -1]);
    expect(undecided).toBe(2);
  });
});
