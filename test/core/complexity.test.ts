// interClusterDistance computes each centroid pair once (a symmetric table) for k ≤ 2048; it must
// give bit-identical d_inter to the row-by-row loop (every pair twice) used above that.
import { describe, expect, it } from 'vitest';
import { interClusterDistance, interClusterDistanceByRows } from '../../src/core/complexity.js';
import { Rng } from '../../src/core/rng.js';
import { unitRows } from '../helpers/vectors.js';

describe('interClusterDistance', () => {
  it('the symmetric table equals the row-by-row loop bit for bit', () => {
    const rng = new Rng(7);
    for (const [k, dim, nn] of [
      [300, 96, 20],
      [2, 8, 20],
      [57, 512, 5],
    ] as const) {
      const c = unitRows(rng, k, dim);
      const a = interClusterDistance(c, k, dim, nn);
      const b = interClusterDistanceByRows(c, k, dim, Math.min(nn, k - 1));
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      expect(a.every((v) => v > 0 && v < 2)).toBe(true);
    }
  });
});
