/**
 * The per-cluster radix select of {@link selectionThresholds}, split so the records can live in
 * many parts on many machines: each round every part histograms the next bits of its selection keys
 * (sparse), the histograms are merged, and the state advances. After the rounds (≤ 32 bits) the
 * thresholds are exactly those of the single-pass select, and the final round's per-part counts at
 * the threshold give the equal-key rows each part holds, so a prefix sum in part order tells every
 * part how many of the `takeEqual` ties earlier rows already took ("lower global row first").
 * Pure math, no I/O.
 */
import { checkOption } from './errors.js';
import { selectionKey, SELECTION_POLICIES, type ClusterRecords, type SelectionPolicy, type SelectionThresholds } from './select.js';

/** Where a distributed radix select stands between rounds (plain arrays: it travels as JSON). */
export interface RadixSelectState {
  policy: SelectionPolicy;
  seed: number;
  k: number;
  bitsPerRound: number;
  /** Key bits already fixed (0 … 32). */
  prefixBits: number;
  prefix: number[];
  /** Members still to take from the keys below the prefix's bin. */
  need: number[];
  /** 1 = keep every member, 2 = keep none, 0 = threshold. */
  mode: number[];
}

/** A part's histogram for one round: `index = cluster · bins + bin`, ascending, with counts. */
export interface SparseHistogram {
  index: number[];
  count: number[];
}

/** The start state: clusters whose quota is 0 or all of them are settled, the others open. */
export function startRadixSelect(size: ArrayLike<number>, quota: ArrayLike<number>, policy: SelectionPolicy, seed: number): RadixSelectState {
  checkOption(SELECTION_POLICIES.includes(policy), 'which', 'hard | easy | random', policy);
  const k = quota.length;
  const mode = new Array<number>(k).fill(0);
  const need = new Array<number>(k).fill(0);
  for (let j = 0; j < k; j++) {
    if (quota[j] <= 0) mode[j] = 2;
    else if (quota[j] >= size[j]) mode[j] = 1;
    else need[j] = quota[j];
  }
  // Same bits per round as the single-pass select (k×2^b ≤ 8M counters when merged).
  let bitsPerRound = 11;
  while (bitsPerRound > 4 && k * 2 ** bitsPerRound > 1 << 23) bitsPerRound--;
  return { policy, seed, k, bitsPerRound, prefixBits: 0, prefix: new Array<number>(k).fill(0), need, mode };
}

/** Whether another round is needed. */
export function radixSelectOpen(state: RadixSelectState): boolean {
  return state.prefixBits < 32 && state.mode.some((m) => m === 0);
}

function roundShape(state: RadixSelectState): { b: number; bins: number; shift: number; mask: number } {
  const b = Math.min(state.bitsPerRound, 32 - state.prefixBits);
  const bins = 2 ** b;
  return { b, bins, shift: 32 - state.prefixBits - b, mask: bins - 1 };
}

/** One part's histogram of the next key bits, over its open-cluster records under their prefix. */
export function partRoundHistogram(state: RadixSelectState, records: ClusterRecords, rowOffset: number): SparseHistogram {
  const { bins, shift, mask } = roundShape(state);
  const { cluster, distance, n } = records;
  const { prefixBits, prefix, mode, policy, seed } = state;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const j = cluster[i];
    if (j < 0 || mode[j] !== 0) continue;
    const key = selectionKey(policy, distance[i], rowOffset + i, seed);
    if (prefixBits > 0 && key >>> (32 - prefixBits) !== prefix[j]) continue;
    const idx = j * bins + ((key >>> shift) & mask);
    counts.set(idx, (counts.get(idx) ?? 0) + 1);
  }
  const index = [...counts.keys()].sort((a, b) => a - b);
  return { index, count: index.map((x) => counts.get(x) as number) };
}

/** The next state from the merged histograms of every part (any order: counts add exactly). */
export function advanceRadixSelect(state: RadixSelectState, parts: Iterable<SparseHistogram>): RadixSelectState {
  const { b, bins } = roundShape(state);
  const { k } = state;
  const merged = new Map<number, number>();
  for (const h of parts) for (let t = 0; t < h.index.length; t++) merged.set(h.index[t], (merged.get(h.index[t]) ?? 0) + h.count[t]);
  const byCluster = new Map<number, Map<number, number>>();
  for (const [idx, c] of merged) {
    const j = Math.floor(idx / bins);
    let m = byCluster.get(j);
    if (!m) byCluster.set(j, (m = new Map<number, number>()));
    m.set(idx - j * bins, c);
  }
  const prefix = state.prefix.slice();
  const need = state.need.slice();
  for (let j = 0; j < k; j++) {
    if (state.mode[j] !== 0) continue;
    const hist = byCluster.get(j);
    let above = 0;
    let t = bins - 1;
    for (; t > 0; t--) {
      const h = hist?.get(t) ?? 0;
      if (above + h >= need[j]) break;
      above += h;
    }
    need[j] -= above;
    prefix[j] = ((prefix[j] * bins) | t) >>> 0; // < 2^32: ToInt32 wraps, >>> 0 restores
  }
  return { ...state, prefixBits: state.prefixBits + b, prefix, need };
}

/** The finished thresholds (as {@link selectionThresholds} computes them in one pass). */
export function radixThresholds(state: RadixSelectState): SelectionThresholds {
  const k = state.k;
  const threshold = new Uint32Array(k);
  const takeEqual = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    if (state.mode[j] !== 0) continue;
    threshold[j] = state.prefix[j];
    takeEqual[j] = state.need[j];
  }
  return { policy: state.policy, seed: state.seed, threshold, takeEqual, mode: Uint8Array.from(state.mode) };
}

/**
 * Per part, the equal-key rows of each cluster held by the parts before it (sparse: cluster → rows),
 * from every part's final-round histogram in part order. Feed it to `new ThresholdSelector(t, …)`.
 */
export function tiesBefore(lastRound: RadixSelectState, final: RadixSelectState, partHists: readonly SparseHistogram[]): Record<number, number>[] {
  const { bins } = roundShape(lastRound);
  const mask = bins - 1;
  const running = new Map<number, number>();
  const out: Record<number, number>[] = [];
  for (const h of partHists) {
    const before: Record<number, number> = {};
    for (const [j, c] of running) before[j] = c;
    out.push(before);
    for (let t = 0; t < h.index.length; t++) {
      const j = Math.floor(h.index[t] / bins);
      if (final.mode[j] === 0 && h.index[t] - j * bins === (final.prefix[j] & mask)) running.set(j, (running.get(j) ?? 0) + h.count[t]);
    }
  }
  return out;
}

/** Dense takenBefore array for a part from its sparse {@link tiesBefore} entry. */
export function denseTies(k: number, sparse: Record<number, number> | undefined): Float64Array {
  const out = new Float64Array(k);
  if (sparse) for (const [j, c] of Object.entries(sparse)) out[Number(j)] = c;
  return out;
}
