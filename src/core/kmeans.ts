/**
 * Spherical k-means on unit rows under cosine distance δ = 1 − ⟨x, c⟩: k-means++ seeding (seeded,
 * D(x) = δ, which is ½‖x − c‖² on the sphere), then Lloyd or mini-batch (Sculley 2010) updates with
 * centroids re-projected onto the sphere. The assignment step runs on a {@link NearestAssigner}
 * the caller supplies: `sphericalKMeans` (src/kernels/kmeans.ts) passes the ORT-backed
 * `NearestCentroid`, so one Lloyd pass over 100k × 512 rows at k = 500 takes ~0.4–0.6 s on 2 cores;
 * {@link createJsNearest} keeps everything in pure JS (exact, same results, slow at large k·dim).
 * Empty clusters are re-seeded with the points farthest from their centroids.
 *
 * Pure math, no I/O (besides the optional `log` callback).
 */
import { DbpruneError, ErrorCodes, throwIfAborted, UsageError } from './errors.js';
import { kmeansPlusPlus, randomRows } from './kmeans-init.js';
import { NEAREST_BACKENDS, type NearestAssignerFactory, type NearestBackend, type NearestResult } from './nearest.js';
import { Rng } from './rng.js';
import { choiceOption, integerOption, numberOption } from './validate.js';

export { kmeansPlusPlus, randomRows } from './kmeans-init.js';

/** Seeding modes of {@link KMeansOptions.init}. */
export const KMEANS_INITS = ['auto', 'kmeans++', 'random'] as const;

/** Options of {@link sphericalKMeans}. */
export interface KMeansOptions {
  /** Number of clusters, 1..n (UsageError when k > n). */
  k: number;
  /** Lloyd iterations, or mini-batch epochs; default 25, limits 0..10,000. */
  iters?: number;
  /** Stop when the relative decrease of the inertia (Σδ) falls below tol; default 1e-4, ≥ 0. */
  tol?: number;
  /** RNG seed (k-means++, mini-batch order); default 0, 0..2^32−1. */
  seed?: number;
  /** Mini-batch updates instead of Lloyd; default false. */
  minibatch?: boolean;
  /** Mini-batch size in rows; default 4096, limits 1..1,048,576. */
  batchSize?: number;
  /**
   * Seeding: 'kmeans++' (on cosine distance), 'random' (k distinct rows, as faiss does) or 'auto'
   * (default): k-means++ unless its JS cost (initSample·k·dim) exceeds {@link KMEANSPP_MAX_WORK}
   * with initSample ≥ 4·k, i.e. for very large k (tens of thousands), where it falls back to random.
   */
  init?: (typeof KMEANS_INITS)[number];
  /** Rows k-means++ seeds from (a seeded uniform subset); default min(n, 16·k, work cap), ≥ k. */
  initSample?: number;
  /** Threads of the assignment backend; see NearestOptions. */
  threads?: number;
  /** Assignment backend, handed to the assigner factory; see NearestOptions (default 'auto'). */
  backend?: NearestBackend;
  signal?: AbortSignal;
  /** Progress lines (one per iteration). */
  log?: (line: string) => void;
}

/** Multiply-adds k-means++ may spend in JS under `init: 'auto'` (~4 s on this machine). */
export const KMEANSPP_MAX_WORK = 2e9;

/** Result of {@link sphericalKMeans}; assignment/distance/inertia belong to the returned centroids. */
export interface KMeansResult {
  /** Unit centroids, k × dim float32. */
  centroids: Float32Array;
  /** Nearest centroid per row. */
  assignment: Int32Array;
  /** δ per row to its centroid. */
  distance: Float32Array;
  /** Σδ over rows. */
  inertia: number;
  /** Update steps (Lloyd iterations or mini-batch epochs) done. */
  iterations: number;
  /** True when the tol criterion stopped the run before `iters`. */
  converged: boolean;
  /** Empty clusters re-seeded over the run. */
  reseeded: number;
}

/** Normalises row j of `sums` (float64) into `out` (float32); returns false for a zero row. */
function normalizeInto(sums: Float64Array, j: number, dim: number, out: Float32Array): boolean {
  const o = j * dim;
  let s = 0;
  for (let t = 0; t < dim; t++) s += sums[o + t] * sums[o + t];
  if (!(s > 0) || !Number.isFinite(s)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let t = 0; t < dim; t++) out[o + t] = sums[o + t] * inv;
  return true;
}

interface Assigned extends NearestResult {
  centroids: Float32Array;
  inertia: number;
}

async function assignAll(
  centroids: Float32Array,
  k: number,
  data: Float32Array,
  n: number,
  dim: number,
  opts: Resolved,
  out?: NearestResult,
): Promise<Assigned> {
  const nc = await opts.nearest(centroids, k, dim, { backend: opts.backend, threads: opts.threads });
  try {
    const r = await nc.assign(data, n, out);
    let inertia = 0;
    for (let i = 0; i < n; i++) inertia += r.distance[i];
    return { ...r, centroids: nc.centroids, inertia };
  } finally {
    await nc.dispose();
  }
}

/**
 * Moves the farthest rows into empty clusters (in-place on sums/counts). `order` of rows is by
 * decreasing distance. Returns the number of clusters re-seeded.
 */
function reseedEmpty(
  data: Float32Array,
  dim: number,
  k: number,
  n: number,
  cluster: Int32Array,
  distance: Float32Array,
  sums: Float64Array,
  counts: Float64Array,
): number {
  const empty: number[] = [];
  for (let j = 0; j < k; j++) if (counts[j] === 0) empty.push(j);
  if (empty.length === 0) return 0;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => distance[b] - distance[a] || a - b);
  let e = 0;
  for (let p = 0; p < n && e < empty.length; p++) {
    const i = order[p];
    const old = cluster[i];
    if (old < 0 || counts[old] <= 1) continue;
    const j = empty[e++];
    const xo = i * dim;
    for (let t = 0; t < dim; t++) {
      sums[old * dim + t] -= data[xo + t];
      sums[j * dim + t] = data[xo + t];
    }
    counts[old]--;
    counts[j] = 1;
    cluster[i] = j;
  }
  return e;
}

/** Options after validation, with the assigner factory. */
interface Resolved extends KMeansOptions {
  nearest: NearestAssignerFactory;
}

/**
 * Spherical k-means of the `n` unit rows of `data` (n × dim float32), assigning with
 * `createNearest` (a {@link NearestAssignerFactory}). Options (defaults, limits) in
 * {@link KMeansOptions}. Resolves with unit centroids and the assignment that belongs to them.
 * Throws ERR_DBPRUNE_USAGE when k > n, ERR_DBPRUNE_INVALID_OPTION on a bad option,
 * ERR_DBPRUNE_DIM_MISMATCH when data.length < n × dim, ERR_DBPRUNE_ABORTED on abort.
 */
export async function sphericalKMeansWith(
  createNearest: NearestAssignerFactory,
  data: Float32Array,
  n: number,
  dim: number,
  opts: KMeansOptions,
): Promise<KMeansResult> {
  const { k } = opts;
  integerOption(n, 'n', { min: 1 });
  integerOption(dim, 'dim', { min: 1 });
  integerOption(k, 'k', { min: 1 });
  if (k > n) throw new UsageError(`k = ${k} clusters need at least ${k} rows, got ${n}`, { k, n });
  if (data.length < n * dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `data holds ${data.length} floats, fewer than n×dim = ${n}×${dim}`, { n, dim });
  }
  const iters = integerOption(opts.iters, 'iters', { default: 25, min: 0, max: 10_000 });
  const tol = numberOption(opts.tol, 'tol', { default: 1e-4, min: 0 });
  const seed = integerOption(opts.seed, 'seed', { default: 0, min: 0, max: 0xffffffff });
  const batchSize = integerOption(opts.batchSize, 'batchSize', { default: 4096, min: 1, max: 1 << 20 });
  const initMode = choiceOption(opts.init, 'init', KMEANS_INITS, 'auto');
  if (opts.backend !== undefined) choiceOption(opts.backend, 'backend', NEAREST_BACKENDS);
  const capRows = Math.floor(KMEANSPP_MAX_WORK / (k * dim));
  const initSample = integerOption(opts.initSample, 'initSample', { default: Math.max(k, Math.min(n, Math.max(16 * k, 4096), capRows)), min: 1 });
  const usePP = initMode === 'kmeans++' || (initMode === 'auto' && (opts.initSample !== undefined || capRows >= Math.min(n, 4 * k)));
  const log = opts.log ?? (() => {});
  const signal = opts.signal;
  const resolved: Resolved = { ...opts, nearest: createNearest };

  throwIfAborted(signal);
  const rng = new Rng(seed);
  const t0 = Date.now();
  const init = usePP ? kmeansPlusPlus(data, n, dim, k, rng, initSample) : randomRows(data, n, dim, k, rng);
  log(
    usePP
      ? `kmeans++: k=${k} from ${Math.min(n, Math.max(k, initSample))} rows in ${Date.now() - t0} ms`
      : `kmeans init: k=${k} random rows (k-means++ would cost ${(Math.min(n, 4 * k) * k * dim).toExponential(1)} multiply-adds)`,
  );
  throwIfAborted(signal);

  const res = opts.minibatch
    ? await miniBatch(data, n, dim, k, init, rng, iters, tol, batchSize, resolved)
    : await lloyd(data, n, dim, k, init, iters, tol, resolved);
  log(`kmeans done: ${res.iterations} iterations, inertia=${res.inertia.toFixed(4)}, mean δ=${(res.inertia / n).toFixed(5)}${res.converged ? ', converged' : ''}`);
  return res;
}

async function lloyd(
  data: Float32Array,
  n: number,
  dim: number,
  k: number,
  init: Float32Array,
  iters: number,
  tol: number,
  opts: Resolved,
): Promise<KMeansResult> {
  const log = opts.log ?? (() => {});
  let cur = await assignAll(init, k, data, n, dim, opts);
  let spare: NearestResult = { cluster: new Int32Array(n), distance: new Float32Array(n) };
  const sums = new Float64Array(k * dim);
  const counts = new Float64Array(k);
  let iterations = 0;
  let converged = false;
  let reseeded = 0;
  for (let it = 1; it <= iters; it++) {
    throwIfAborted(opts.signal);
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const j = cur.cluster[i];
      counts[j]++;
      const xo = i * dim;
      const so = j * dim;
      for (let t = 0; t < dim; t++) sums[so + t] += data[xo + t];
    }
    reseeded += reseedEmpty(data, dim, k, n, cur.cluster, cur.distance, sums, counts);
    const next = Float32Array.from(cur.centroids);
    for (let j = 0; j < k; j++) normalizeInto(sums, j, dim, next);
    const prev = cur;
    cur = await assignAll(next, k, data, n, dim, opts, spare);
    spare = { cluster: prev.cluster, distance: prev.distance };
    iterations = it;
    let moved = 0;
    for (let i = 0; i < n; i++) if (cur.cluster[i] !== prev.cluster[i]) moved++;
    log(`kmeans iter ${it}/${iters}: inertia=${cur.inertia.toFixed(4)} moved=${moved}`);
    if (moved === 0 || prev.inertia - cur.inertia <= tol * Math.max(cur.inertia, 1e-12)) {
      converged = true;
      break;
    }
  }
  return {
    centroids: cur.centroids,
    assignment: cur.cluster,
    distance: cur.distance,
    inertia: cur.inertia,
    iterations,
    converged,
    reseeded,
  };
}

async function miniBatch(
  data: Float32Array,
  n: number,
  dim: number,
  k: number,
  init: Float32Array,
  rng: Rng,
  epochs: number,
  tol: number,
  batchSize: number,
  opts: Resolved,
): Promise<KMeansResult> {
  const log = opts.log ?? (() => {});
  const b = Math.min(batchSize, n);
  const centroids = Float32Array.from(init);
  const c64 = Float64Array.from(init);
  const v = new Float64Array(k); // per-centre counts: learning rate 1/v
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const xb = new Float32Array(b * dim);
  const bout: NearestResult = { cluster: new Int32Array(b), distance: new Float32Array(b) };
  const epochCluster = new Int32Array(n);
  const epochDist = new Float32Array(n);
  const epochCount = new Float64Array(k);
  let prevInertia = Infinity;
  let iterations = 0;
  let converged = false;
  let reseeded = 0;
  for (let ep = 1; ep <= epochs; ep++) {
    for (let i = n - 1; i > 0; i--) {
      const r = rng.int(i + 1);
      const tmp = perm[i];
      perm[i] = perm[r];
      perm[r] = tmp;
    }
    epochCount.fill(0);
    let inertia = 0;
    for (let s = 0; s < n; s += b) {
      throwIfAborted(opts.signal);
      const rows = Math.min(b, n - s);
      for (let r = 0; r < rows; r++) xb.set(data.subarray(perm[s + r] * dim, perm[s + r] * dim + dim), r * dim);
      const nc = await opts.nearest(centroids, k, dim, { backend: opts.backend, threads: opts.threads });
      try {
        await nc.assign(xb, rows, bout);
      } finally {
        await nc.dispose();
      }
      for (let r = 0; r < rows; r++) {
        const j = bout.cluster[r];
        const i = perm[s + r];
        epochCluster[i] = j;
        epochDist[i] = bout.distance[r];
        epochCount[j]++;
        inertia += bout.distance[r];
        v[j]++;
        const eta = 1 / v[j];
        const co = j * dim;
        const xo = r * dim;
        for (let t = 0; t < dim; t++) c64[co + t] = (1 - eta) * c64[co + t] + eta * xb[xo + t];
      }
      for (let j = 0; j < k; j++) {
        // Re-project the moved centres onto the sphere (keep c64 unit too).
        if (normalizeInto(c64, j, dim, centroids)) for (let t = 0; t < dim; t++) c64[j * dim + t] = centroids[j * dim + t];
      }
    }
    // Clusters that got no row this epoch restart at the rows farthest from their centres.
    const empty: number[] = [];
    for (let j = 0; j < k; j++) if (epochCount[j] === 0) empty.push(j);
    if (empty.length > 0) {
      const order = Array.from({ length: n }, (_, i) => i).sort((a, c) => epochDist[c] - epochDist[a] || a - c);
      let e = 0;
      for (let p = 0; p < n && e < empty.length; p++) {
        const i = order[p];
        if (epochCount[epochCluster[i]] <= 1) continue;
        const j = empty[e++];
        epochCount[epochCluster[i]]--;
        epochCount[j] = 1;
        v[j] = 1;
        for (let t = 0; t < dim; t++) {
          centroids[j * dim + t] = data[i * dim + t];
          c64[j * dim + t] = data[i * dim + t];
        }
      }
      reseeded += e;
    }
    iterations = ep;
    log(`kmeans epoch ${ep}/${epochs}: batch inertia=${inertia.toFixed(4)}${empty.length ? ` reseeded=${empty.length}` : ''}`);
    if (empty.length === 0 && prevInertia - inertia <= tol * Math.max(inertia, 1e-12)) {
      converged = true;
      break;
    }
    prevInertia = inertia;
  }
  const fin = await assignAll(centroids, k, data, n, dim, opts);
  return {
    centroids: fin.centroids,
    assignment: fin.cluster,
    distance: fin.distance,
    inertia: fin.inertia,
    iterations,
    converged,
    reseeded,
  };
}
