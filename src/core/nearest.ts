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
 * Pure math, no I/O (the ORT backend runs in-process).
 */
import os from 'node:os';
import { checkOption, DbpruneError, ErrorCodes } from './errors.js';
import { buildInt8Model, certainWinners, nearestSessionOptions, probeExactInt8Kernel, quantizeCentroids, type Int8Top2, type QuantizedCentroids } from '../kernels/matmul-int8.js';
import { buildNearestModel, OrtScorer, top2FromOutputs, type Top2 } from '../kernels/matmul-ort.js';
import { InThreadOrt, OrtWorker, type OrtRunner } from '../kernels/ort-worker.js';
import { argmaxDot, normalizedCopy, type ArgmaxDot } from './vector.js';

/** Float32 scores closer than this are re-decided in float64. */
export const NEAR_TIE = 1e-5;

/**
 * `backend: 'auto'` uses ORT when k·dim reaches this (and k ≥ 2). Measured on the 2-core box with
 * batches of 16k rows, ORT (2 threads) beats the float64 JS kernel at every size tried, from
 * d×k = 8×4 (9.7M vs 2.1M rows/s) to 512×500 (266k vs 4.7k rows/s; the plain triple loop
 * {@link nearestBruteForceJs} does 1.9k/s); below ~2k floats the JS
 * kernel already runs at millions of rows/s and skips the session set-up (1–30 ms).
 */
export const ORT_MIN_WORK = 2048;

/** Per-row result arrays of {@link NearestCentroid.assign}. */
export interface NearestResult {
  /** Index of the nearest centroid, 0..k−1. */
  cluster: Int32Array;
  /** δ = 1 − ⟨x, c⟩ computed in float64, stored as float32 (NaN for non-finite rows). */
  distance: Float32Array;
}

/** Options of {@link NearestCentroid.create}. */
export interface NearestOptions {
  /** 'ort' (onnxruntime-node MatMul + TopK), 'js' (float64 JS kernel) or 'auto' (default: by k·dim). */
  backend?: 'auto' | 'ort' | 'js';
  /** ORT intra-op threads; default min(2, cpus), limits 1..os.cpus().length. */
  threads?: number;
  /** Rows per ORT call; default 8192, limits 1..1,048,576. */
  batchRows?: number;
  /** ORT reduction head (benchmarks only): 'topk' (default) or 'argmax' (no near-tie check). */
  head?: 'topk' | 'argmax';
  /**
   * ORT backend only: run ORT on a worker thread (so JS work overlaps it), pre-score in int8
   * (MatMulInteger) and decide the rows a proven bound separates, the rest in float32 — identical
   * results, faster at d = 512, k = 500 on clustered data. Default false. Ignored when k < 2, head is 'argmax', or this machine's int8 kernel is not
   * exact (checked at create). Turned off for the rest of the session when, after 65,536 rows,
   * more than half the rows were undecided (then it would only cost time).
   */
  int8?: boolean;
  /**
   * With `int8`: run the sessions on the calling thread instead of a worker thread of their own.
   * For callers that already run on a worker (the assign pool). Default false.
   */
  inThread?: boolean;
}

/** Counters of the int8 pre-filter ({@link NearestCentroid.int8Stats}). */
export interface Int8Stats {
  /** Whether the int8 path is (still) in use. */
  active: boolean;
  /** Rows scored by the int8 path. */
  rows: number;
  /** Of those, rows the bound did not decide (re-scored in float32). */
  fallback: number;
}

function checkCentroids(centroids: Float32Array, k: number, dim: number): void {
  checkOption(Number.isInteger(k) && k >= 1, 'k', 'an integer ≥ 1', k);
  checkOption(Number.isInteger(dim) && dim >= 1, 'dim', 'an integer ≥ 1', dim);
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

function checkInput(x: Float32Array, n: number, dim: number): void {
  checkOption(Number.isInteger(n) && n >= 0, 'n', 'an integer ≥ 0', n);
  if (x.length < n * dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `input holds ${x.length} floats, fewer than n×dim = ${n}×${dim}`, { n, dim });
  }
}

/**
 * Float64 dot product of a[ao..ao+dim) and b[bo..bo+dim), summed left to right: the same order as
 * the reference triple loop, so δ matches it bit for bit.
 */
function dot64(a: Float32Array, ao: number, b: Float32Array, bo: number, dim: number): number {
  let s = 0;
  for (let t = 0; t < dim; t++) s += a[ao + t] * b[bo + t];
  return s;
}

/**
 * out[i] = float64 ⟨x_(start+i), c_(j[i])⟩ for i < rows. Four rows at a time, each summed left to
 * right exactly like {@link dot64} (so bit-identical), but as four independent chains the CPU can
 * overlap.
 */
function dotsAt(x: Float32Array, start: number, c: Float32Array, j: Int32Array, rows: number, dim: number, out: Float64Array): void {
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
 * as {@link NearestCentroid} (centroids re-normalised, ties to the lowest index). Used as the
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
 * The float64 JS kernel ({@link argmaxDot}): each row widened to float64 once, products of float32
 * values summed in float64 (exact products, left-to-right sums). Exact argmax (lowest index on
 * ties); no near-tie step needed.
 */
function assignJs(
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
 * Exact nearest centroid with a fast backend. Create once per centroid set, then call
 * {@link NearestCentroid.assign} on batches. Concurrent `assign` calls share the session in call order.
 */
export class NearestCentroid {
  /** Unit centroids actually used (k×dim float32). */
  readonly centroids: Float32Array;
  private readonly jsBackend: boolean;
  /** ORT runs, one at a time in call order; the JS work of different calls may interleave. */
  private ortTail: Promise<unknown> = Promise.resolve();

  private constructor(
    centroids: Float32Array,
    readonly k: number,
    readonly dim: number,
    readonly backend: 'ort' | 'js',
    private scorer: OrtScorer | null,
    private readonly batchRows: number,
    private worker: OrtRunner | null = null,
    private readonly qc: QuantizedCentroids | null = null,
  ) {
    this.centroids = centroids;
    this.jsBackend = backend === 'js';
    this.i8 = { active: worker !== null, rows: 0, fallback: 0 };
  }

  private readonly i8: Int8Stats;

  /** Counters of the int8 pre-filter (all zero and inactive unless created with `int8: true`). */
  get int8Stats(): Int8Stats {
    return { ...this.i8 };
  }

  /**
   * Validates and re-normalises `centroids` (k×dim row-major), then opens the backend.
   * Options: `backend` ('auto' | 'ort' | 'js', default 'auto': ORT when k·dim ≥ {@link ORT_MIN_WORK}
   * and k ≥ 2), `threads` (default min(2, cpus); 1..cpus), `batchRows` (default 8192; 1..1,048,576).
   * Throws ERR_DBPRUNE_INVALID_OPTION on a bad option or a zero/non-finite centroid,
   * ERR_DBPRUNE_DIM_MISMATCH when centroids.length ≠ k·dim, ERR_DBPRUNE_INTERNAL if ORT fails.
   */
  static async create(centroids: Float32Array, k: number, dim: number, opts: NearestOptions = {}): Promise<NearestCentroid> {
    const cpus = Math.max(1, os.cpus().length);
    const backendOpt = opts.backend ?? 'auto';
    checkOption(['auto', 'ort', 'js'].includes(backendOpt), 'backend', "'auto' | 'ort' | 'js'", backendOpt);
    const threads = opts.threads ?? Math.min(2, cpus);
    checkOption(Number.isInteger(threads) && threads >= 1 && threads <= cpus, 'threads', `an integer in 1..${cpus}`, threads);
    const batchRows = opts.batchRows ?? 8192;
    checkOption(Number.isInteger(batchRows) && batchRows >= 1 && batchRows <= 1 << 20, 'batchRows', 'an integer in 1..1048576', batchRows);
    const head = opts.head ?? 'topk';
    checkOption(head === 'topk' || head === 'argmax', 'head', "'topk' | 'argmax'", head);
    checkCentroids(centroids, k, dim);
    const c = normalizedCopy(centroids, k, dim);
    const backend = backendOpt === 'auto' ? (k >= 2 && k * dim >= ORT_MIN_WORK ? 'ort' : 'js') : backendOpt;
    if (backend === 'ort' && opts.int8 === true && head === 'topk' && k >= 2) {
      let exact: boolean;
      try {
        exact = await probeExactInt8Kernel(1);
      } catch (e) {
        throw new DbpruneError(ErrorCodes.INTERNAL, `cannot probe the int8 ONNX kernel: ${String(e)}`, { k, dim }, { cause: e });
      }
      if (exact) {
        const qc = quantizeCentroids(c, k, dim);
        const models = [buildNearestModel(c, k, dim, 'topk'), buildInt8Model(qc, k, dim)];
        const options = nearestSessionOptions(threads);
        const worker = opts.inThread === true ? await InThreadOrt.create(models, options) : await OrtWorker.create(models, options);
        return new NearestCentroid(c, k, dim, backend, null, batchRows, worker, qc);
      }
    }
    const scorer = backend === 'ort' ? await OrtScorer.create(c, k, dim, { threads, head }) : null;
    return new NearestCentroid(c, k, dim, backend, scorer, batchRows);
  }

  /**
   * Assigns the first `n` rows of `x` (n×dim float32, unit rows) to their nearest centroid.
   * Writes into `out` when given (arrays of length ≥ n), else allocates. Resolves after all rows.
   * Calls may overlap (keep a second batch in flight to hide the JS work behind ORT): their ORT
   * runs are queued in call order and each call writes only its own outputs.
   * Throws ERR_DBPRUNE_DIM_MISMATCH when x is shorter than n×dim.
   */
  assign(x: Float32Array, n: number, out?: NearestResult): Promise<NearestResult> {
    return this.assignNow(x, n, out);
  }

  /** Queues an ORT run behind the previous ones (sessions run one call at a time). */
  private runOrt<T>(f: () => Promise<T>): Promise<T> {
    const p = this.ortTail.then(f);
    this.ortTail = p.catch(() => undefined);
    return p;
  }

  private async assignNow(x: Float32Array, n: number, out?: NearestResult): Promise<NearestResult> {
    checkInput(x, n, this.dim);
    const cluster = out?.cluster ?? new Int32Array(n);
    const distance = out?.distance ?? new Float32Array(n);
    if (cluster.length < n || distance.length < n) {
      throw new DbpruneError(ErrorCodes.INVALID_OPTION, `output arrays shorter than n = ${n}`, { option: 'out' });
    }
    const { dim, k } = this;
    if (this.jsBackend) {
      assignJs(x, n, this.centroids, k, dim, cluster, distance);
      return { cluster, distance };
    }
    const worker = this.worker;
    if (worker) {
      const f32 = (xs: Float32Array, rows: number): Promise<Top2> =>
        worker.run(0, xs, rows, dim).then((o) => top2FromOutputs(o.values as Float32Array, o.indices as Int32Array, rows, k));
      if (this.i8.active) {
        const i8 = (xs: Float32Array, rows: number): Promise<Int8Top2> =>
          worker.run(1, xs, rows, dim).then((o) => ({ maxAbs: o.m as Float32Array, norm: o.nx as Float32Array, values: o.values as Int32Array, indices: o.indices as Int32Array }));
        await this.assignInt8(i8, f32, x, n, cluster, distance);
      } else {
        await this.assignF32(f32, x, n, cluster, distance);
      }
      return { cluster, distance };
    }
    const scorer = this.scorer;
    if (!scorer) throw new DbpruneError(ErrorCodes.INTERNAL, 'NearestCentroid used after dispose()');
    await this.assignF32((xs, rows) => this.runOrt(() => scorer.top2(xs, rows)), x, n, cluster, distance);
    return { cluster, distance };
  }

  /** The float32 path: ORT MatMul + TopK(2), float64 δ, float64 re-check of near-ties. */
  private async assignF32(
    top2: (x: Float32Array, rows: number) => Promise<Top2>,
    x: Float32Array,
    n: number,
    cluster: Int32Array,
    distance: Float32Array,
  ): Promise<void> {
    const { dim, k } = this;
    const c = this.centroids;
    // Pipelined: ORT scores batch b+1 on its own threads while JS finishes batch b.
    const score = (start: number): Promise<Top2> => {
      const rows = Math.min(this.batchRows, n - start);
      return top2(x.subarray(start * dim, (start + rows) * dim), rows);
    };
    const best = new Float64Array(Math.min(this.batchRows, n));
    let pending: Promise<Top2> | null = n > 0 ? score(0) : null;
    for (let start = 0; start < n; start += this.batchRows) {
      const rows = Math.min(this.batchRows, n - start);
      const { idx1, val1, idx2, val2 } = await (pending as Promise<Top2>);
      const next = start + this.batchRows;
      pending = next < n ? score(next) : null;
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
  }

  /**
   * The int8 path: rows whose winner the bound proves get it (δ in float64 as above); the others
   * are gathered and run through {@link assignF32}, so every row ends as the float32 path would.
   */
  private async assignInt8(
    int8: (x: Float32Array, rows: number) => Promise<Int8Top2>,
    f32: (x: Float32Array, rows: number) => Promise<Top2>,
    x: Float32Array,
    n: number,
    cluster: Int32Array,
    distance: Float32Array,
  ): Promise<void> {
    const { dim } = this;
    const c = this.centroids;
    const qc = this.qc as QuantizedCentroids;
    const score = (start: number): Promise<Int8Top2> => {
      const rows = Math.min(this.batchRows, n - start);
      return int8(x.subarray(start * dim, (start + rows) * dim), rows);
    };
    const cap = Math.min(this.batchRows, n);
    const win = new Int32Array(cap);
    const best = new Float64Array(cap);
    let pending: Promise<Int8Top2> | null = n > 0 ? score(0) : null;
    for (let start = 0; start < n; start += this.batchRows) {
      const rows = Math.min(this.batchRows, n - start);
      const r = await (pending as Promise<Int8Top2>);
      const next = start + this.batchRows;
      pending = next < n ? score(next) : null;
      const uncertain = certainWinners(r, rows, dim, qc, win);
      this.i8.rows += rows;
      this.i8.fallback += uncertain;
      const idx = win.subarray(0, rows);
      const rowsOf = new Int32Array(uncertain);
      for (let i = 0, u = 0; i < rows; i++) {
        if (idx[i] < 0) {
          rowsOf[u++] = i;
          idx[i] = 0;
        }
      }
      dotsAt(x, start, c, idx, rows, dim, best);
      for (let i = 0; i < rows; i++) {
        const s = best[i];
        cluster[start + i] = idx[i];
        distance[start + i] = Number.isFinite(s) ? 1 - s : NaN;
      }
      if (uncertain > 0) {
        // Gather the undecided rows and decide them exactly as the float32 path does.
        const xs = new Float32Array(uncertain * dim);
        for (let u = 0; u < uncertain; u++) {
          const o = (start + rowsOf[u]) * dim;
          xs.set(x.subarray(o, o + dim), u * dim);
        }
        const cl = new Int32Array(uncertain);
        const di = new Float32Array(uncertain);
        await this.assignF32(f32, xs, uncertain, cl, di);
        for (let u = 0; u < uncertain; u++) {
          cluster[start + rowsOf[u]] = cl[u];
          distance[start + rowsOf[u]] = di[u];
        }
      }
    }
    if (this.i8.rows >= 65_536 && this.i8.fallback * 2 > this.i8.rows) this.i8.active = false;
  }

  /** Releases the ORT session. Idempotent; `assign` must not be called afterwards. */
  async dispose(): Promise<void> {
    const s = this.scorer;
    const w = this.worker;
    this.scorer = null;
    this.worker = null;
    if (s) await s.dispose();
    if (w) await w.dispose();
  }
}
