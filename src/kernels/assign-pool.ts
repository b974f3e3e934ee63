/**
 * Nearest-centroid assignment on worker threads, so the main thread only reads input, decides and
 * writes. Measured on the 2-core box (1M × 512, k = 500): with one in-thread NearestCentroid the
 * main thread was the bottleneck (normalising 0.8 s, screening 0.7 s, int8 bound checks and
 * float64 δ 1.1 s per million rows, beside reading, decisions and manifest encoding), so the
 * second core idled. Each worker holds its own {@link NearestCentroid} (int8 pre-score, float32
 * fallback, float64 δ) and, on request, L2-normalises (normalizeRows) or screens the rows first:
 * the same functions as in-thread, so the results are bit-identical.
 *
 * Batches are transferred (not copied) to a worker and back: the caller gets its buffer back in
 * the result (`x`) and must not touch the one it passed until then.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { checkOption, DbpruneError, ErrorCodes } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { normalizedCopy } from '../core/vector.js';

/** @internal Worker protocol: start-up message. */
export interface AssignPoolInit {
  type: 'init';
  centroids: Float32Array;
  k: number;
  dim: number;
  threads: number;
  batchRows: number;
}

/** @internal Worker protocol: one batch. `normalize` is the tolerance when rows are to be normalised. */
export interface AssignPoolRequest {
  id: number;
  x: Float32Array;
  n: number;
  normalize?: number;
  screen?: boolean;
}

/** Result of {@link AssignPool.assign}. */
export interface PooledAssignment {
  /** The input buffer, handed back (normalised in place when asked). */
  x: Float32Array;
  /** Nearest centroid per row; −1 for rows flagged in `invalid` / `screen`. */
  cluster: Int32Array;
  /** δ = 1 − ⟨x, c⟩ in float64, stored float32; NaN for flagged rows. */
  distance: Float32Array;
  /** Rows rescaled to unit length (normalise requests). */
  renormalized: number;
  /** normalise requests: 1 for rows holding NaN/Inf or zeros; null when none. */
  invalid: Uint8Array | null;
  /** screen requests: 1 = NaN/Inf, 2 = zero vector; null when none. */
  screen: Uint8Array | null;
}

/** @internal Worker protocol: one batch's result, the {@link PooledAssignment} of request `id`. */
export interface AssignPoolReply extends PooledAssignment {
  id: number;
}

/** Options of {@link AssignPool.create}. */
export interface AssignPoolOptions {
  /** Worker threads, default min(2, cpus); 1..cpus. */
  workers?: number;
  /** ORT intra-op threads per worker, default 1 (the workers already fill the cores). */
  threads?: number;
  /** Rows per ORT call inside a worker, default 1024 (smaller ORT intermediates: peak RSS). */
  batchRows?: number;
}

// Started from inline CommonJS that imports the worker module. When this file runs from TypeScript
// sources (tests, benchmarks under tsx/vitest), the worker registers tsx's loader first: a worker
// does not inherit the parent's module hooks.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((e) => { setImmediate(() => { throw e; }); });
`;

/** Young-generation cap of each worker's V8 heap, MB (see create). */
const WORKER_YOUNG_GENERATION_MB = 4;

interface Slot {
  worker: Worker;
  busy: number;
}

export class AssignPool {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: PooledAssignment) => void; reject: (e: unknown) => void }>();
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    private readonly slots: Slot[],
    readonly k: number,
    readonly dim: number,
  ) {
    for (const slot of slots) {
      slot.worker.on('message', (m: AssignPoolReply & { error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        slot.busy--;
        this.pending.delete(m.id);
        if (m.error !== undefined) p.reject(new DbpruneError(ErrorCodes.INTERNAL, `assign worker failed: ${m.error}`));
        else p.resolve({ x: m.x, cluster: m.cluster, distance: m.distance, renormalized: m.renormalized, invalid: m.invalid, screen: m.screen });
      });
      slot.worker.on('error', (e: Error) => this.fail(e));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`assign worker exited with code ${code}`));
      });
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(new DbpruneError(ErrorCodes.INTERNAL, `assign worker failed: ${e.message}`, {}, { cause: e }));
    this.pending.clear();
  }

  /**
   * Starts the workers, each with its own NearestCentroid over `centroids` (k×dim, re-normalised
   * there). Throws ERR_DBPRUNE_INVALID_OPTION on a bad option or centroid, ERR_DBPRUNE_INTERNAL
   * when a worker cannot start.
   */
  static async create(centroids: Float32Array, k: number, dim: number, opts: AssignPoolOptions = {}): Promise<AssignPool> {
    const cpus = Math.max(1, os.cpus().length);
    const workers = integerOption(opts.workers, 'workers', { default: Math.min(2, cpus), min: 1, max: cpus });
    const threads = integerOption(opts.threads, 'threads', { default: 1, min: 1, max: cpus });
    const batchRows = integerOption(opts.batchRows, 'batchRows', { default: 1024, min: 1, max: 1 << 20 });
    checkOption(centroids.length === k * dim, 'centroids', `k×dim = ${k}×${dim} floats`, centroids.length);
    normalizedCopy(centroids, k, dim); // fail here, not in a worker, on a malformed matrix
    const ts = import.meta.url.endsWith('.ts');
    const entry = new URL(`./assign-worker.${ts ? 'ts' : 'js'}`, import.meta.url).href;
    // tsx's package exports map 'tsx/esm/api' to index.cjs (require) and index.mjs (import) side by
    // side; the ESM one is the one that works in a worker.
    const tsxApi = ts ? pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href : undefined;
    const slots: Slot[] = [];
    try {
      for (let w = 0; w < workers; w++) {
        // A small young generation: a worker's garbage is a few small arrays per batch, and the
        // default (up to 48 MB per isolate) showed up as peak RSS.
        const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { entry, tsx: tsxApi }, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
        slots.push({ worker, busy: 0 });
      }
      await Promise.all(
        slots.map(
          (s) =>
            new Promise<void>((resolve, reject) => {
              const onMessage = (m: { type?: string; error?: string }): void => {
                if (m.type !== 'ready') return;
                s.worker.off('message', onMessage);
                s.worker.off('error', reject);
                if (m.error !== undefined) reject(new Error(m.error));
                else resolve();
              };
              s.worker.on('message', onMessage);
              s.worker.once('error', reject);
              const init: AssignPoolInit = { type: 'init', centroids, k, dim, threads, batchRows };
              s.worker.postMessage(init);
            }),
        ),
      );
    } catch (e) {
      await Promise.allSettled(slots.map((s) => s.worker.terminate()));
      if (e instanceof DbpruneError) throw e;
      throw new DbpruneError(ErrorCodes.INTERNAL, `cannot start the assign workers: ${String(e)}`, { workers }, { cause: e });
    }
    return new AssignPool(slots, k, dim);
  }

  /** Number of worker threads. */
  get size(): number {
    return this.slots.length;
  }

  /**
   * Assigns the first `n` rows of `x` (n×dim) on the least busy worker. `x` is transferred when it
   * owns its whole buffer, else copied; the result carries it back. `normalize` (a tolerance):
   * L2-normalise first as normalizeRows does; `screen`: flag NaN/Inf and zero rows instead.
   */
  assign(x: Float32Array, n: number, opts: { normalize?: number; screen?: boolean } = {}): Promise<PooledAssignment> {
    if (this.failure) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, `assign worker failed: ${this.failure.message}`));
    if (this.closed) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'assign pool used after dispose()'));
    if (x.length < n * this.dim) {
      return Promise.reject(new DbpruneError(ErrorCodes.DIM_MISMATCH, `input holds ${x.length} floats, fewer than n×dim = ${n}×${this.dim}`, { n, dim: this.dim }));
    }
    const own = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength && x.buffer instanceof ArrayBuffer;
    const data = own ? x : x.slice(0, n * this.dim);
    let slot = this.slots[0];
    for (const s of this.slots) if (s.busy < slot.busy) slot = s;
    slot.busy++;
    const id = this.nextId++;
    return new Promise<PooledAssignment>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const req: AssignPoolRequest = { id, x: data, n, normalize: opts.normalize, screen: opts.screen };
      slot.worker.postMessage(req, [data.buffer as ArrayBuffer]);
    });
  }

  /** Ends the workers (their ORT sessions first). Idempotent. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
        s.worker.postMessage({ type: 'close' });
        const timer = setTimeout(() => void s.worker.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
    for (const p of this.pending.values()) p.reject(new DbpruneError(ErrorCodes.INTERNAL, 'assign pool disposed'));
    this.pending.clear();
  }
}
