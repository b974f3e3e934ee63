import { describe, expect, it } from 'vitest';
import { orderedFloatBits, selectionKey, selectionThresholds, ThresholdSelector, type SelectionPolicy } from '../../src/core/select.js';
import { Rng } from '../../src/core/rng.js';

function referenceKeep(cluster: Int32Array, distance: Float32Array, quota: number[], policy: SelectionPolicy, seed: number): Set<number> {
  const kept = new Set<number>();
  for (let j = 0; j < quota.length; j++) {
    const rows = [];
    for (let i = 0; i < cluster.length; i++) if (cluster[i] === j) rows.push(i);
    rows.sort((x, y) => {
      const kx = selectionKey(policy, distance[x], x, seed);
      const ky = selectionKey(policy, distance[y], y, seed);
      return ky - kx || x - y;
    });
    for (const r of rows.slice(0, quota[j])) kept.add(r);
  }
  return kept;
}

describe('per-cluster selection (radix select)', () => {
  it('orders float32 values like their keys, negatives included', () => {
    const vals = [-1, -1e-8, -0, 0, 1e-30, 1e-8, 0.5, 1, 2];
    for (let i = 1; i < vals.length; i++) expect(orderedFloatBits(vals[i])).toBeGreaterThanOrEqual(orderedFloatBits(vals[i - 1]));
    expect(orderedFloatBits(0.5)).toBeGreaterThan(orderedFloatBits(0.4999999));
  });

  for (const policy of ['hard', 'easy', 'random'] as const) {
    it(`keeps exactly the first quota_j rows in sort order (${policy}, with ties)`, () => {
      const rng = new Rng(policy.length);
      const n = 5000;
      const k = 37;
      const cluster = new Int32Array(n);
      const distance = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        cluster[i] = rng.next() < 0.02 ? -1 : rng.int(k);
        // Coarse values force many exact ties, which must go to the lower row.
        distance[i] = Math.round(rng.next() * 40) / 50;
      }
      const size = new Array<number>(k).fill(0);
      for (let i = 0; i < n; i++) if (cluster[i] >= 0) size[cluster[i]]++;
      const quota = size.map((s, j) => (j % 7 === 0 ? 0 : j % 5 === 0 ? s : Math.floor(s * rng.next())));
      const t = selectionThresholds({ cluster, distance, n }, size, quota, policy, 42);
      const sel = new ThresholdSelector(t);
      const got = new Set<number>();
      for (let i = 0; i < n; i++) if (cluster[i] >= 0 && sel.keep(cluster[i], distance[i], i)) got.add(i);
      const want = referenceKeep(cluster, distance, quota, policy, 42);
      expect(got.size).toBe(quota.reduce((s, v) => s + v, 0));
      expect([...got].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
    });
  }
});
