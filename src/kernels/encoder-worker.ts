/**
 * The image encoder's ONNX session on a worker thread. onnxruntime-node's `InferenceSession.run`
 * runs synchronously on the calling thread (it only defers the call with `setImmediate`), so with
 * the session on the main thread nothing else runs while the model scores a batch: decode results
 * wait, no new image is handed to libvips, and the next batch is not filled. Measured on the
 * bundled sample (995 drawings, MobileNetV2): decode then only ran between runs, so the 50 ms batch
 * delay cut the stream into batches of ~7 rows. On a worker, decode and inference overlap.
 *
 * The worker is started from inline CommonJS (no separate file to ship or transpile), loads the
 * same onnxruntime-node package as the main thread and holds one session. Runs queue in call order;
 * each input buffer is transferred to the worker (no copy) and back, for the caller to reuse.
 * While no run is pending the worker does not keep the process alive.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { BufferPool } from './buffer-pool.js';

/** An encoder output: the chosen output tensor's data and dims. */
export interface EncoderOutput {
  data: Float32Array;
  dims: readonly number[];
}

/** The model's input description: name, whether it is a tensor, and its shape (symbolic dims as strings). */
export interface EncoderInputInfo {
  name: string;
  isTensor: boolean;
  shape: readonly (number | string)[];
}

/** A session for the embed stage, wherever it runs. */
export interface EncoderSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputs: readonly EncoderInputInfo[];
  /** Runs the model on float32 `x` with `dims`, returns output `output`. `x` may be handed to another
   *  thread: do not touch it after the call; {@link buffer} gives a recycled one. */
  run(input: string, x: Float32Array, dims: readonly number[], output: string): Promise<EncoderOutput>;
  /** A float32 buffer of `length` values, recycled from earlier runs when one is big enough. */
  buffer(length: number): Float32Array;
  /** Releases the session (and ends the worker). Idempotent. */
  release(): Promise<void>;
}

/** Session options that reach the worker (structured-cloned plain data). */
export type EncoderSessionOptions = Pick<InferenceSession.SessionOptions, 'intraOpNumThreads' | 'interOpNumThreads' | 'graphOptimizationLevel' | 'extra'> & {
  executionProviders?: (string | { name: string; deviceId?: number })[];
};

function inputsOf(s: Pick<InferenceSession, 'inputNames' | 'inputMetadata'>): EncoderInputInfo[] {
  return s.inputNames.map((name, i) => {
    const m = s.inputMetadata?.[i];
    return { name, isTensor: Boolean(m?.isTensor), shape: m && m.isTensor ? [...m.shape] : [] };
  });
}

/** A session on this thread: for a caller-owned `InferenceSession` (not released here). */
export class InThreadEncoder implements EncoderSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputs: readonly EncoderInputInfo[];
  private readonly pool = new BufferPool(2);

  constructor(private readonly session: InferenceSession) {
    this.inputNames = session.inputNames;
    this.outputNames = session.outputNames;
    this.inputs = inputsOf(session);
  }

  async run(input: string, x: Float32Array, dims: readonly number[], output: string): Promise<EncoderOutput> {
    const { Tensor } = await import('onnxruntime-node');
    try {
      const res = await this.session.run({ [input]: new Tensor('float32', x, [...dims]) });
      const t = res[output];
      if (!t) throw new Error(`the model gave no output ${output}`);
      return { data: t.data as Float32Array, dims: t.dims };
    } finally {
      this.pool.give(x.buffer as ArrayBuffer);
    }
  }

  buffer(length: number): Float32Array {
    return this.pool.take(length);
  }

  release(): Promise<void> {
    this.pool.clear();
    return Promise.resolve();
  }
}

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const message = (e) => String((e && e.message) || e);
parentPort.on('message', async (m) => {
  if (m.type === 'init') {
    try {
      session = await ort.InferenceSession.create(m.model, m.options);
      const inputs = session.inputNames.map((name, i) => {
        const md = session.inputMetadata && session.inputMetadata[i];
        return { name, isTensor: Boolean(md && md.isTensor), shape: md && md.isTensor ? Array.from(md.shape) : [] };
      });
      parentPort.postMessage({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames, inputs });
    } catch (e) {
      parentPort.postMessage({ type: 'ready', error: message(e) });
    }
    return;
  }
  if (m.type === 'close') {
    if (session) await session.release();
    session = undefined;
    parentPort.close();
    return;
  }
  try {
    const res = await session.run({ [m.input]: new ort.Tensor('float32', m.x, m.dims) });
    const t = res[m.output];
    if (!t) throw new Error('the model gave no output ' + m.output);
    parentPort.postMessage({ id: m.id, data: t.data, dims: t.dims, x: m.x }, [m.x.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: message(e), x: m.x }, [m.x.buffer]);
  }
});
`;

interface WorkerReply {
  id: number;
  data?: Float32Array;
  dims?: number[];
  error?: string;
  x?: Float32Array;
}

interface ReadyReply {
  type: 'ready';
  error?: string;
  inputNames: string[];
  outputNames: string[];
  inputs: EncoderInputInfo[];
}

/** A session on its own worker thread. Create with {@link WorkerEncoder.create}. */
export class WorkerEncoder implements EncoderSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (o: EncoderOutput) => void; reject: (e: Error) => void }>();
  /** Up to 4 recycled inputs: a batch of 64 rows goes out as 4 runs of 16 at once. */
  private readonly pool = new BufferPool(4);
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
    readonly inputs: readonly EncoderInputInfo[],
  ) {
    worker.on('message', (m: WorkerReply) => this.settle(m));
    worker.on('error', (e: Error) => this.fail(e));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`the encoder worker exited with code ${code}`));
    });
    worker.unref();
  }

  /**
   * Starts the worker and creates the session from `model` (a path, or the model's bytes).
   * Rejects with the session-creation error (its message as ORT gave it).
   */
  static async create(model: string | Uint8Array, options: EncoderSessionOptions): Promise<WorkerEncoder> {
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    // execArgv: [] — the worker runs plain CommonJS and needs no loader hooks of the parent.
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: { ortPath }, execArgv: [] });
    const ready = new Promise<ReadyReply>((resolve, reject) => {
      const onMessage = (m: ReadyReply): void => {
        if (m.type !== 'ready') return;
        worker.off('message', onMessage);
        worker.off('error', reject);
        if (m.error !== undefined) reject(new Error(m.error));
        else resolve(m);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    worker.postMessage({ type: 'init', model, options });
    try {
      const r = await ready;
      return new WorkerEncoder(worker, r.inputNames, r.outputNames, r.inputs);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  private settle(m: WorkerReply): void {
    if (m.x) this.pool.give(m.x.buffer as ArrayBuffer);
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve({ data: m.data as Float32Array, dims: m.dims as number[] });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  run(input: string, x: Float32Array, dims: readonly number[], output: string): Promise<EncoderOutput> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the encoder session was released'));
    const id = this.nextId++;
    return new Promise<EncoderOutput>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A pending run keeps the process alive; an idle worker does not.
      this.worker.ref();
      this.worker.postMessage({ id, input, x, dims, output }, [x.buffer as ArrayBuffer]);
    });
  }

  buffer(length: number): Float32Array {
    return this.pool.take(length);
  }

  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref();
    this.worker.postMessage({ type: 'close' });
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
    this.fail(new Error('the encoder session was released'));
    this.pool.clear();
  }
}
