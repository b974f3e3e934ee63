/**
 * The pure nearest-centroid conventions (src/core/nearest.ts) without ORT: the JS assigner against
 * the reference triple loop, and the float32 top-2 finishing step (near-ties re-decided in float64).
 * The ORT-backed NearestCentroid is tested in test/kernels/nearest-centroid.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createJsNearest, NEAR_TIE, nearestBruteForceJs, resolveTop2, type Top2 } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import { normalizedCopy } from '../../src/core/vector.js';
import { unitRows } from '../helpers/vectors.js';

describe('createJsNearest (pure-JS assigner)', () => {
  it('gives the reference loop’s clusters and bitwise δ; a NaN row gets an in-range cluster and NaN', async () => {
    const k = 12;
    const dim = 16;
    const n = 500;
    const rng = new Rng(11);
    const c = Float32Array.from({ length: k * dim }, () => rng.normal());
    const x = unitRows(new Rng(5), n, dim);
    x[7 * dim + 3] = NaN;
    const ref = nearestBruteForceJs(x, n, c, k, dim);
    const nearest = await createJsNearest(c, k, dim);
    const got = await nearest.assign(x, n);
    for (let i = 0; i < n; i++) {
      if (i === 7) continue;
      expect(got.cluster[i]).toBe(ref.cluster[i]);
      expect(got.distance[i]).toBe(ref.distance[i]);
    }
    expect(got.cluster[7]).toBeGreaterThanOrEqual(0);
    expect(got.cluster[7]).toBeLessThan(k);
    expect(got.distance[7]).toBeNaN();
    expect(Array.from(nearest.centroids)).toEqual(Array.from(normalizedCopy(c, k, dim)));
    await nearest.dispose();
  });

  it('validates with stable codes', async () => {
    const c = new Float32Array(8).fill(0.5);
    await expect(createJsNearest(c, 3, 4)).rejects.toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_DIM_MISMATCH' }));
    await expect(createJsNearest(new Float32Array(8), 2, 4)).rejects.toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    const nearest = await createJsNearest(c, 2, 4);
    await expect(nearest.assign(new Float32Array(4), 2)).rejects.toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_DIM_MISMATCH' }));
    const short = { cluster: new Int32Array(1), distance: new Float32Array(1) };
    await expect(nearest.assign(new Float32Array(8), 2, short)).rejects.toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});

describe('resolveTop2 (the float32 path’s finishing step)', () => {
  // Two unit centroids 1e-7 apart in score for x: float32 scores cannot order them.
  const dim = 2;
  const k = 3;
  const a = 0.3;
  const c = Float32Array.from([Math.cos(a), Math.sin(a), Math.cos(a + 2e-4), Math.sin(a + 2e-4), -1, 0]);
  const x = Float32Array.from([Math.cos(a + 1.5e-4), Math.sin(a + 1.5e-4)]); // nearer to centroid 1
  const dot = (j: number): number => x[0] * c[j * dim] + x[1] * c[j * dim + 1];

  function resolve(top: Top2): { cluster: number; distance: number } {
    const cluster = new Int32Array(1);
    const distance = new Float32Array(1);
    resolveTop2(x, 0, c, k, dim, top, 1, new Float64Array(1), cluster, distance);
    return { cluster: cluster[0], distance: distance[0] };
  }

  it('re-decides a near-tie in float64 (the float32 runner-up wins when it is truly nearer)', () => {
    expect(dot(1)).toBeGreaterThan(dot(0));
    const r = resolve({ idx1: Int32Array.of(0), val1: Float32Array.of(0.9), idx2: Int32Array.of(1), val2: Float32Array.of(0.9 - NEAR_TIE / 2) });
    expect(r.cluster).toBe(1);
    expect(r.distance).toBe(Math.fround(1 - dot(1)));
  });

  it('trusts the top-1 beyond NEAR_TIE, and clamps an out-of-range index to 0', () => {
    expect(resolve({ idx1: Int32Array.of(0), val1: Float32Array.of(0.9), idx2: Int32Array.of(1), val2: Float32Array.of(0.9 - 2 * NEAR_TIE) }).cluster).toBe(0);
    const clamped = resolve({ idx1: Int32Array.of(99), val1: Float32Array.of(NaN), idx2: Int32Array.of(-1), val2: Float32Array.of(-Infinity) });
    expect(clamped.cluster).toBe(0);
    expect(clamped.distance).toBe(Math.fround(1 - dot(0)));
  });
});
