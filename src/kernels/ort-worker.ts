/**
 * onnxruntime-node sessions on a worker thread. `InferenceSession.run` of onnxruntime-node runs
 * synchronously on the calling thread (it only defers the call with `setImmediate`), so on the main
 * thread nothing else — reading, normalising, float64 δ — can run while ORT scores a batch. On a
 * worker it can: measured on the 2-core box, pass 1 of exact mode then overlaps JS and ORT.
 *
 * The worker is started from inline CommonJS code (no separate file to ship or transpile) and
 * loads the same onnxruntime-node package as the main thread. One run at a time per worker, in
 * call order; inputs are copied once into a pooled buffer that is transferred to the worker and
 * back, outputs come back as typed arrays.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { BufferPool } from './buffer-pool.js';

/** Output arrays of one run, by output name. */
export type OrtOutputs = Record<string, Float32Array | Int32Array>;

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let sessions = [];
parentPort.on('message', async (m) => {
  if (m.type === 'init') {
    try {
      sessions = [];
      for (const b of m.models) sessions.push(await ort.InferenceSession.create(b, m.options));
      parentPort.postMessage({ type: 'ready' });
    } catch (e) {
      parentPort.postMessage({ type: 'ready', error: String((e && e.stack) || e) });
    }
    return;
  }
  if (m.type === 'close') {
    for (const s of sessions) await s.release();
    sessions = [];
    parentPort.close();
    return;
  }
  try {
    const res = await sessions[m.model].run({ x: new ort.Tensor('float32', m.x, [m.rows, m.dim]) });
    const out = {};
    for (const k of Object.keys(res)) out[k] = res[k].data;
    // the input buffer goes back to the caller's pool
    parentPort.postMessage({ id: m.id, out, x: m.x }, [m.x.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.stack) || e), x: m.x }, [m.x.buffer]);
  }
});
`;

/** ORT session options used on the worker (plain data, structured-cloned). */
export interface OrtWorkerSessionOptions {
  intraOpNumThreads: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionProviders?: string[];
  enableCpuMemArena?: boolean;
  extra?: Record<string, unknown>;
}

/** What {@link NearestCentroid} needs from where its sessions run: a worker thread or this thread. */
export interface OrtRunner {
  run(model: number, x: Float32Array, rows: number, dim: number): Promise<OrtOutputs>;
  dispose(): Promise<void>;
}

/**
 * The same sessions on the calling thread: for code that already runs on a worker of its own
 * (the assign pool), where a second thread would only add a copy per batch and memory.
 */
export class InThreadOrt implements OrtRunner {
  private constructor(private sessions: InferenceSessionLike[]) {}

  /** Creates one session per model. Throws ERR_DBPRUNE_INTERNAL when a session cannot be created. */
  static async create(models: Uint8Array[], options: OrtWorkerSessionOptions): Promise<InThreadOrt> {
    const ort = await import('onnxruntime-node');
    const sessions: InferenceSessionLike[] = [];
    try {
      // No CPU memory arena: with one session pair per pool worker the arenas' high-water marks
      // added up to ~40 MB of peak RSS for buffers a MatMul re-allocates cheaply.
      const o = { ...options, enableCpuMemArena: false };
      for (const m of models) sessions.push(await ort.InferenceSession.create(m, o as import('onnxruntime-node').InferenceSession.SessionOptions));
    } catch (e) {
      await Promise.allSettled(sessions.map((x) => x.release()));
      throw new DbpruneError(ErrorCodes.INTERNAL, `cannot create the ORT sessions: ${String(e)}`, {}, { cause: e });
    }
    return new InThreadOrt(sessions);
  }

  async run(model: number, x: Float32Array, rows: number, dim: number): Promise<OrtOutputs> {
    const session = this.sessions[model];
    if (!session) throw new DbpruneError(ErrorCodes.INTERNAL, 'ORT session used after dispose()');
    const { Tensor } = await import('onnxruntime-node');
    const res = await session.run({ x: new Tensor('float32', x.subarray(0, rows * dim), [rows, dim]) });
    const out: OrtOutputs = {};
    for (const key of Object.keys(res)) out[key] = res[key].data as Float32Array | Int32Array;
    return out;
  }

  async dispose(): Promise<void> {
    const s = this.sessions;
    this.sessions = [];
    await Promise.allSettled(s.map((x) => x.release()));
  }
}

type InferenceSessionLike = import('onnxruntime-node').InferenceSession;

/**
 * A worker thread holding one ORT session per model (each with input `x`: float32 [N, dim]).
 * Create with {@link OrtWorker.create}; `run` calls queue in call order.
 */
export class OrtWorker implements OrtRunner {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (o: OrtOutputs) => void; reject: (e: unknown) => void }>();
  private failure: Error | undefined;
  private closed = false;
  /** Input buffers handed back by the worker, reused so pass 1 does not churn 2 GB of garbage. */
  private readonly pool = new BufferPool(4);

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: { id: number; out?: OrtOutputs; error?: string; x?: Float32Array }) => {
      if (m.x) this.pool.give(m.x.buffer as ArrayBuffer);
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new DbpruneError(ErrorCodes.INTERNAL, `ORT worker run failed: ${m.error}`));
      else p.resolve(m.out as OrtOutputs);
    });
    worker.on('error', (e: Error) => this.fail(e));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`ORT worker exited with code ${code}`));
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(new DbpruneError(ErrorCodes.INTERNAL, `ORT worker failed: ${e.message}`, {}, { cause: e }));
    this.pending.clear();
  }

  /**
   * Starts the worker and creates one session per model (serialised ONNX bytes).
   * Throws ERR_DBPRUNE_INTERNAL when the worker or a session cannot be started.
   */
  static async create(models: Uint8Array[], options: OrtWorkerSessionOptions): Promise<OrtWorker> {
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    // execArgv: [] — the worker runs plain CommonJS and needs no loader hooks of the parent.
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: { ortPath }, execArgv: [] });
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { type?: string; error?: string }): void => {
        if (m.type !== 'ready') return;
        worker.off('message', onMessage);
        worker.off('error', onError);
        if (m.error !== undefined) reject(new Error(m.error));
        else resolve();
      };
      const onError = (e: Error): void => {
        worker.off('message', onMessage);
        reject(e);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
    worker.postMessage({ type: 'init', models, options });
    try {
      await ready;
    } catch (e) {
      await worker.terminate();
      throw new DbpruneError(ErrorCodes.INTERNAL, `cannot start the ORT worker: ${String(e)}`, {}, { cause: e });
    }
    return new OrtWorker(worker);
  }

  /** Runs model `model` on `rows` rows of `x` (rows×dim float32; copied). */
  run(model: number, x: Float32Array, rows: number, dim: number): Promise<OrtOutputs> {
    if (this.failure) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, `ORT worker failed: ${this.failure.message}`));
    if (this.closed) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'ORT worker used after dispose()'));
    const id = this.nextId++;
    const len = rows * dim;
    const copy = this.pool.take(len);
    copy.set(x.subarray(0, len));
    return new Promise<OrtOutputs>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, model, x: copy, rows, dim }, [copy.buffer as ArrayBuffer]);
    });
  }

  /** Releases the sessions and ends the worker. Idempotent. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
    for (const p of this.pending.values()) p.reject(new DbpruneError(ErrorCodes.INTERNAL, 'ORT worker disposed'));
    this.pending.clear();
    this.pool.clear(); // release the pooled input buffers with the worker
  }
}
