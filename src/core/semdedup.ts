/**
 * SemDeDup (Abbas, Tirumala, Simig, Ganguli, Morcos, 2023): semantic deduplication within
 * k-means clusters of unit embeddings. Pure math, no I/O.
 *
 * Exact mode reproduces the reference rule (facebookresearch/SemDeDup, `sort_clusters.py` +
 * `semdedup.py`):
 * - each cluster's members are ordered by cosine distance δ to the centroid: `hard` = farthest
 *   first (Python's stable `sorted(reverse=True)`: equal δ keep ascending row order), `easy` = that
 *   list reversed, `random` = that list shuffled by a seeded {@link Rng} (one generator for all
 *   clusters in cluster order; the reference uses Python's `random`, so `random` is the same rule
 *   but not the same permutation);
 * - `M[j] = max(0, max_{i<j} ⟨x_i, x_j⟩)` over ALL earlier items in that order, removed or not (the
 *   reference takes the column max of the upper-triangular similarity matrix, whose zeros make the
 *   0 floor); item j is removed at ε when `M[j] > 1 − ε` (strict, as the reference);
 * - several ε are evaluated from the same M (the reference's `eps=…` columns); the first decides.
 * Similarities are computed in float64 from the float32 inputs (the reference uses a float32
 * matmul; the two can differ only for pairs within ~1e-6 of a threshold).
 *
 * Streaming mode (src/stages/dedup.ts) applies the same test in ARRIVAL order against KEPT items
 * only, with `≥ 1 − ε`: a sample is a duplicate when an earlier kept sample of its cluster has
 * similarity ≥ 1 − ε. The two differ by design: exact mode also removes an item whose only close
 * neighbour was itself removed (chains A≈B≈C remove B and C), streaming keeps C when B was dropped
 * and C is not close enough to A; and the order (δ-sorted vs arrival) picks which copy survives.
 * {@link streamingDedupBruteForce} is the all-pairs oracle of the streaming rule.
 *
 * Memory of exact mode: the member lists (4 bytes/row, CSR), `duplicateOf` (4 bytes/row) and the
 * embeddings of one cluster (or one group of clusters) at a time — the largest cluster's m × dim
 * floats must fit, as in the reference, which loads one cluster at a time. No m × m matrix is built.
 */
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from './errors.js';
import { choiceOption, integerOption } from './validate.js';
import { Rng } from './rng.js';
import type { ClusterRecords } from './select.js';
import { argmaxDot, type ArgmaxDot } from './vector.js';

/** In-cluster order: `hard` (farthest from the centroid first, the default), `easy`, `random`. */
export type DedupOrder = 'hard' | 'easy' | 'random';
export const DEDUP_ORDERS: readonly DedupOrder[] = ['hard', 'easy', 'random'];

/** Largest number of ε values evaluated at once. */
export const MAX_EPS_VALUES = 32;

/**
 * THE ε parser (library options and the CLI's `--dedup-eps` alike): 1..{@link MAX_EPS_VALUES}
 * finite numbers in (0, 1). Accepts a number, an array or a comma-separated string
 * ("0.01, 0.02,0.05"; every part must be a number: "0.1,,0.2" and "0.1," are refused). Returns a
 * new array. Throws ERR_DBPRUNE_INVALID_OPTION (option `eps`); the CLI maps that to a usage error.
 */
export function parseEpsList(eps: number | readonly number[] | string): number[] {
  let list: unknown[];
  if (typeof eps === 'string') list = eps.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  else if (typeof eps === 'number') list = [eps];
  else if (Array.isArray(eps)) list = (eps as readonly unknown[]).slice();
  else list = [];
  const expected = `1..${MAX_EPS_VALUES} numbers in (0, 1)`;
  checkOption(list.length >= 1 && list.length <= MAX_EPS_VALUES, 'eps', expected, eps);
  for (const e of list) checkOption(typeof e === 'number' && Number.isFinite(e) && e > 0 && e < 1, 'eps', expected, eps);
  return list as number[];
}

/** Per-cluster member lists in dedup order, CSR: members of cluster j are rows[offsets[j] .. offsets[j+1]). */
export interface ClusterMembers {
  k: number;
  /** k + 1 offsets into `rows`. */
  offsets: Float64Array;
  /** Row indices, grouped by cluster, each group in dedup order. */
  rows: Int32Array;
  /** Total rows of the records (duplicateOf arrays have this length). */
  n: number;
}

/**
 * Groups the records' rows by cluster (rows with cluster −1 are left out) and orders each group
 * as the reference does for `order` (see the module comment). Consumes (cluster, δ) records of
 * exact mode; allocates 4 bytes per row plus k + 1 offsets.
 *
 * Options: `order` default 'hard'; `seed` (integer, default 0) for 'random'.
 * Throws ERR_DBPRUNE_INVALID_OPTION for a bad order/seed, n ≥ 2^31, or a cluster id ≥ k.
 */
export function sortClusterMembers(records: ClusterRecords, k: number, order: DedupOrder = 'hard', seed = 0): ClusterMembers {
  choiceOption(order, 'order', DEDUP_ORDERS);
  integerOption(seed, 'seed');
  integerOption(k, 'k', { min: 1 });
  const { cluster, distance, n } = records;
  integerOption(n, 'n', { min: 0, max: 2 ** 31 - 1 });
  const offsets = new Float64Array(k + 1);
  for (let i = 0; i < n; i++) {
    const j = cluster[i];
    if (j < 0) continue;
    if (j >= k) throw new DbpruneError(ErrorCodes.INVALID_OPTION, `record ${i} has cluster ${j} ≥ k = ${k}`, { option: 'records', row: i });
    offsets[j + 1]++;
  }
  for (let j = 0; j < k; j++) offsets[j + 1] += offsets[j];
  const rows = new Int32Array(offsets[k]);
  const fill = offsets.slice(0, k);
  for (let i = 0; i < n; i++) {
    const j = cluster[i];
    if (j >= 0) rows[fill[j]++] = i;
  }
  const rng = order === 'random' ? new Rng(seed) : null;
  for (let j = 0; j < k; j++) {
    const a = offsets[j];
    const b = offsets[j + 1];
    if (b - a < 2) continue;
    const g = rows.subarray(a, b);
    // Rows are ascending here; a stable descending sort by δ keeps ascending rows on ties.
    const sorted = Array.from(g).sort((r1, r2) => distance[r2] - distance[r1] || r1 - r2);
    g.set(sorted);
    if (order === 'easy') g.reverse();
    else if (rng) {
      for (let i = g.length - 1; i > 0; i--) {
        const t = rng.int(i + 1);
        const tmp = g[i];
        g[i] = g[t];
        g[t] = tmp;
      }
    }
  }
  return { k, offsets, rows, n };
}

/** Per-item result of {@link semDedupCluster}: reference M and its argmax. */
export interface ClusterDedupScores {
  /** maxSim[j] = max(0, max over earlier items i of ⟨x_i, x_j⟩), float64 (the reference's M). */
  maxSim: Float64Array;
  /** argmax[j] = position (in the given order) of the earliest item attaining maxSim[j] when > 0, else −1. */
  argmax: Int32Array;
}

/**
 * The reference's M for one cluster: `emb` holds its m members in dedup order (m × dim, row-major
 * float32, unit rows). O(m² · dim) time, O(m) extra memory (no m × m matrix). Float64 dot products,
 * four earlier items per pass. Pure; `signal` is checked every 64 rows.
 * Throws ERR_DBPRUNE_DIM_MISMATCH when `emb` is shorter than m × dim; ERR_DBPRUNE_ABORTED.
 */
export function semDedupCluster(emb: Float32Array, m: number, dim: number, signal?: AbortSignal): ClusterDedupScores {
  if (emb.length < m * dim) throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `cluster embeddings hold ${emb.length} floats, fewer than ${m}×${dim}`, { m, dim });
  const maxSim = new Float64Array(m);
  const argmax = new Int32Array(m).fill(-1);
  const q = new Float64Array(dim);
  for (let j = 1; j < m; j++) {
    if ((j & 63) === 0) throwIfAborted(signal);
    const oj = j * dim;
    for (let t = 0; t < dim; t++) q[t] = emb[oj + t];
    const r = maxDotBefore(q, emb, j, dim);
    if (r.best > 0) {
      maxSim[j] = r.best;
      argmax[j] = r.arg;
    }
  }
  return { maxSim, argmax };
}

const scratch: ArgmaxDot = { best: -Infinity, arg: -1 };

/** max_{i < count} ⟨q, x_i⟩ in float64 over rows of `x`; earliest index on ties. Reuses one result object. */
function maxDotBefore(q: Float64Array, x: Float32Array, count: number, dim: number): ArgmaxDot {
  return argmaxDot(q, x, count, dim, scratch);
}

/**
 * Brute-force nearest kept item: max over the first `count` rows of `x` of ⟨q, x_i⟩ (float64,
 * earliest on ties). Returns { best: −Infinity, arg: −1 } when count = 0. The returned object is
 * reused by the next call: copy the fields out. Used by the streaming stage for small clusters.
 */
export function nearestByDot(q: Float64Array, x: Float32Array, count: number, dim: number): { best: number; arg: number } {
  return maxDotBefore(q, x, count, dim);
}

/** Result of exact SemDeDup over a dataset. */
export interface SemDedupResult {
  /** The ε values, in the order given; eps[0] decides. */
  eps: number[];
  /**
   * Per row: the row index of the earlier item (in dedup order, same cluster) it is most similar
   * to, when the row is removed at eps[0]; −1 when kept or not in any cluster.
   */
  duplicateOf: Int32Array;
  /** Rows that took part (assigned to a cluster). */
  members: number;
  /** Per ε: rows removed. */
  removed: number[];
  /** Per ε: fraction of members kept, (members − removed) / members (1 when members = 0). */
  keptFraction: number[];
  /** Per cluster: rows removed at eps[0]. */
  removedPerCluster: Float64Array;
  /** Size of the largest cluster (its m × dim floats bound the memory). */
  largestCluster: number;
}

function newResult(members: ClusterMembers, eps: number[]): SemDedupResult {
  let largest = 0;
  for (let j = 0; j < members.k; j++) largest = Math.max(largest, members.offsets[j + 1] - members.offsets[j]);
  return {
    eps,
    duplicateOf: new Int32Array(members.n).fill(-1),
    members: members.rows.length,
    removed: eps.map(() => 0),
    keptFraction: eps.map(() => 1),
    removedPerCluster: new Float64Array(members.k),
    largestCluster: largest,
  };
}

function applyCluster(res: SemDedupResult, members: ClusterMembers, j: number, emb: Float32Array, dim: number, signal?: AbortSignal): void {
  const a = members.offsets[j];
  const m = members.offsets[j + 1] - a;
  if (m < 2) return;
  const { maxSim, argmax } = semDedupCluster(emb, m, dim, signal);
  const thr = res.eps.map((e) => 1 - e);
  for (let p = 1; p < m; p++) {
    const s = maxSim[p];
    for (let e = 0; e < thr.length; e++) if (s > thr[e]) res.removed[e]++;
    if (s > thr[0]) {
      res.duplicateOf[members.rows[a + p]] = members.rows[a + argmax[p]];
      res.removedPerCluster[j]++;
    }
  }
}

function finish(res: SemDedupResult): SemDedupResult {
  res.keptFraction = res.removed.map((r) => (res.members === 0 ? 1 : (res.members - r) / res.members));
  return res;
}

/** Options of {@link exactSemDedup}. */
export interface ExactSemDedupOptions {
  /** Member lists in dedup order, from {@link sortClusterMembers}. */
  members: ClusterMembers;
  /** Embedding dimension ≥ 1. */
  dim: number;
  /** ε values (see {@link parseEpsList}); the first decides. */
  eps: number | readonly number[] | string;
  /**
   * Returns the unit embeddings of `rows` (that order), rows.length × dim, for cluster `cluster`.
   * Called once per cluster of ≥ 2 members, in cluster order; one result is held at a time.
   */
  getEmbeddings: (rows: Int32Array, cluster: number) => Float32Array | Promise<Float32Array>;
  signal?: AbortSignal;
}

/**
 * Exact SemDeDup with random access to embeddings (e.g. a memory-mapped or `pread` .npy):
 * consumes member lists, calls `getEmbeddings` once per cluster, returns {@link SemDedupResult}.
 * Memory: the largest cluster's embeddings plus 4 bytes/row. Time O(Σ m_j² · dim).
 * Throws ERR_DBPRUNE_INVALID_OPTION (eps, dim), ERR_DBPRUNE_DIM_MISMATCH (getEmbeddings returned
 * too few floats), ERR_DBPRUNE_ABORTED.
 */
export async function exactSemDedup(opts: ExactSemDedupOptions): Promise<SemDedupResult> {
  const eps = parseEpsList(opts.eps);
  const { members, dim, signal } = opts;
  integerOption(dim, 'dim', { min: 1 });
  const res = newResult(members, eps);
  for (let j = 0; j < members.k; j++) {
    throwIfAborted(signal);
    const a = members.offsets[j];
    const b = members.offsets[j + 1];
    if (b - a < 2) continue;
    const rows = members.rows.subarray(a, b);
    const emb = await opts.getEmbeddings(rows, j);
    applyCluster(res, members, j, emb, dim, signal);
  }
  return finish(res);
}

/** One chunk of consecutive rows, as src/io/npy.ts `readNpyRows` yields them. */
export interface RowChunk {
  /** Index of the first row. */
  start: number;
  rows: number;
  /** rows × dim float32, unit rows. */
  data: Float32Array;
}

/** Options of {@link exactSemDedupByPasses}. */
export interface ExactSemDedupPassesOptions {
  members: ClusterMembers;
  dim: number;
  eps: number | readonly number[] | string;
  /** Opens one sequential pass over all embeddings (rows 0..n−1 in order, unit-normalised). */
  readRows: () => AsyncIterable<RowChunk>;
  /**
   * Rows of embeddings held at once (default 1,048,576; ≥ 1). Clusters are grouped in cluster
   * order so that each group fits; a cluster larger than this forms a group of its own, so the
   * real bound is max(maxRowsInMemory, largest cluster) × dim × 4 bytes.
   */
  maxRowsInMemory?: number;
  signal?: AbortSignal;
}

/** Groups consecutive clusters so each group holds ≤ maxRows members (a larger cluster alone). */
export function planDedupPasses(members: ClusterMembers, maxRows: number): { first: number; end: number; rows: number }[] {
  integerOption(maxRows, 'maxRowsInMemory', { min: 1 });
  const groups: { first: number; end: number; rows: number }[] = [];
  let first = 0;
  let rows = 0;
  for (let j = 0; j < members.k; j++) {
    const m = members.offsets[j + 1] - members.offsets[j];
    if (m < 2) continue;
    if (rows > 0 && rows + m > maxRows) {
      groups.push({ first, end: j, rows });
      first = j;
      rows = 0;
    }
    if (rows === 0) first = j;
    rows += m;
  }
  if (rows > 0) groups.push({ first, end: members.k, rows });
  return groups;
}

/**
 * Exact SemDeDup when embeddings can only be read sequentially (the exact job's "pass 1.5"):
 * plans groups of clusters that fit `maxRowsInMemory`, and for each group makes one pass over
 * `readRows()`, copying the group's members into one buffer laid out in dedup order, then scores
 * every cluster of the group. Passes = number of groups (1 when everything fits).
 * Memory: group buffer (≤ max(maxRowsInMemory, largest cluster) × dim × 4 B) + 8 B/row.
 * Throws ERR_DBPRUNE_INVALID_OPTION (eps, dim, maxRowsInMemory); ERR_DBPRUNE_ROW_COUNT_MISMATCH
 * when a pass yields rows beyond n or fewer rows than a group needs; ERR_DBPRUNE_ABORTED.
 */
export async function exactSemDedupByPasses(opts: ExactSemDedupPassesOptions): Promise<SemDedupResult & { passes: number }> {
  const eps = parseEpsList(opts.eps);
  const { members, dim, signal } = opts;
  integerOption(dim, 'dim', { min: 1 });
  const groups = planDedupPasses(members, opts.maxRowsInMemory ?? 1 << 20);
  const res = newResult(members, eps);
  const slot = new Int32Array(members.n).fill(-1);
  for (const g of groups) {
    throwIfAborted(signal);
    const base = members.offsets[g.first];
    const end = members.offsets[g.end];
    for (let p = base; p < end; p++) slot[members.rows[p]] = p - base;
    const buf = new Float32Array((end - base) * dim);
    let filled = 0;
    for await (const chunk of opts.readRows()) {
      throwIfAborted(signal);
      if (chunk.start + chunk.rows > members.n) {
        throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `embedding pass yields row ${chunk.start + chunk.rows - 1} but the records hold ${members.n} rows`, {
          row: chunk.start + chunk.rows - 1,
        });
      }
      for (let r = 0; r < chunk.rows; r++) {
        const s = slot[chunk.start + r];
        if (s < 0) continue;
        buf.set(chunk.data.subarray(r * dim, (r + 1) * dim), s * dim);
        filled++;
      }
    }
    if (filled !== end - base) {
      throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `embedding pass delivered ${filled} of the ${end - base} rows of clusters ${g.first}..${g.end - 1}`, {
        expected: end - base,
        got: filled,
      });
    }
    for (let j = g.first; j < g.end; j++) {
      const a = members.offsets[j] - base;
      const b = members.offsets[j + 1] - base;
      if (b - a >= 2) applyCluster(res, members, j, buf.subarray(a * dim, b * dim), dim, signal);
    }
    for (let p = base; p < end; p++) slot[members.rows[p]] = -1;
  }
  return { ...finish(res), passes: groups.length };
}

/**
 * Test oracle of the exact rule, written as the reference does it: the full m × m similarity
 * matrix (float64) of one cluster's items in dedup order, diagonal and lower triangle zeroed,
 * column max → M. Returns, per ε, the removed flags. O(m²) memory: small clusters only.
 */
export function semDedupReferenceMatrix(emb: Float32Array, m: number, dim: number, eps: readonly number[]): { M: Float64Array; removed: Uint8Array[] } {
  const S = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += emb[i * dim + t] * emb[j * dim + t];
      S[i * m + j] = j > i ? s : 0; // triu(diagonal = 1) after fill_diagonal_(0)
    }
  }
  const M = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    let best = m > 0 ? S[j] : 0;
    for (let i = 1; i < m; i++) best = Math.max(best, S[i * m + j]);
    M[j] = best;
  }
  const removed = eps.map((e) => Uint8Array.from(M, (v) => (v > 1 - e ? 1 : 0)));
  return { M, removed };
}

/**
 * Test oracle of the streaming rule: rows visited in arrival order; per cluster, a row is a
 * duplicate when its largest similarity (float64) to an earlier KEPT row of its cluster is
 * ≥ 1 − eps; `duplicateOf[i]` is that kept row (earliest on ties), −1 when kept. Rows with
 * cluster < 0 are skipped (−1). Also returns `maxSim[i]` (−Infinity for the first kept row of a
 * cluster). O(n · kept) time; all-pairs brute force.
 */
export function streamingDedupBruteForce(
  emb: Float32Array,
  cluster: Int32Array,
  n: number,
  dim: number,
  eps: number,
): { duplicateOf: Int32Array; maxSim: Float64Array } {
  const duplicateOf = new Int32Array(n).fill(-1);
  const maxSim = new Float64Array(n).fill(-Infinity);
  const kept = new Map<number, number[]>();
  const thr = 1 - eps;
  for (let i = 0; i < n; i++) {
    const c = cluster[i];
    if (c < 0) continue;
    let list = kept.get(c);
    if (!list) kept.set(c, (list = []));
    let best = -Infinity;
    let arg = -1;
    for (const r of list) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += emb[i * dim + t] * emb[r * dim + t];
      if (s > best) {
        best = s;
        arg = r;
      }
    }
    maxSim[i] = best;
    if (best >= thr) duplicateOf[i] = arg;
    else list.push(i);
  }
  return { duplicateOf, maxSim };
}
