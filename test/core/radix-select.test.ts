/**
 * The distributed radix select (per-part histograms, merged round by round, tie prefix sums) must
 * decide exactly what the single-pass select decides, for any split of the rows into parts.
 */
import { describe, expect, it } from 'vitest';
import { ClusterAccumulator } from '../../src/core/complexity.js';
import { ExactSums } from '../../src/core/exact-sum.js';
import { advanceRadixSelect, denseTies, partRoundHistogram, radixSelectOpen, radixThresholds, startRadixSelect, tiesBefore, type RadixSelectState, type SparseHistogram } from '../../src/core/radix-select.js';
import { Rng } from '../../src/core/rng.js';
import { selectionThresholds, ThresholdSelector } from '../../src/core/select.js';

function randomSplit(n: number, parts: number, rng: Rng): number[] {
  const cuts = new Set<number>([0, n]);
  while (cuts.size < parts + 1) cuts.add(1 + rng.int(n - 1));
  return [...cuts].sort((a, b) => a - b);
}

describe('distributed radix select', () => {
  for (const policy of ['hard', 'easy', 'random'] as const) {
    it(`equals the single-pass select for every split (${policy}, many ties, k = 37)`, () => {
      const rng = new Rng(7 + policy.length);
      const n = 6000;
      const k = 37;
      const cluster = new Int32Array(n);
      const distance = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        cluster[i] = rng.next() < 0.02 ? -1 : rng.int(k);
        distance[i] = Math.round(rng.next() * 40) / 50;
      }
      const size = new Array<number>(k).fill(0);
      for (let i = 0; i < n; i++) if (cluster[i] >= 0) size[cluster[i]]++;
      const quota = size.map((s, j) => (j % 7 === 0 ? 0 : j % 5 === 0 ? s : Math.floor(s * rng.next())));
      const single = selectionThresholds({ cluster, distance, n }, size, quota, policy, 3);
      const one = new ThresholdSelector(single);
      const want: number[] = [];
      for (let i = 0; i < n; i++) if (cluster[i] >= 0 && one.keep(cluster[i], distance[i], i)) want.push(i);

      for (const nParts of [1, 3, 11]) {
        const cuts = randomSplit(n, nParts, rng);
        const records = cuts.slice(0, -1).map((a, p) => ({ cluster: cluster.subarray(a, cuts[p + 1]), distance: distance.subarray(a, cuts[p + 1]), n: cuts[p + 1] - a, offset: a }));
        let state: RadixSelectState = startRadixSelect(size, quota, policy, 3);
        let last = state;
        let hists: SparseHistogram[] = [];
        let rounds = 0;
        while (radixSelectOpen(state)) {
          hists = records.map((r) => partRoundHistogram(state, r, r.offset));
          last = state;
          state = advanceRadixSelect(state, [...hists].reverse()); // merge order must not matter
          rounds++;
        }
        expect(rounds).toBe(3);
        const t = radixThresholds(state);
        expect(Array.from(t.threshold)).toEqual(Array.from(single.threshold));
        expect(Array.from(t.takeEqual)).toEqual(Array.from(single.takeEqual));
        const before = tiesBefore(last, state, hists);
        const got: number[] = [];
        records.forEach((r, p) => {
          const sel = new ThresholdSelector(t, denseTies(k, before[p]));
          for (let i = 0; i < r.n; i++) if (r.cluster[i] >= 0 && sel.keep(r.cluster[i], r.distance[i], r.offset + i)) got.push(r.offset + i);
        });
        expect(got).toEqual(want);
      }
    });
  }
});

describe('exact Σδ', () => {
  it('gives the same bits for any split and merge order, and is close to the float64 sum', () => {
    const rng = new Rng(11);
    const n = 20000;
    const k = 5;
    const cluster = new Int32Array(n);
    const distance = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      cluster[i] = rng.int(k);
      distance[i] = rng.next() < 0.01 ? -1e-7 * rng.next() : rng.next() < 0.01 ? 1e-30 * rng.next() : 2 * rng.next();
    }
    const whole = new ClusterAccumulator(k);
    whole.add(cluster, distance, n);
    const merged = new ClusterAccumulator(k);
    const cuts = randomSplit(n, 9, rng);
    const parts = cuts.slice(0, -1).map((a, p) => {
      const acc = new ClusterAccumulator(k);
      acc.add(cluster.subarray(a, cuts[p + 1]), distance.subarray(a, cuts[p + 1]));
      return acc;
    });
    for (const acc of parts.reverse()) merged.merge(acc);
    const w = whole.stats();
    const m = merged.stats();
    expect(Array.from(m.size)).toEqual(Array.from(w.size));
    expect(Array.from(m.dIntra)).toEqual(Array.from(w.dIntra)); // bit-identical
    for (let j = 0; j < k; j++) {
      let plain = 0;
      for (let i = 0; i < n; i++) if (cluster[i] === j) plain += distance[i];
      expect(Math.abs(whole.sums.value(j) - plain)).toBeLessThan(1e-9 * Math.abs(plain));
    }
    // Slots round-trip through JSON exactly.
    const copy = new ExactSums(k, Float64Array.from(JSON.parse(JSON.stringify(Array.from(whole.sums.slots))) as number[]));
    for (let j = 0; j < k; j++) expect(copy.value(j)).toBe(whole.sums.value(j));
  });
});
