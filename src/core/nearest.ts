/**
 * Exact nearest centroid on unit vectors under cosine distance δ = 1 − ⟨x, c⟩.
 *
 * Conventions (a golden parity test depends on them; every backend honours them):
 * - centroids are re-normalised to unit length (float64 arithmetic, stored as float32);
 * - the winning centroid is the one with the largest ⟨x, c⟩; an exact tie goes to the lowest index;
 * - when a backend scores in float32 (ORT) and the best and second-best scores are within
 *   {@link NEAR_TIE} (1e-5), both candidates are re-scored in float64 to decide;
 * - the returned δ is computed in float64 from the float32 inputs, then stored as float32;
 * - with `int8: true` an int8 pre-score decides the rows whose winner a proven error bound
 *   separates (see matmul-int8.ts), and every other row takes the float32 path above: the results
 *   are identical to the float32 path, only faster.
 * Input rows are used as given (callers L2-normalise them). Rows holding NaN/Inf get an unspecified
 * (but in-range) cluster and a NaN distance; callers flag them.
 *
 * This file holds the conventions as pure math: the checks, the float64 kernels, the reference
 * triple loop, the near-tie resolution of a float32 top-2, and a pure-JS {@link NearestAssigner}.
 * The ORT-backed `NearestCentroid` (src/kernels/nearest-centroid.ts) builds on them. No I/O.
 */
import { DbpruneError, ErrorCodes } from './errors.js';
import { integerOption } from './validate.js';
import { argmaxDot, normalizedCopy, type ArgmaxDot } from './vector.js';

/** Float32 scores closer than this are re-decided in float64. */
export const NEAR_TIE = 1e-5;

/** Per-row result arrays of a {@link NearestAssigner} (e.g. `NearestCentroid.assign`). */
export interface NearestResult {
  /** Index of the nearest centroid, 0..k−1. */
  cluster: Int32Array;
  /** δ = 1 − ⟨x, c⟩ computed in float64, stored as float32 (NaN for non-finite rows). */
  distance: Float32Array;
}

/** Assignment backends: 'ort' (onnxruntime-node MatMul + TopK), 'js' (float64 JS kernel), 'auto' (by k·dim). */
export const NEAREST_BACKENDS = ['auto', 'ort', 'js'] as const;
/**
 * Assignment modes of the `assign` stage (and of `--assign`): 'exact' (NearestCentroid, ORT), 'hnsw'
 * (approximate, for very large k) or 'auto' (HNSW when k ≥ HNSW_MIN_K, src/stages/assign.ts).
 */
export const ASSIGN_MODES = ['auto', 'exact', 'hnsw'] as const;
/** One of {@link ASSIGN_MODES}. */
export type AssignMode = (typeof ASSIGN_MODES)[number];
/** One of {@link NEAREST_BACKENDS}. */
export type NearestBackend = (typeof NEAREST_BACKENDS)[number];

/** Float32 top-2 scores and indices per row, as a float32 scorer (ORT MatMul + TopK) returns them;
 *  `idx2`/`val2` are −1/−Infinity when k = 1 or the scorer has no runner-up. */
export interface Top2 {
  /** Best centroid per row (may be out of range for NaN rows; clamped by {@link resolveTop2}). */
  idx1: Int32Array;
  /** Its float32 score ⟨x, c⟩. */
  val1: Float32Array;
  /** Second-best centroid per row (−1 when k = 1). */
  idx2: Int32Array;
  /** Its float32 score. */
  val2: Float32Array;
}

/** An exact nearest-centroid assigner over one centroid set (see {@link NearestAssignerFactory}). */
export interface NearestAssigner {
  /** Unit centroids actually used (k×dim float32). */
  readonly centroids: Float32Array;
  /** Assigns the first `n` rows of `x` (n×dim) into `out` when given, else fresh arrays. */
  assign(x: Float32Array, n: number, out?: NearestResult): Promise<NearestResult>;
  /** Releases the backend; idempotent. */
  dispose(): Promise<void>;
}

/**
 * Opens a {@link NearestAssigner} for `centroids` (k×dim). The pure one is {@link createJsNearest};
 * the ORT-backed one is `NearestCentroid.create` (src/kernels). Algorithms that assign (k-means)
 * take a factory so that src/core stays free of native code.
 */
export type NearestAssignerFactory = (
  centroids: Float32Array,
  k: number,
  dim: number,
  opts: { backend?: NearestBackend; threads?: number },
) => Promise<NearestAssigner>;

/** @internal Validates a k×dim centroid matrix (finite, non-zero rows); throws ERR_DBPRUNE_INVALID_OPTION / _DIM_MISMATCH. */
export function checkCentroids(centroids: Float32Array, k: number, dim: number): void {
  integerOption(k, 'k', { min: 1 });
  integerOption(dim, 'dim', { min: 1 });
  if (centroids.length !== k * dim) {
    throw new DbpruneError(
      ErrorCodes.DIM_MISMATCH,
      `centroids hold ${centroids.length} floats, expected k×dim = ${k}×${dim} = ${k * dim}`,
      { k, dim, length: centroids.length },
    );
  }
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = centroids[j * dim + t];
      s += v * v;
    }
    if (!Number.isFinite(s) || s === 0) {
      throw new DbpruneError(ErrorCodes.INVALID_OPTION, `centroid ${j} is zero or not finite`, { option: 'centroids', row: j });
    }
  }
}

/** @internal Checks that `x` holds n×dim floats. */
export function checkInput(x: Float32Array, n: number, dim: number): void {
  integerOption(n, 'n', { min: 0 });
  if (x.length < n * dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `input holds ${x.length} floats, fewer than n×dim = ${n}×${dim}`, { n, dim });
  }
}

/**
 * Float64 dot product of a[ao..ao+dim) and b[bo..bo+dim), summed left to right: the same order as
 * the reference triple loop, so δ matches it bit for bit. @internal
 */
export function dot64(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let t = 0; t < dim; t++) s += a[ao + t] * b[bo + t];
  return s;
}

/**
 * out[i] = float64 ⟨x_(start+i), c_(j[i])⟩ for i < rows. Four rows at a time, each summed left to
 * right exactly like {@link dot64} (so bit-identical), but as four independent chains the CPU can
 * overlap. @internal
 */
export function dotsAt(x: Float32Array, start: number, c: Float32Array, j: Int32Array, rows: number, dim: number, out: Float64Array): void {
  const r4 = rows - (rows % 4);
  let i = 0;
  for (; i < r4; i += 4) {
    const x0 = (start + i) * dim;
    const x1 = x0 + dim;
    const x2 = x1 + dim;
    const x3 = x2 + dim;
    const c0 = j[i] * dim;
    const c1 = j[i + 1] * dim;
    const c2 = j[i + 2] * dim;
    const c3 = j[i + 3] * dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let t = 0; t < dim; t++) {
      s0 += x[x0 + t] * c[c0 + t];
      s1 += x[x1 + t] * c[c1 + t];
      s2 += x[x2 + t] * c[c2 + t];
      s3 += x[x3 + t] * c[c3 + t];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  for (; i < rows; i++) out[i] = dot64(x, (start + i) * dim, c, j[i] * dim, dim);
}

/**
 * Baseline: the plain triple loop (rows × centroids × dims) in float64, with the same conventions
 * as `NearestCentroid` (centroids re-normalised, ties to the lowest index). Used as the
 * benchmark baseline and as the reference in tests. Consumes x (n×dim) and centroids (k×dim).
 * Throws ERR_DBPRUNE_DIM_MISMATCH when the array lengths disagree with k, n, dim.
 */
export function nearestBruteForceJs(x: Float32Array, n: number, centroids: Float32Array, k: number, dim: number): NearestResult {
  checkCentroids(centroids, k, dim);
  checkInput(x, n, dim);
  const c = normalizedCopy(centroids, k, dim);
  const cluster = new Int32Array(n);
  const distance = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    let bj = 0;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += x[i * dim + t] * c[j * dim + t];
      if (s > best) {
        best = s;
        bj = j;
      }
    }
    cluster[i] = bj;
    distance[i] = 1 - dot64(x, i * dim, c, bj * dim, dim);
  }
  return { cluster, distance };
}

/**
 * The float64 JS kernel ({@link argmaxDot}) over unit centroids `c`: each row widened to float64
 * once, products of float32 values summed in float64 (exact products, left-to-right sums). Exact
 * argmax (lowest index on ties); no near-tie step needed. Writes cluster/distance[0..n).
 */
export function assignJs(
  x: Float32Array,
  n: number,
  c: Float32Array,
  k: number,
  dim: number,
  cluster: Int32Array,
  distance: Float32Array,
): void {
  const xr = new Float64Array(dim);
  const top: ArgmaxDot = { best: -Infinity, arg: -1 };
  for (let i = 0; i < n; i++) {
    const xo = i * dim;
    let finite = true;
    for (let t = 0; t < dim; t++) {
      const v = x[xo + t];
      xr[t] = v;
      if (v - v !== 0) finite = false;
    }
    const { best, arg } = argmaxDot(xr, c, k, dim, top);
    const bj = arg < 0 ? 0 : arg; // all-NaN row: any in-range cluster; its δ is NaN below
    cluster[i] = bj;
    // `best` is already the left-to-right float64 sum (exact float32→float64 products).
    distance[i] = finite && Number.isFinite(best) ? 1 - best : NaN;
  }
}


/**
 * The float32 path's finishing step for `rows` rows starting at row `start` of `x`: clamps the
 * top-1 index, computes its score in float64, re-decides near-ties ({@link NEAR_TIE}) against the
 * runner-up in float64 (ties to the lower index), and writes cluster/δ at start..start+rows.
 * `best` is scratch of length ≥ rows. Mutates `top.idx1`.
 */
export function resolveTop2(
  x: Float32Array,
  start: number,
  c: Float32Array,
  k: number,
  dim: number,
  top: Top2,
  rows: number,
  best: Float64Array,
  cluster: Int32Array,
  distance: Float32Array,
): void {
  const { idx1, val1, idx2, val2 } = top;
  for (let i = 0; i < rows; i++) {
    const j = idx1[i];
    idx1[i] = j >= 0 && j < k ? j : 0;
  }
  dotsAt(x, start, c, idx1, rows, dim, best);
  for (let i = 0; i < rows; i++) {
    let j = idx1[i];
    let s = best[i];
    const j2 = idx2[i];
    // `!(a > b)` is also true for NaN scores.
    if (j2 >= 0 && j2 < k && !(val1[i] - val2[i] > NEAR_TIE)) {
      const s2 = dot64(x, (start + i) * dim, c, j2 * dim, dim);
      if (s2 > s || (s2 === s && j2 < j)) {
        j = j2;
        s = s2;
      }
    }
    cluster[start + i] = j;
    distance[start + i] = Number.isFinite(s) ? 1 - s : NaN;
  }
}

/**
 * The pure-JS {@link NearestAssigner} ({@link assignJs}): validates and re-normalises `centroids`
 * (k×dim), then assigns synchronously in float64. Exact; fast for small k·dim, ~5k rows/s at
 * d = 512, k = 500 (the ORT backend in src/kernels does ~265k/s there). A {@link NearestAssignerFactory}.
 */
export function createJsNearest(centroids: Float32Array, k: number, dim: number): Promise<NearestAssigner> {
  // Executors turn the validation errors into rejections, as NearestCentroid.create's are.
  return new Promise((resolve) => {
    checkCentroids(centroids, k, dim);
    const c = normalizedCopy(centroids, k, dim);
    resolve({
      centroids: c,
      assign: (x: Float32Array, n: number, out?: NearestResult): Promise<NearestResult> =>
        new Promise((done) => {
          checkInput(x, n, dim);
          const cluster = out?.cluster ?? new Int32Array(n);
          const distance = out?.distance ?? new Float32Array(n);
          checkOutput(cluster, distance, n);
          assignJs(x, n, c, k, dim, cluster, distance);
          done({ cluster, distance });
        }),
      dispose: (): Promise<void> => Promise.resolve(),
    });
  });
}

/** @internal Throws ERR_DBPRUNE_INVALID_OPTION when an output array is shorter than n. */
export function checkOutput(cluster: Int32Array, distance: Float32Array, n: number): void {
  if (cluster.length < n || distance.length < n) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `output arrays shorter than n = ${n}`, { option: 'out' });
  }
}
