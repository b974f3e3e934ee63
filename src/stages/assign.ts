/**
 * `assign`: nearest centroid and cosine distance δ = 1 − ⟨x, c⟩ for every row of an
 * {@link EmbeddingBatch}. Two paths:
 * - exact: {@link NearestCentroid} (ORT MatMul + TopK, float64 near-tie check) — ~265k rows/s at
 *   d = 512, k = 500 on 2 cores;
 * - hnsw: hnswlib-node HNSW over the unit centroids ('ip' space), one `searchKnn` per row — pays
 *   only for very large k (see {@link HNSW_MIN_K}); approximate (recall@1 < 1 is possible).
 * Either way δ is recomputed in float64 against the chosen (re-normalised) centroid, stored float32.
 */
import os from 'node:os';
import { Transform } from 'node:stream';
import hnswlib from 'hnswlib-node';
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { AssignPool } from '../kernels/assign-pool.js';
import { NearestCentroid, ORT_MIN_WORK } from '../kernels/nearest-centroid.js';
import { dot64 } from '../core/nearest.js';
import { BATCH_HIGH_WATER_MARK, takeVectors, type EmbeddingBatch, type RowError } from '../core/sample.js';
import { booleanOption, choiceOption, integerOption } from '../core/validate.js';
import { normalizedCopy, normalizeRows } from '../core/vector.js';
import { destroyOnAbort } from './generator-stage.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/**
 * `mode: 'auto'` uses HNSW from this many centroids on. Measured at d = 512 on the shared 2-core
 * box (4,000 queries): exact ORT scales as 1/k (~265k rows/s at k = 500, ~3–7k/s at k = 20,000);
 * HNSW (M 16) runs ~9–14k/s at k = 500 but only ~2.5k/s (ef 64) / ~6.6k/s (ef 16) at k = 20,000
 * on structured centroids (recall 1.0), and loses recall badly on unstructured random ones
 * (0.26–0.87 at ef 64), with a 10–38 s index build. So at the default ef = 64 HNSW pays only
 * beyond ~50k centroids.
 */
export const HNSW_MIN_K = 50_000;

import { ASSIGN_MODES, type AssignMode } from '../core/nearest.js';

export { ASSIGN_MODES, type AssignMode };
/** The path a stage runs on: an {@link AssignMode} with 'auto' resolved. */
export type AssignPath = Exclude<AssignMode, 'auto'>;

/** The stage's stream, with the path it chose. */
export type AssignStream = Transform & {
  readonly mode: AssignPath;
  /** Rows rescaled to unit length (`normalize: true`). */
  readonly renormalized: number;
  /** Rows the normalisation found invalid (NaN/Inf or zeros; `normalize: true`). */
  readonly invalid: number;
};

/** Options of {@link assign}. */
export interface AssignOptions {
  /** Centroids, k × dim row-major float32 (re-normalised here). Required. */
  centroids: Float32Array;
  /** Number of centroids, ≥ 1. Required. */
  k: number;
  /** Embedding dimension, ≥ 1. Required. */
  dim: number;
  /** 'exact', 'hnsw' or 'auto' (default: HNSW when k ≥ {@link HNSW_MIN_K}). */
  mode?: AssignMode;
  /** HNSW search breadth; default 64, limits 1..4096. */
  ef?: number;
  /** HNSW graph degree; default 16, limits 2..100. */
  M?: number;
  /** HNSW build breadth; default 200, limits 1..4096. */
  efConstruction?: number;
  /** Exact-path ORT threads; default min(2, cpus), 1..cpus (per worker with `workers`: default 1). */
  threads?: number;
  /**
   * Exact path: assign on this many worker threads ({@link AssignPool}; up to 6 batches queued per
   * worker, `ASSIGN_QUEUE_PER_WORKER`, output order kept) instead of the calling thread. Default 0
   * (in-thread). Pays where the main thread is the bottleneck (precomputed embeddings); an image
   * pipeline's encoder already fills the cores. 0..cpus.
   */
  workers?: number;
  /**
   * L2-normalise each row first, exactly as the {@link normalize} stage does (tolerance 1e-4; rows
   * holding NaN/Inf or zeros become `error:embedding` rows with the normalize stage's message), on
   * the workers when `workers` > 0. Counts: the stream's `renormalized` and `invalid`. Default false.
   */
  normalize?: boolean;
  /**
   * Called with each batch's vectors as soon as the batch is assigned; the batch goes on with empty
   * `embeddings`. For pipelines where nothing after assign reads the vectors: a buffer pool gets
   * them back at once instead of when the batch has passed the queues downstream, so a reader that
   * waits for a free buffer keeps the workers fed while the end of the pipeline is busy.
   */
  releaseVectors?: (vectors: Float32Array) => void;
  signal?: AbortSignal;
}

/**
 * Batches queued per assign worker. The main thread's work comes in bursts (a Parquet row group is
 * ~10 ms of encoding at once): with 2 queued, one worker at d = 512, k = 500 waited 0.67 s per
 * million rows for its next batch and `run --embeddings` took 4.4 s; with 6 it waits 0.16 s and
 * the run takes 3.8 s (bench/RESULTS.md, issue 16). About 24 MB of batches at 2,048 × 512.
 */
export const ASSIGN_QUEUE_PER_WORKER = 6;

interface Validated {
  centroids: Float32Array;
  k: number;
  dim: number;
  mode: AssignPath;
  ef: number;
  M: number;
  efConstruction: number;
  threads: number | undefined;
  workers: number;
  normalize: boolean;
}

function validate(o: AssignOptions): Validated {
  checkOption(o !== null && typeof o === 'object', 'options', 'an object', o);
  checkOption(o.centroids instanceof Float32Array, 'centroids', 'a Float32Array', typeof o.centroids);
  const k = integerOption(o.k, 'k', { min: 1 });
  const dim = integerOption(o.dim, 'dim', { min: 1 });
  if (o.centroids.length !== k * dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `centroids hold ${o.centroids.length} floats, expected k×dim = ${k}×${dim}`, { k, dim });
  }
  const mode = choiceOption(o.mode, 'mode', ASSIGN_MODES, 'auto');
  const ef = integerOption(o.ef, 'ef', { default: 64, min: 1, max: 4096 });
  const M = integerOption(o.M, 'M', { default: 16, min: 2, max: 100 });
  const efConstruction = integerOption(o.efConstruction, 'efConstruction', { default: 200, min: 1, max: 4096 });
  const cpus = Math.max(1, os.cpus().length);
  const threads = o.threads === undefined ? undefined : integerOption(o.threads, 'threads', { min: 1, max: cpus });
  const workers = integerOption(o.workers, 'workers', { default: 0, min: 0, max: cpus });
  const normalize = booleanOption(o.normalize, 'normalize', false);
  return {
    centroids: o.centroids,
    k,
    dim,
    mode: mode === 'auto' ? (k >= HNSW_MIN_K ? 'hnsw' : 'exact') : mode,
    ef,
    M,
    efConstruction,
    threads,
    workers,
    normalize,
  };
}

/** Builds an HNSW index ('ip' space) over unit centroids (k × dim). Synchronous; seeded. */
export function buildCentroidIndex(unit: Float32Array, k: number, dim: number, opts: { M?: number; efConstruction?: number; ef?: number } = {}): Hnsw {
  const index = new HierarchicalNSW('ip', dim);
  index.initIndex(k, opts.M ?? 16, opts.efConstruction ?? 200, 100);
  const v: number[] = new Array<number>(dim).fill(0);
  for (let j = 0; j < k; j++) {
    for (let t = 0; t < dim; t++) v[t] = unit[j * dim + t];
    index.addPoint(v, j);
  }
  index.setEf(opts.ef ?? 64);
  return index;
}

/** HNSW nearest centroid of n rows of x; δ in float64 against the unit centroids. */
function searchHnsw(index: Hnsw, unit: Float32Array, k: number, dim: number, x: Float32Array, n: number, skip: Uint8Array | null, cluster: Int32Array, distance: Float32Array): void {
  const q: number[] = new Array<number>(dim).fill(0);
  for (let i = 0; i < n; i++) {
    if (skip?.[i]) continue;
    const o = i * dim;
    for (let t = 0; t < dim; t++) q[t] = x[o + t];
    const r = index.searchKnn(q, 1);
    let j = r.neighbors[0];
    if (!(j >= 0 && j < k)) j = 0;
    cluster[i] = j;
    distance[i] = 1 - dot64(x, o, unit, j * dim, dim);
  }
}

/**
 * Marks rows that cannot be assigned: returns skip[i] = 1 for rows with `errors[i]` and for
 * non-finite or zero embeddings, to which it attaches an `error:embedding` RowError. The rows of a
 * `unit` batch (past the normalize stage) are not summed again.
 */
function screenRows(batch: EmbeddingBatch, n: number, dim: number): Uint8Array | null {
  let skip: Uint8Array | null = null;
  const x = batch.embeddings;
  for (let i = 0; i < n; i++) {
    if (batch.errors?.[i]) {
      skip ??= new Uint8Array(n);
      skip[i] = 1;
      continue;
    }
    if (batch.unit) continue; // checked by the normalize stage
    const o = i * dim;
    let s = 0;
    for (let t = 0; t < dim; t++) s += x[o + t] * x[o + t];
    if (!Number.isFinite(s) || s === 0) {
      skip ??= new Uint8Array(n);
      skip[i] = 1;
      if (!batch.errors || batch.errors.length < n) {
        const errs = new Array<RowError | undefined>(n).fill(undefined);
        batch.errors?.forEach((e, j) => (errs[j] = e));
        batch.errors = errs;
      }
      batch.errors[i] = { reason: 'error:embedding', message: s === 0 ? 'embedding is a zero vector' : 'embedding holds NaN or Inf values' };
    }
  }
  return skip;
}

/**
 * The normalize stage's row errors for rows normalizeRows found invalid (and not already errored);
 * returns how many it marked.
 */
function markInvalid(batch: EmbeddingBatch, bad: Uint8Array | null): number {
  if (!bad) return 0;
  const n = batch.rows.length;
  const errors = batch.errors ?? new Array<RowError | undefined>(n).fill(undefined);
  let marked = 0;
  for (let i = 0; i < n; i++) {
    if (bad[i] && !errors[i]) {
      errors[i] = { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING };
      marked++;
    }
  }
  batch.errors = errors;
  return marked;
}

/** The row errors {@link screenRows} attaches, from a worker's screen codes (1 NaN/Inf, 2 zero). */
function screenErrors(batch: EmbeddingBatch, n: number, screen: Uint8Array): void {
  for (let i = 0; i < n; i++) {
    if (!screen[i] || batch.errors?.[i]) continue;
    if (!batch.errors || batch.errors.length < n) {
      const errs = new Array<RowError | undefined>(n).fill(undefined);
      batch.errors?.forEach((e, j) => (errs[j] = e));
      batch.errors = errs;
    }
    batch.errors[i] = { reason: 'error:embedding', message: screen[i] === 2 ? 'embedding is a zero vector' : 'embedding holds NaN or Inf values' };
  }
}

/**
 * Stage: consumes {@link EmbeddingBatch}es and emits each same batch object with `cluster`
 * (Int32Array) and `distance` (Float32Array) filled: nearest centroid and δ per row. Rows with
 * `errors[i]` get −1 / NaN and are otherwise untouched; rows whose embedding is NaN/Inf or zero
 * get an `error:embedding` row error and −1 / NaN. Batches pass in order, one out per one in.
 *
 * Options ({@link AssignOptions}): centroids, k, dim (required); mode 'auto' | 'exact' | 'hnsw'
 * (auto: HNSW when k ≥ 50,000); ef 64 (1..4096); M 16 (2..100); efConstruction 200; threads; signal.
 *
 * Errors: ERR_DBPRUNE_INVALID_OPTION (construction); ERR_DBPRUNE_DIM_MISMATCH when centroids are
 * not k×dim (construction) or a batch's dim differs from the centroids' (names both dims);
 * ERR_DBPRUNE_INTERNAL when a batch's embeddings are shorter than rows × dim; ERR_DBPRUNE_ABORTED.
 */
export function assign(opts: AssignOptions): AssignStream {
  const v = validate(opts);
  const { k, dim, signal } = { ...v, signal: opts.signal };
  const unit = normalizedCopy(v.centroids, k, dim);
  const pooled = v.mode === 'exact' && v.workers > 0 && k >= 2 && k * dim >= ORT_MIN_WORK;
  const state: { exact: NearestCentroid | null; index: Hnsw | null; pool: AssignPool | null } = { exact: null, index: null, pool: null };
  const ready: Promise<void> = (async () => {
    await Promise.resolve(); // build after construction returns (an HNSW build over many centroids takes seconds)
    if (pooled) state.pool = await AssignPool.create(v.centroids, k, dim, { workers: v.workers, threads: v.threads });
    else if (v.mode === 'exact') state.exact = await NearestCentroid.create(v.centroids, k, dim, { threads: v.threads, int8: true });
    else state.index = buildCentroidIndex(unit, k, dim, { M: v.M, efConstruction: v.efConstruction, ef: v.ef });
  })();
  ready.catch(() => undefined); // surfaced on the first batch
  const counts = { renormalized: 0, invalid: 0 };

  const assignBatch = async (batch: EmbeddingBatch): Promise<EmbeddingBatch> => {
    throwIfAborted(signal);
    await ready;
    const n = batch.rows.length;
    if (batch.dim !== dim) {
      throw new DbpruneError(
        ErrorCodes.DIM_MISMATCH,
        `embeddings have dimension ${batch.dim} but the centroids have ${dim} (use centroids fitted on the same model)`,
        { expected: dim, got: batch.dim, key: batch.rows[0]?.key, shard: batch.rows[0]?.shard },
      );
    }
    if (batch.embeddings.length < n * dim) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `batch holds ${batch.embeddings.length} floats for ${n} rows × ${dim}`, {
        key: batch.rows[0]?.key,
      });
    }
    if (state.pool) {
      // Worker: normalise (or screen, unless the normalize stage did) and assign; rows errored
      // upstream are blanked below.
      const r = await state.pool.assign(batch.embeddings, n, v.normalize ? { normalize: 1e-4 } : batch.unit ? {} : { screen: true });
      batch.embeddings = r.x;
      if (v.normalize) {
        counts.renormalized += r.renormalized;
        counts.invalid += markInvalid(batch, r.invalid);
      } else if (r.screen) {
        screenErrors(batch, n, r.screen);
      }
      if (batch.errors) {
        for (let i = 0; i < n; i++) {
          if (batch.errors[i]) {
            r.cluster[i] = -1;
            r.distance[i] = NaN;
          }
        }
      }
      batch.cluster = r.cluster;
      batch.distance = r.distance;
      return batch;
    }
    if (v.normalize) {
      const r = normalizeRows(batch.embeddings, n, dim);
      counts.renormalized += r.renormalized;
      counts.invalid += markInvalid(batch, r.invalid);
    }
    const cluster = new Int32Array(n);
    const distance = new Float32Array(n);
    const skip = screenRows(batch, n, dim);
    if (n > 0) {
      if (state.exact) await state.exact.assign(batch.embeddings, n, { cluster, distance });
      else if (state.index) searchHnsw(state.index, unit, k, dim, batch.embeddings, n, skip, cluster, distance);
    }
    if (skip) {
      for (let i = 0; i < n; i++) {
        if (skip[i]) {
          cluster[i] = -1;
          distance[i] = NaN;
        }
      }
    }
    batch.cluster = cluster;
    batch.distance = distance;
    return batch;
  };

  const release = opts.releaseVectors;
  const releaseVectors = (batch: EmbeddingBatch): EmbeddingBatch => {
    release?.(takeVectors(batch));
    return batch;
  };
  // Batches in flight: one in-thread; ASSIGN_QUEUE_PER_WORKER per worker with a pool. Output order = input order.
  const depth = pooled ? ASSIGN_QUEUE_PER_WORKER * v.workers : 1;
  const queue: Promise<EmbeddingBatch>[] = [];
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      const p = release ? assignBatch(batch).then(releaseVectors) : assignBatch(batch);
      p.catch(() => undefined); // surfaced when its turn comes
      queue.push(p);
      if (queue.length < depth) return cb();
      (queue.shift() as Promise<EmbeddingBatch>).then((b) => cb(null, b), cb);
    },
    flush(cb) {
      (async () => {
        while (queue.length > 0) stream.push(await (queue.shift() as Promise<EmbeddingBatch>));
      })().then(() => cb(), cb);
    },
    destroy(err, cb) {
      ready
        .catch(() => undefined)
        .then(() => Promise.all([state.exact?.dispose(), state.pool?.dispose()]))
        .then(
          () => cb(err),
          () => cb(err),
        );
    },
  }) as unknown as AssignStream;
  Object.defineProperty(stream, 'mode', { value: v.mode, enumerable: true });
  Object.defineProperty(stream, 'renormalized', { get: () => counts.renormalized, enumerable: true });
  Object.defineProperty(stream, 'invalid', { get: () => counts.invalid, enumerable: true });
  return destroyOnAbort(stream, signal);
}

/** Result of {@link measureHnswRecall}. */
export interface HnswRecall {
  /** Fraction of queries whose HNSW centroid equals the exact one. */
  recall: number;
  /** Queries measured. */
  queries: number;
  /** Index build time, ms. */
  buildMs: number;
  /** HNSW search throughput, rows/s. */
  hnswRowsPerSec: number;
  /** Exact (NearestCentroid) throughput on the same rows, rows/s. */
  exactRowsPerSec: number;
}

/**
 * Recall@1 of the HNSW path against the exact path on `n` query rows (n × dim unit rows), with
 * the same ef/M/efConstruction as {@link assign}, and both throughputs. Consumes no stream.
 * Throws like {@link assign}'s construction (ERR_DBPRUNE_INVALID_OPTION / DIM_MISMATCH).
 */
export async function measureHnswRecall(
  opts: Omit<AssignOptions, 'mode' | 'signal'> & { queries: Float32Array; n: number },
): Promise<HnswRecall> {
  const v = validate({ ...opts, mode: 'hnsw' });
  const { k, dim } = v;
  const { queries, n } = opts;
  checkOption(Number.isInteger(n) && n >= 1 && queries.length >= n * dim, 'n', `an integer ≥ 1 with queries.length ≥ n×${dim}`, n);
  const unit = normalizedCopy(v.centroids, k, dim);
  let t = performance.now();
  const index = buildCentroidIndex(unit, k, dim, { M: v.M, efConstruction: v.efConstruction, ef: v.ef });
  const buildMs = performance.now() - t;
  const hc = new Int32Array(n);
  const hd = new Float32Array(n);
  t = performance.now();
  searchHnsw(index, unit, k, dim, queries, n, null, hc, hd);
  const hnswSec = (performance.now() - t) / 1000;
  const nc = await NearestCentroid.create(v.centroids, k, dim, { threads: v.threads });
  let exact;
  try {
    await nc.assign(queries, n); // warm-up (the first run of a batch shape allocates)
    t = performance.now();
    exact = await nc.assign(queries, n);
  } finally {
    await nc.dispose();
  }
  const exactSec = (performance.now() - t) / 1000;
  let hits = 0;
  for (let i = 0; i < n; i++) if (hc[i] === exact.cluster[i]) hits++;
  return {
    recall: hits / n,
    queries: n,
    buildMs,
    hnswRowsPerSec: n / Math.max(hnswSec, 1e-9),
    exactRowsPerSec: n / Math.max(exactSec, 1e-9),
  };
}
