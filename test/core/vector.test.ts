/** normalizeRows: four rows summed at a time must give, bit for bit, what one row at a time gives. */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { normalizeRows } from '../../src/core/vector.js';

/** The plain definition: each row's squared norm summed left to right in float64, then scaled. */
function oneRowAtATime(x: Float32Array, n: number, dim: number, tolerance: number): { renormalized: number; invalid: number[] } {
  let renormalized = 0;
  const invalid: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let t = 0; t < dim; t++) s += x[i * dim + t] * x[i * dim + t];
    if (!Number.isFinite(s) || s === 0) {
      invalid.push(i);
      continue;
    }
    const norm = Math.sqrt(s);
    if (Math.abs(norm - 1) > tolerance) {
      for (let t = 0; t < dim; t++) x[i * dim + t] *= 1 / norm;
      renormalized++;
    }
  }
  return { renormalized, invalid };
}

describe('normalizeRows', () => {
  it('equals the one-row-at-a-time definition bit for bit, invalid rows and a ragged tail included', () => {
    const rng = new Rng(5);
    for (const [n, dim] of [[103, 37], [8, 512], [3, 5], [0, 4]]) {
      const x = new Float32Array(n * dim);
      for (let i = 0; i < x.length; i++) x[i] = rng.normal() * (1 + (i % 7));
      for (let i = 0; i < n; i += 5) {
        // every fifth row exactly unit length in float64 terms, left untouched within the tolerance
        let s = 0;
        for (let t = 0; t < dim; t++) s += x[i * dim + t] ** 2;
        for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
      }
      if (n > 10) {
        x.fill(0, 2 * dim, 3 * dim);
        x[6 * dim + 1] = NaN;
        x[9 * dim] = -Infinity;
      }
      const want = x.slice();
      const expected = oneRowAtATime(want, n, dim, 1e-4);
      const got = normalizeRows(x, n, dim, 1e-4);
      expect(Buffer.from(x.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      expect(got.renormalized).toBe(expected.renormalized);
      expect(got.invalidCount).toBe(expected.invalid.length);
      expect(got.invalid ? Array.from(got.invalid.keys()).filter((i) => got.invalid?.[i]) : []).toEqual(expected.invalid);
      if (n > 10) expect(got.renormalized).toBeGreaterThan(0);
    }
  });
});
