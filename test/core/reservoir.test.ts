import { describe, expect, it } from 'vitest';
import { RowReservoir } from '../../src/core/reservoir.js';

/** Rows whose single value is their stream index. */
function indexRows(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i);
}

describe('RowReservoir', () => {
  it('keeps every row while under capacity', () => {
    const r = new RowReservoir(10, 2, 1);
    const src = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(r.offerRows(src, 3)).toBe(3);
    expect(r.size).toBe(3);
    expect(Array.from(r.sample())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('samples uniformly (inclusion frequency ≈ capacity / n for every position)', () => {
    const n = 200;
    const cap = 20;
    const trials = 3000;
    const hits = new Float64Array(n);
    const src = indexRows(n);
    for (let s = 0; s < trials; s++) {
      const r = new RowReservoir(cap, 1, s);
      // Offered in uneven batches, as a stream would.
      r.offerRows(src.subarray(0, 37), 37);
      r.offerRows(src.subarray(37), n - 37);
      expect(r.size).toBe(cap);
      expect(r.seen).toBe(n);
      const got = new Set(Array.from(r.sample()));
      expect(got.size).toBe(cap);
      for (const v of got) hits[v]++;
      for (let i = 0; i < cap; i++) expect(r.index[i]).toBe(r.data[i]);
    }
    const p = cap / n;
    const sd = Math.sqrt(trials * p * (1 - p));
    let chi2 = 0;
    for (let i = 0; i < n; i++) {
      expect(Math.abs(hits[i] - trials * p)).toBeLessThan(5 * sd);
      chi2 += (hits[i] - trials * p) ** 2 / (trials * p * (1 - p));
    }
    // χ² with ~n degrees of freedom: mean n, sd √(2n) ≈ 20.
    expect(chi2).toBeLessThan(n + 6 * Math.sqrt(2 * n));
    // Early and late halves equally represented.
    const early = hits.slice(0, n / 2).reduce((a, b) => a + b, 0);
    expect(Math.abs(early / (trials * cap) - 0.5)).toBeLessThan(0.02);
  });

  it('is deterministic for a seed and validates options', () => {
    const src = indexRows(5000);
    const a = new RowReservoir(50, 1, 42);
    const b = new RowReservoir(50, 1, 42);
    a.offerRows(src, 5000);
    for (let i = 0; i < 5000; i++) b.offerRow(src, i);
    expect(Array.from(a.sample())).toEqual(Array.from(b.sample()));
    expect(() => new RowReservoir(0, 1)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});
