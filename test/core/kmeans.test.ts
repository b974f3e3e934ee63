import { describe, expect, it } from 'vitest';
import { kmeansPlusPlus, sphericalKMeansWith } from '../../src/core/kmeans.js';
import { createJsNearest, type NearestAssignerFactory } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import { sphericalKMeans } from '../../src/kernels/kmeans.js';

/** `k` random unit centres in `dim` dims, `per` unit points around each with noise `sigma`. */
function planted(seed: number, k: number, per: number, dim: number, sigma: number) {
  const rng = new Rng(seed);
  const centres = new Float64Array(k * dim).map(() => rng.normal());
  const n = k * per;
  const x = new Float32Array(n * dim);
  const label = new Int32Array(n);
  // Interleave clusters so row order carries no information.
  for (let i = 0; i < n; i++) {
    const j = i % k;
    label[i] = j;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = centres[j * dim + t] + sigma * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
  }
  return { x, label, n };
}

/** Each planted cluster maps to exactly one found cluster and vice versa (purity 1). */
function expectRecovered(label: Int32Array, found: Int32Array, k: number): void {
  const map = new Map<number, number>();
  for (let i = 0; i < label.length; i++) {
    const m = map.get(label[i]);
    if (m === undefined) map.set(label[i], found[i]);
    else expect(found[i]).toBe(m);
  }
  expect(new Set(map.values()).size).toBe(k);
}

describe('sphericalKMeans', () => {
  it('Lloyd recovers planted clusters with unit centroids', async () => {
    const k = 8;
    const dim = 32;
    const { x, label, n } = planted(1, k, 150, dim, 0.15);
    const lines: string[] = [];
    const r = await sphericalKMeans(x, n, dim, { k, seed: 3, log: (l) => lines.push(l) });
    expectRecovered(label, r.assignment, k);
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += r.centroids[j * dim + t] ** 2;
      expect(Math.sqrt(s)).toBeCloseTo(1, 6);
    }
    expect(r.converged).toBe(true);
    expect(r.inertia).toBeCloseTo(r.distance.reduce((a, b) => a + b, 0), 3);
    expect(lines.some((l) => l.startsWith('kmeans iter'))).toBe(true);
    // Deterministic for a seed.
    const again = await sphericalKMeans(x, n, dim, { k, seed: 3 });
    expect(Array.from(again.centroids)).toEqual(Array.from(r.centroids));
  });

  it('the pure core (JS assigner) gives the same result as the ORT kernel, Lloyd and mini-batch', async () => {
    const k = 16;
    const dim = 128; // k·dim = 2048: 'auto' picks ORT in the kernel
    const { x, label, n } = planted(4, k, 60, dim, 0.2);
    for (const minibatch of [false, true]) {
      const opts = { k, seed: 5, iters: 6, minibatch, batchSize: 300 };
      const ort = await sphericalKMeans(x, n, dim, { ...opts, backend: 'ort' });
      let opened = 0;
      const counted: NearestAssignerFactory = (c, kk, d) => {
        opened++;
        return createJsNearest(c, kk, d);
      };
      const js = await sphericalKMeansWith(counted, x, n, dim, opts);
      expect(opened).toBeGreaterThan(1); // every assignment step went through the given assigner
      expectRecovered(label, js.assignment, k);
      expect(Array.from(js.assignment)).toEqual(Array.from(ort.assignment));
      expect(Array.from(js.centroids)).toEqual(Array.from(ort.centroids));
      expect(Array.from(js.distance)).toEqual(Array.from(ort.distance));
      expect(js.iterations).toBe(ort.iterations);
    }
  });

  it('mini-batch recovers planted clusters too', async () => {
    const k = 6;
    const dim = 24;
    const { x, label, n } = planted(2, k, 300, dim, 0.15);
    const r = await sphericalKMeans(x, n, dim, { k, seed: 1, minibatch: true, batchSize: 256, iters: 10 });
    expectRecovered(label, r.assignment, k);
    expect(r.iterations).toBeGreaterThan(0);
  });

  it('k-means++ spreads the seeds over the planted clusters', () => {
    const k = 10;
    const dim = 16;
    const { x, n } = planted(4, k, 50, dim, 0.05);
    const seeds = kmeansPlusPlus(x, n, dim, k, new Rng(0));
    // Every seed is a data row; no two seeds come from the same tight cluster (δ between them large).
    let minGap = Infinity;
    for (let a = 0; a < k; a++)
      for (let b = a + 1; b < k; b++) {
        let s = 0;
        for (let t = 0; t < dim; t++) s += seeds[a * dim + t] * seeds[b * dim + t];
        minGap = Math.min(minGap, 1 - s);
      }
    expect(minGap).toBeGreaterThan(0.2);
  });

  it('re-seeds empty clusters and handles duplicate-only data', async () => {
    // 3 distinct points, many copies; k = 4 forces duplicate seeds → an empty cluster.
    const dim = 4;
    const base = [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
    ];
    const n = 30;
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) x.set(base[i % 3], i * dim);
    const r = await sphericalKMeans(x, n, dim, { k: 4, seed: 0, iters: 3 });
    expect(r.assignment.length).toBe(n);
    expect(r.inertia).toBeCloseTo(0, 6);
    expect(r.reseeded).toBeGreaterThan(0);
  });

  it('rejects k > n with a usage error and bad options with INVALID_OPTION', async () => {
    const x = new Float32Array(12).fill(0.5);
    await expect(sphericalKMeans(x, 3, 4, { k: 4 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_USAGE' });
    await expect(sphericalKMeans(x, 3, 4, { k: 2, iters: -1 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    const ac = new AbortController();
    ac.abort();
    await expect(sphericalKMeans(x, 3, 4, { k: 2, signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
  });
});
