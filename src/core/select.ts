/**
 * Within-cluster selection: keep the `quota_j` members of cluster j that come first in the order
 * "largest key first, equal keys by lower row first". The key encodes the policy:
 * - `hard`: larger δ first (the least prototypical samples; the paper's choice),
 * - `easy`: smaller δ first,
 * - `random`: a seeded hash of the row index.
 *
 * Thresholds are found by a per-cluster radix select over the records' 32-bit keys (≤ 3 passes over
 * the (cluster, δ) records, a k×2^b histogram, no per-cluster sort and no extra per-sample memory),
 * so exact mode stays at 8 bytes per sample. Pure math, no I/O.
 */
import { checkOption } from './errors.js';

export type SelectionPolicy = 'hard' | 'easy' | 'random';
export const SELECTION_POLICIES: readonly SelectionPolicy[] = ['hard', 'easy', 'random'];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** uint32 key that sorts like the float32 value (total order; −0 < +0; NaN never reaches here). */
export function orderedFloatBits(value: number): number {
  f32[0] = value;
  const b = u32[0];
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** A 32-bit avalanche hash of (row, seed), for the `random` policy. */
export function rowHash(row: number, seed: number): number {
  let h = (Math.imul(row ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(Math.floor(row / 4294967296) + seed, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The selection key of one record under `policy`. Larger keys are kept first. */
export function selectionKey(policy: SelectionPolicy, distance: number, row: number, seed: number): number {
  switch (policy) {
    case 'hard':
      return orderedFloatBits(distance);
    case 'easy':
      return ~orderedFloatBits(distance) >>> 0;
    case 'random':
      return rowHash(row, seed);
  }
}

/** Per-cluster thresholds: keep iff key > threshold, or key == threshold among the first `takeEqual` such rows. */
export interface SelectionThresholds {
  policy: SelectionPolicy;
  seed: number;
  threshold: Uint32Array;
  takeEqual: Float64Array;
  /** 1 = keep every member, 2 = keep none, 0 = use the threshold. */
  mode: Uint8Array;
}

/** The per-sample records of exact mode: cluster id (−1: not assigned) and δ, row-aligned. */
export interface ClusterRecords {
  cluster: Int32Array;
  distance: Float32Array;
  /** Number of valid records (arrays may be longer). */
  n: number;
}

/**
 * Finds, for every cluster, the threshold key that keeps exactly quota[j] members.
 * `size[j]` must be the number of records with cluster j.
 */
export function selectionThresholds(
  records: ClusterRecords,
  size: ArrayLike<number>,
  quota: ArrayLike<number>,
  policy: SelectionPolicy,
  seed = 0,
): SelectionThresholds {
  checkOption(SELECTION_POLICIES.includes(policy), 'which', 'hard | easy | random', policy);
  const k = quota.length;
  const { cluster, distance, n } = records;
  const threshold = new Uint32Array(k);
  const takeEqual = new Float64Array(k);
  const mode = new Uint8Array(k);
  const need = new Float64Array(k);
  const prefix = new Uint32Array(k);
  let open = 0;
  for (let j = 0; j < k; j++) {
    if (quota[j] <= 0) mode[j] = 2;
    else if (quota[j] >= size[j]) mode[j] = 1;
    else {
      need[j] = quota[j];
      open++;
    }
  }
  // Bits per round: keep the k×2^b histogram ≤ 8M counters (32 MB).
  let bitsPerRound = 11;
  while (bitsPerRound > 4 && k * 2 ** bitsPerRound > 1 << 23) bitsPerRound--;
  let prefixBits = 0;
  while (open > 0 && prefixBits < 32) {
    const b = Math.min(bitsPerRound, 32 - prefixBits);
    const bins = 1 << b;
    const shift = 32 - prefixBits - b;
    const mask = bins - 1;
    const hist = new Uint32Array(k * bins);
    for (let i = 0; i < n; i++) {
      const j = cluster[i];
      if (j < 0 || mode[j] !== 0) continue;
      const key = selectionKey(policy, distance[i], i, seed);
      if (prefixBits > 0 && key >>> (32 - prefixBits) !== prefix[j]) continue;
      hist[j * bins + ((key >>> shift) & mask)]++;
    }
    for (let j = 0; j < k; j++) {
      if (mode[j] !== 0) continue;
      let above = 0;
      let t = bins - 1;
      for (; t > 0; t--) {
        const h = hist[j * bins + t];
        if (above + h >= need[j]) break;
        above += h;
      }
      need[j] -= above;
      prefix[j] = ((prefix[j] << b) | t) >>> 0;
    }
    prefixBits += b;
  }
  for (let j = 0; j < k; j++) {
    if (mode[j] !== 0) continue;
    threshold[j] = prefix[j];
    takeEqual[j] = need[j];
  }
  return { policy, seed, threshold, takeEqual, mode };
}

/**
 * Applies thresholds to records visited in ascending row order (stateful: it counts the equal-key
 * rows taken so far per cluster). One instance per pass.
 */
export class ThresholdSelector {
  private readonly takenEqual: Float64Array;
  /**
   * `takenBefore[j]`: equal-key rows of cluster j that come before the first row this selector
   * sees (a distributed part that starts mid-way through the rows); default none.
   */
  constructor(private readonly t: SelectionThresholds, takenBefore?: ArrayLike<number>) {
    this.takenEqual = takenBefore ? Float64Array.from(takenBefore) : new Float64Array(t.threshold.length);
  }

  keep(cluster: number, distance: number, row: number): boolean {
    const m = this.t.mode[cluster];
    if (m === 1) return true;
    if (m === 2) return false;
    const key = selectionKey(this.t.policy, distance, row, this.t.seed);
    const th = this.t.threshold[cluster];
    if (key > th) return true;
    if (key === th && this.takenEqual[cluster] < this.t.takeEqual[cluster]) {
      this.takenEqual[cluster]++;
      return true;
    }
    return false;
  }
}
