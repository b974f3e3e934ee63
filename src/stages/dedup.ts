/**
 * `dedup`: streaming SemDeDup between `assign` and `decide`. Within each cluster, a sample whose
 * cosine similarity to an earlier KEPT sample of that cluster is ≥ 1 − ε is a duplicate: the stage
 * sets `batch.duplicateOf[i]` to that sample's key (the most similar kept sample found) and `decide`
 * drops it with reason `duplicate` without counting it. The first arrival is kept.
 *
 * Per cluster the kept embeddings live first in a brute-force buffer (exact float64 scan; faster
 * than HNSW while small, see {@link DEFAULT_BRUTE_FORCE_MAX}), then, once the cluster has more kept
 * samples than that, in an hnswlib-node HNSW index ('ip' space: distance = 1 − ⟨x, y⟩ on unit
 * vectors) that doubles its capacity with `resizeIndex` as it grows. A top-1 HNSW similarity within
 * 1e-5 of any threshold is re-computed in float64 from the stored point.
 *
 * Difference from exact mode (src/core/semdedup.ts): exact SemDeDup orders a cluster by distance
 * to the centroid and compares with ALL earlier items (removed or not, `> 1 − ε`); streaming uses
 * arrival order and compares with KEPT items only (`≥ 1 − ε`). Decisions are irrevocable.
 *
 * Memory bound: at most `maxPerCluster` kept samples are indexed per cluster, so the stage holds
 * ≤ k × maxPerCluster × (dim × 4 + 2·M × 4 + ~60 + key) bytes. When a cluster reaches the cap it is
 * "capped": later samples are still checked against the indexed ones (so duplicates of those are
 * still found), but new kept samples are no longer inserted — a later duplicate of such an
 * unindexed kept sample is missed (kept). `stats()` reports capped clusters and unindexed kept rows.
 */
import { Transform } from 'node:stream';
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch } from '../core/sample.js';
import { parseEpsList } from '../core/semdedup.js';
import { integerOption, optionalOption } from '../core/validate.js';
import { ClusterIndex, readDedupState, writeDedupState, type DedupCounters, type DedupSettings } from './dedup-index.js';
import { destroyOnAbort } from './generator-stage.js';

/**
 * Clusters with at most this many kept samples are searched by brute force. Measured on the shared
 * 2-core box at d = 512 (bench/dedup.ts, synthetic clusters of high intrinsic dimension — HNSW's
 * worst case): the float64 JS scan costs ~0.5 µs per kept sample, an HNSW query (ef 64) + insert
 * (efConstruction 100) ~350–450 µs, so they break even near 700–1,000 kept; 512 is conservative.
 */
export const DEFAULT_BRUTE_FORCE_MAX = 512;

/** Options of {@link dedup}. */
export interface DedupOptions {
  /** ε: a number, a list or a comma-separated string, each in (0, 1), 1..32 values; the first decides. Required. */
  eps: number | readonly number[] | string;
  /** Embedding dimension ≥ 1. Required. */
  dim: number;
  /** Number of clusters ≥ 1 (cluster ids are 0..k−1). Required. */
  k: number;
  /** HNSW graph degree; default 16, limits 2..100. */
  M?: number;
  /** HNSW build breadth; default 100, limits 1..4096. */
  efConstruction?: number;
  /** HNSW search breadth; default 64, limits 1..4096. */
  efSearch?: number;
  /** Kept samples indexed per cluster (the memory bound); default 100,000, limits 1..2^31−1. */
  maxPerCluster?: number;
  /** Kept samples per cluster searched by brute force before moving to HNSW; default 512, 0..maxPerCluster. */
  bruteForceMax?: number;
  /** HNSW random seed; default 100. */
  seed?: number;
  /** Restores the state written by `DedupStream.snapshot()` ({@link DedupStream}) to this folder before the first batch. */
  restoreFrom?: string;
  signal?: AbortSignal;
}

/** Running statistics of the stage. */
export interface DedupStats {
  /** The ε values; eps[0] decides. */
  eps: number[];
  /**
   * Per ε: samples whose best similarity to the kept samples (kept under eps[0]) is ≥ 1 − ε. Exact
   * for eps[0]; for the others an estimate, since with that ε a different set would have been kept.
   */
  duplicates: number[];
  /** Per ε: (seen − duplicates) / seen (1 when seen = 0). */
  keptFraction: number[];
  /** Rows checked (valid rows with a cluster); error rows are not counted. */
  seen: number;
  /** Rows passed through untouched (errors or cluster −1). */
  skipped: number;
  /** Kept samples held (indexed or buffered). */
  indexed: number;
  /** Kept samples not indexed because their cluster was capped. */
  unindexedKept: number;
  /** Clusters that reached maxPerCluster. */
  cappedClusters: number;
  /** Clusters that moved to HNSW. */
  hnswClusters: number;
  /** Estimated bytes held by buffers, indexes and keys. */
  indexBytesEstimate: number;
}

/** What `DedupStream.snapshot()` ({@link DedupStream}) wrote. */
export interface DedupSnapshotInfo {
  dir: string;
  files: string[];
  stats: DedupStats;
}

/** The stage: an objectMode Transform plus statistics and checkpoints. */
export type DedupStream = Transform & {
  /** Current statistics (cheap). */
  stats(): DedupStats;
  /**
   * Writes the whole state (per-cluster buffers as raw float32, HNSW indexes with `writeIndex`,
   * kept keys and counters as `dedup-state.json`) into `dir` (created if missing). Batches wait
   * while it runs, so the state is consistent with the batches emitted so far.
   */
  snapshot(dir: string): Promise<DedupSnapshotInfo>;
};

function validate(o: DedupOptions): DedupSettings {
  checkOption(o !== null && typeof o === 'object', 'options', 'an object', o);
  const eps = parseEpsList(o.eps);
  const dim = integerOption(o.dim, 'dim', { min: 1 });
  const k = integerOption(o.k, 'k', { min: 1 });
  const M = integerOption(o.M, 'M', { default: 16, min: 2, max: 100 });
  const efConstruction = integerOption(o.efConstruction, 'efConstruction', { default: 100, min: 1, max: 4096 });
  const efSearch = integerOption(o.efSearch, 'efSearch', { default: 64, min: 1, max: 4096 });
  const maxPerCluster = integerOption(o.maxPerCluster, 'maxPerCluster', { default: 100_000, min: 1, max: 2 ** 31 - 1 });
  // Irregular: the upper limit is another option's value.
  const bruteForceMax = o.bruteForceMax ?? Math.min(DEFAULT_BRUTE_FORCE_MAX, maxPerCluster);
  checkOption(Number.isInteger(bruteForceMax) && bruteForceMax >= 0 && bruteForceMax <= maxPerCluster, 'bruteForceMax', `an integer in 0..maxPerCluster (${maxPerCluster})`, bruteForceMax);
  const seed = integerOption(o.seed, 'seed', { default: 100, min: 0 });
  optionalOption<string>(o.restoreFrom, 'restoreFrom', 'a folder path', (p) => typeof p === 'string');
  return { eps, dim, k, M, efConstruction, efSearch, maxPerCluster, bruteForceMax, seed };
}

/**
 * Stage: consumes {@link EmbeddingBatch}es with `cluster` set (by `assign`) and emits each same
 * batch object with `duplicateOf` filled (one entry per row: the key of the kept sample it
 * duplicates, or undefined). Rows with `errors[i]` or cluster −1 pass untouched and unchecked.
 * Rows are processed in order, so a duplicate inside one batch of an earlier row is found. One
 * batch out per batch in; rows in = rows out.
 *
 * Options ({@link DedupOptions}): eps (required; first decides), dim, k (required); M 16 (2..100);
 * efConstruction 100 (1..4096); efSearch 64 (1..4096); maxPerCluster 100,000 (memory bound, see
 * the module comment); bruteForceMax 512; seed 100; restoreFrom; signal.
 *
 * Errors: ERR_DBPRUNE_INVALID_OPTION (construction); ERR_DBPRUNE_INTERNAL when a batch lacks
 * `cluster` (put `assign` first) or is shorter than rows × dim; ERR_DBPRUNE_DIM_MISMATCH when a
 * batch's dim differs; ERR_DBPRUNE_CALIBRATION when `restoreFrom` holds a state for another
 * dim/k/eps or is unreadable; ERR_DBPRUNE_ABORTED.
 */
export function dedup(opts: DedupOptions): DedupStream {
  const v = validate(opts);
  const { signal } = opts;
  const st: DedupState = {
    v,
    thresholds: v.eps.map((e) => 1 - e),
    clusters: new Array<ClusterIndex | undefined>(v.k),
    counters: { seen: 0, skipped: 0, unindexedKept: 0, duplicates: v.eps.map(() => 0) },
    initial: Math.min(64, Math.max(1, v.bruteForceMax)),
  };
  let gate: Promise<void> = Promise.resolve();

  const ready: Promise<void> = opts.restoreFrom ? restore(opts.restoreFrom) : Promise.resolve();
  ready.catch(() => undefined);

  async function restore(dir: string): Promise<void> {
    const restored = await readDedupState(dir, v, st.initial);
    Object.assign(st.counters, restored.counters);
    for (const [j, ci] of restored.clusters) st.clusters[j] = ci;
  }

  async function snapshot(dir: string): Promise<DedupSnapshotInfo> {
    let release!: () => void;
    const prev = gate;
    gate = new Promise<void>((r) => (release = r));
    try {
      await prev;
      await ready;
      const files = await writeDedupState(dir, v, st.clusters, st.counters);
      return { dir, files, stats: dedupStats(st) };
    } finally {
      release();
    }
  }

  // A Transform rather than Duplex.from(generator): destroying a Duplex.from stream whose generator
  // waits for input can hang on Node 20, and pipelines abort by destroying their streams.
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      (async () => {
        throwIfAborted(signal);
        await ready;
        await gate;
        dedupBatch(st, batch);
        return batch;
      })().then((b) => cb(null, b), cb);
    },
  }) as unknown as DedupStream;
  stream.stats = () => dedupStats(st);
  stream.snapshot = snapshot;
  return destroyOnAbort(stream, signal);
}

/** The stage's state: settings, the per-cluster indexes and the counters. */
interface DedupState {
  v: DedupSettings;
  /** 1 − ε per ε. */
  thresholds: number[];
  clusters: (ClusterIndex | undefined)[];
  counters: DedupCounters;
  /** Initial buffer rows of a new cluster. */
  initial: number;
}

function dedupStats({ v, clusters, counters }: DedupState): DedupStats {
  let indexed = 0;
  let capped = 0;
  let hnswClusters = 0;
  let bytes = 0;
  for (const c of clusters) {
    if (!c) continue;
    indexed += c.count;
    if (c.capped) capped++;
    if (c.hnsw) hnswClusters++;
    bytes += c.bytes();
  }
  const { seen } = counters;
  return {
    eps: [...v.eps],
    duplicates: [...counters.duplicates],
    keptFraction: counters.duplicates.map((d) => (seen === 0 ? 1 : (seen - d) / seen)),
    seen,
    skipped: counters.skipped,
    indexed,
    unindexedKept: counters.unindexedKept,
    cappedClusters: capped,
    hnswClusters,
    indexBytesEstimate: bytes,
  };
}

/** Checks every row of `batch` in order against its cluster's kept samples; sets `duplicateOf`. */
function dedupBatch(st: DedupState, batch: EmbeddingBatch): void {
  const { v, thresholds, clusters, counters } = st;
  const { dim, k } = v;
  const n = batch.rows.length;
  if (batch.dim !== dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `dedup expects dimension ${dim}, batch has ${batch.dim}`, { expected: dim, got: batch.dim, key: batch.rows[0]?.key });
  }
  if (n > 0 && (!batch.cluster || batch.cluster.length < n)) {
    throw new DbpruneError(ErrorCodes.INTERNAL, 'dedup needs batch.cluster: put the assign stage before dedup', { key: batch.rows[0]?.key });
  }
  if (batch.embeddings.length < n * dim) {
    throw new DbpruneError(ErrorCodes.INTERNAL, `batch holds ${batch.embeddings.length} floats for ${n} rows × ${dim}`, { key: batch.rows[0]?.key });
  }
  const dupOf = new Array<string | undefined>(n).fill(undefined);
  const x = batch.embeddings;
  const q = new Float64Array(dim);
  const qa = new Array<number>(dim).fill(0);
  const best = { sim: -Infinity, label: -1 };
  for (let i = 0; i < n; i++) {
    const c = batch.cluster ? batch.cluster[i] : -1;
    if (batch.errors?.[i] || !(c >= 0 && c < k)) {
      counters.skipped++;
      continue;
    }
    counters.seen++;
    const o = i * dim;
    for (let t = 0; t < dim; t++) q[t] = qa[t] = x[o + t];
    let ci = clusters[c];
    if (!ci) clusters[c] = ci = new ClusterIndex(v, st.initial);
    ci.nearest(q, qa, thresholds, best);
    for (let e = 0; e < thresholds.length; e++) if (best.sim >= thresholds[e]) counters.duplicates[e]++;
    if (best.sim >= thresholds[0]) dupOf[i] = ci.keys[best.label];
    else if (!ci.add(x, o, qa, batch.rows[i].key)) counters.unindexedKept++;
  }
  batch.duplicateOf = dupOf;
}
