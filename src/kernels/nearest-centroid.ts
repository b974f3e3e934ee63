/**
 * The ORT-backed exact nearest centroid: {@link NearestCentroid} scores in float32 with an
 * onnxruntime-node MatMul + TopK(2) session (matmul-ort.ts), optionally pre-scored in int8
 * (matmul-int8.ts) on a worker thread (ort-worker.ts), and finishes every row with the pure
 * conventions of src/core/nearest.ts (float64 δ, near-ties re-decided in float64, ties to the
 * lowest index) — so every backend returns the same clusters as {@link nearestBruteForceJs}.
 */
import os from 'node:os';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import {
  assignJs,
  checkCentroids,
  checkInput,
  checkOutput,
  dotsAt,
  NEAREST_BACKENDS,
  resolveTop2,
  type NearestAssigner,
  type NearestBackend,
  type NearestResult,
  type Top2,
} from '../core/nearest.js';
import { choiceOption, integerOption } from '../core/validate.js';
import { normalizedCopy } from '../core/vector.js';
import { buildInt8Model, certainWinners, nearestSessionOptions, probeExactInt8Kernel, quantizeCentroids, type Int8Top2, type QuantizedCentroids } from './matmul-int8.js';
import { buildNearestModel, OrtScorer, top2FromOutputs } from './matmul-ort.js';
import { InThreadOrt, OrtWorker, type OrtRunner } from './ort-worker.js';

/** ORT reduction heads (benchmarks only: 'argmax' has no near-tie check). */
const HEADS = ['topk', 'argmax'] as const;

/**
 * `backend: 'auto'` uses ORT when k·dim reaches this (and k ≥ 2). Measured on the 2-core box with
 * batches of 16k rows, ORT (2 threads) beats the float64 JS kernel at every size tried, from
 * d×k = 8×4 (9.7M vs 2.1M rows/s) to 512×500 (266k vs 4.7k rows/s; the plain triple loop
 * {@link nearestBruteForceJs} does 1.9k/s); below ~2k floats the JS
 * kernel already runs at millions of rows/s and skips the session set-up (1–30 ms).
 */
export const ORT_MIN_WORK = 2048;

/** Options of {@link NearestCentroid.create}. */
export interface NearestOptions {
  /** 'ort' (onnxruntime-node MatMul + TopK), 'js' (float64 JS kernel) or 'auto' (default: by k·dim). */
  backend?: NearestBackend;
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

/**
 * Exact nearest centroid with a fast backend. Create once per centroid set, then call
 * {@link NearestCentroid.assign} on batches. Concurrent `assign` calls share the session in call order.
 */
export class NearestCentroid implements NearestAssigner {
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
  /**
   * Buffers for the int8 path's undecided rows, gathered for the float32 pass: taken for one
   * gather and given back, so there are as many as calls run at once (the assign worker runs
   * several). A new array per batch (up to 4 MB at d = 512) raised glibc's mmap threshold, after
   * which freed gathers stayed in the thread's malloc arena (tens of MB of peak RSS).
   */
  private readonly gathers: Float32Array[] = [];

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
    const backendOpt = choiceOption(opts.backend, 'backend', NEAREST_BACKENDS, 'auto');
    const threads = integerOption(opts.threads, 'threads', { default: Math.min(2, cpus), min: 1, max: cpus });
    const batchRows = integerOption(opts.batchRows, 'batchRows', { default: 8192, min: 1, max: 1 << 20 });
    const head = choiceOption(opts.head, 'head', HEADS, 'topk');
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
    checkOutput(cluster, distance, n);
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
      const top = await (pending as Promise<Top2>);
      const next = start + this.batchRows;
      pending = next < n ? score(next) : null;
      resolveTop2(x, start, c, k, dim, top, rows, best, cluster, distance);
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
        let gather = this.gathers.pop();
        if (!gather || gather.length < uncertain * dim) gather = new Float32Array(cap * dim); // uncertain ≤ cap
        const xs = gather.subarray(0, uncertain * dim);
        for (let u = 0; u < uncertain; u++) {
          const o = (start + rowsOf[u]) * dim;
          xs.set(x.subarray(o, o + dim), u * dim);
        }
        const cl = new Int32Array(uncertain);
        const di = new Float32Array(uncertain);
        try {
          await this.assignF32(f32, xs, uncertain, cl, di);
        } finally {
          this.gathers.push(gather);
        }
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
