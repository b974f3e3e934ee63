import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { binOf, ClusterSketches, DistanceHistogram, LOG_MIN, SKETCH_MAX, sketchScaleFor, type ClusterSketchesJSON, type DistanceHistogramJSON, type SketchScale } from '../../src/core/sketch.js';

function exactQuantile(sorted: Float64Array, q: number): number {
  // Lower empirical quantile: the smallest value with at least q·n values ≤ it.
  const i = Math.max(0, Math.ceil(q * sorted.length) - 1);
  return sorted[i];
}

function randomDistances(rng: Rng, n: number): Float64Array {
  // A skewed mixture on [0, 2], like real δ: most mass near 0.2–0.6.
  return Float64Array.from({ length: n }, () => {
    const u = rng.next();
    if (u < 0.7) return Math.abs(0.35 + 0.08 * rng.normal());
    if (u < 0.95) return Math.min(2, 0.6 + rng.next() * 0.4);
    return rng.next() * 2;
  });
}

describe('DistanceHistogram', () => {
  it.each(['linear', 'log'] as const)('quantiles are within one bin of the exact sorted quantiles (%s)', (scale: SketchScale) => {
    const rng = new Rng(1);
    const xs = randomDistances(rng, 50_000);
    const h = new DistanceHistogram(2048, scale);
    h.addMany(xs);
    expect(h.count).toBe(xs.length);
    const sorted = Float64Array.from(xs).sort();
    // Width of the bin holding v: 2/bins (linear), or v·(e^step − 1) (log, geometric bins).
    const step = Math.log(SKETCH_MAX / LOG_MIN) / (h.bins - 1);
    const width = (v: number): number => (scale === 'linear' ? 2 / h.bins : Math.max(LOG_MIN, v * Math.expm1(step)));
    for (const q of [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.7, 0.9, 0.99, 0.999, 1]) {
      const exact = exactQuantile(sorted, q);
      expect(Math.abs(h.quantile(q) - exact)).toBeLessThanOrEqual(width(exact) + 1e-12);
    }
    // fractionAbove is the inverse of quantile, and close to the exact fraction.
    for (const q of [0.05, 0.3, 0.5, 0.8, 0.97]) expect(h.fractionAbove(h.quantile(q))).toBeCloseTo(1 - q, 9);
    for (const theta of [0.1, 0.3333, 0.5, 0.9, 1.5]) {
      const exact = xs.filter((v) => v > theta).length / xs.length;
      expect(Math.abs(h.fractionAbove(theta) - exact)).toBeLessThan(0.01);
    }
    expect(h.fractionAbove(-1)).toBe(1);
    expect(h.fractionAbove(2)).toBe(0);
  });

  it('merge equals adding everything to one histogram', () => {
    const rng = new Rng(2);
    const xs = randomDistances(rng, 10_000);
    const all = new DistanceHistogram(512);
    all.addMany(xs);
    const a = new DistanceHistogram(512);
    const b = new DistanceHistogram(512);
    xs.forEach((v, i) => (i % 3 === 0 ? a : b).add(v));
    a.merge(b);
    expect(Array.from(a.counts)).toEqual(Array.from(all.counts));
    expect(a.count).toBe(all.count);
    expect(a.quantile(0.37)).toBe(all.quantile(0.37));
    expect(() => a.merge(new DistanceHistogram(256))).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });

  it('clamps out-of-range values, ignores NaN, is NaN when empty, round-trips through JSON', () => {
    const h = new DistanceHistogram(16, 'linear');
    expect(h.quantile(0.5)).toBeNaN();
    expect(h.fractionAbove(0.5)).toBeNaN();
    h.addMany([-1e-7, 0, 2, 5, NaN, 1]);
    expect(h.count).toBe(5);
    expect(h.counts[0]).toBe(2);
    expect(h.counts[15]).toBe(2);
    expect(binOf(NaN, 16)).toBe(-1);
    const back = DistanceHistogram.fromJSON(JSON.parse(JSON.stringify(h)) as DistanceHistogramJSON);
    expect(Array.from(back.counts)).toEqual(Array.from(h.counts));
    expect(back.count).toBe(5);
    expect(() => DistanceHistogram.fromJSON({ ...h.toJSON(), count: 4 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => new DistanceHistogram(0)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });

  it('log bins resolve tight clusters (δ ~ 1e-4) to 1% relative error, where 2,048 linear bins cannot', () => {
    const rng = new Rng(5);
    // 1 − cos of 512-d noise around a centre: δ concentrated around its mean (~6% relative spread).
    const xs = Float64Array.from({ length: 20_000 }, () => 2.4e-4 * (1 + 0.06 * rng.normal()));
    const sorted = Float64Array.from(xs).sort();
    const log = new DistanceHistogram(2048, 'log');
    const linear = new DistanceHistogram(2048, 'linear');
    log.addMany(xs);
    linear.addMany(xs);
    expect(linear.counts[0]).toBe(xs.length); // every member in the first linear bin
    for (const q of [0.01, 0.1, 0.277, 0.5, 0.723, 0.9, 0.99]) {
      const exact = exactQuantile(sorted, q);
      expect(Math.abs(log.quantile(q) - exact) / exact, `q ${q}`).toBeLessThan(0.01);
      const above = sorted.filter((v) => v > log.quantile(q)).length / xs.length;
      expect(Math.abs(above - (1 - q)), `q ${q}`).toBeLessThan(0.01);
    }
    expect(Math.abs(linear.quantile(0.5) - exactQuantile(sorted, 0.5)) / exactQuantile(sorted, 0.5)).toBeGreaterThan(0.5);
  });

  it('log layout: zero bin, clamping, JSON round trip; JSON without scale is linear; layouts do not merge', () => {
    const h = new DistanceHistogram(16, 'log');
    h.addMany([-1e-7, 0, LOG_MIN / 2, 2, 5, NaN, 1e-3]);
    expect(h.counts[0]).toBe(3);
    expect(h.counts[15]).toBe(2);
    expect(binOf(1e-3, 16, 'log')).toBeGreaterThan(0);
    expect(h.fractionAbove(h.quantile(0.6))).toBeCloseTo(0.4, 9);
    const back = DistanceHistogram.fromJSON(JSON.parse(JSON.stringify(h)) as DistanceHistogramJSON);
    expect(back.scale).toBe('log');
    expect(Array.from(back.counts)).toEqual(Array.from(h.counts));
    const { scale: _omit, ...v1 } = new DistanceHistogram(16, 'linear').toJSON();
    expect(DistanceHistogram.fromJSON(v1).scale).toBe('linear');
    const bad = { ...h.toJSON(), scale: 'cubic' } as unknown as Parameters<typeof DistanceHistogram.fromJSON>[0];
    expect(() => DistanceHistogram.fromJSON(bad)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => h.merge(new DistanceHistogram(16, 'linear'))).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => new ClusterSketches(2, 1, 'log')).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});

describe('sketchScaleFor', () => {
  it('picks log for tight clusters, linear where linear bins are finer, log when nothing is known', () => {
    expect(sketchScaleFor([2e-4, 4e-4, 6e-4], [10, 10, 10])).toBe('log');
    expect(sketchScaleFor([0.2, 0.3, 0.45, 1e-4], [10, 10, 10, 10])).toBe('linear');
    expect(sketchScaleFor([0.05, 0.08, 0.3], [10, 10, 0])).toBe('log'); // the empty cluster does not count
    expect(sketchScaleFor([0.3], [0])).toBe('log');
    // crossover: where a geometric bin is as wide as a linear one (0.119 at 2,048 bins)
    expect(sketchScaleFor([0.118], [1])).toBe('log');
    expect(sketchScaleFor([0.12], [1])).toBe('linear');
  });
});

describe('ClusterSketches', () => {
  it('matches per-cluster histograms, skips error rows, merges and round-trips', () => {
    const rng = new Rng(3);
    const k = 7;
    const n = 20_000;
    const cluster = Int32Array.from({ length: n }, () => (rng.next() < 0.02 ? -1 : rng.int(k)));
    const distance = Float32Array.from(randomDistances(rng, n));
    distance[5] = NaN;
    const s = new ClusterSketches(k, 1024);
    s.addBatch(cluster.subarray(0, 12_000), distance.subarray(0, 12_000));
    const s2 = new ClusterSketches(k, 1024);
    for (let i = 12_000; i < n; i++) s2.add(cluster[i], distance[i]);
    s.merge(s2);
    const per = Array.from({ length: k }, () => new DistanceHistogram(1024));
    for (let i = 0; i < n; i++) if (cluster[i] >= 0) per[cluster[i]].add(distance[i]);
    let total = 0;
    for (let j = 0; j < k; j++) {
      expect(s.count(j)).toBe(per[j].count);
      expect(s.quantile(j, 0.3)).toBe(per[j].quantile(0.3));
      expect(s.fractionAbove(j, 0.5)).toBe(per[j].fractionAbove(0.5));
      expect(Array.from(s.histogram(j).counts)).toEqual(Array.from(per[j].counts));
      total += per[j].count;
    }
    expect(s.total).toBe(total);
    const back = ClusterSketches.fromJSON(JSON.parse(JSON.stringify(s)) as ClusterSketchesJSON);
    expect(Array.from(back.totals)).toEqual(Array.from(s.totals));
    expect(back.quantile(3, 0.9)).toBe(s.quantile(3, 0.9));
    expect(() => s.merge(new ClusterSketches(k, 512))).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });

  it('quantile and binShares scan only the occupied bins yet equal full scans (add, addBatch, merge, counts.set)', () => {
    // Tight clusters (a few dozen of 2,048 log bins, like bench/synth.ts) and one empty cluster.
    const rng = new Rng(5);
    const k = 4;
    const centre = [3e-4, 2e-3, 0.4];
    const fill = (s: ClusterSketches, n: number, batch: boolean): void => {
      const cl = Int32Array.from({ length: n }, () => rng.int(3));
      const ds = Float32Array.from(cl, (j) => centre[j] * (1 + 0.05 * rng.normal()));
      if (batch) s.addBatch(cl, ds);
      else for (let i = 0; i < n; i++) s.add(cl[i], ds[i]);
    };
    const a = new ClusterSketches(k, 2048, 'log');
    fill(a, 3000, true);
    const b = new ClusterSketches(k, 2048, 'log');
    fill(b, 3000, false);
    a.merge(b);
    const restored = new ClusterSketches(k, 2048, 'log');
    restored.counts.set(a.counts);
    restored.recountTotals();
    const fullShares = (s: ClusterSketches, j: number, bin: number): { inside: number; above: number } => {
      let above = 0;
      for (let t = bin + 1; t < s.bins; t++) above += s.counts[j * s.bins + t];
      return { inside: s.counts[j * s.bins + bin] / s.count(j), above: above / s.count(j) };
    };
    for (const s of [a, restored]) {
      for (let j = 0; j < k; j++) {
        const h = s.histogram(j); // a standalone histogram scans every bin
        for (const q of [0, 0.01, 0.277, 0.5, 0.723, 0.99, 1]) expect(Object.is(s.quantile(j, q), h.quantile(q))).toBe(true);
        for (const bin of [0, s.binIndex(centre[j % 3]), s.binIndex(centre[j % 3]) + 3, 2047]) expect(s.binShares(j, bin)).toEqual(fullShares(s, j, bin));
      }
      expect(Number.isNaN(s.quantile(3, 0.5))).toBe(true);
    }
  });
});
