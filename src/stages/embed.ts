/**
 * `embed`: decoded samples → micro-batches of L2-normalised embeddings (onnxruntime-node).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { InferenceSession } from 'onnxruntime-node';
import { DbpruneError, ErrorCodes, checkOption } from '../core/errors.js';
import { integerOption, numberOption } from '../core/validate.js';
import type { DecodedSample } from '../core/sample.js';
import { parseDevice, type Device } from '../io/devices.js';
import { EmbedBatcher, type BatcherSink } from './embed-batcher.js';
import { loadModel, type ModelInfo } from './embed-model.js';

export { encoderSessionOptions } from './embed-model.js';

/** Runs handed to the model at once: one running and one queued, so the model never waits for the main thread. */
const RUNS_IN_FLIGHT = 2;

/** Options of {@link embed}: the ONNX model (file, folder or session; required), batch size (default 32; 1..4096), rows per run (default 16), batch delay (default 50 ms), device, threads, a signal. */
export interface EmbedOptions {
  /** An `.onnx` file, a transformers.js/optimum model directory (`onnx/vision_model.onnx`), or an
   *  already created `InferenceSession` (shared, not released by the stage). Required. */
  model: string | InferenceSession;
  /** Rows per emitted batch, at most. Default 32, 1..4096. */
  batchSize?: number;
  /**
   * Rows per inference call (session run), at most: a batch runs in ⌈batchSize / rowsPerRun⌉ calls,
   * each started as soon as its rows are there. Default 16 on the CPU, `batchSize` on other devices
   * (a GPU wants large calls; not measured: no GPU here),
   * 1..4096. On the CPU, ORT's working memory grows with it (MobileNetV2 at 224 px, model alone: peak
   * RSS ≈ 270 MB at 16 rows, ≈ 450 MB at 32, ≈ 800 MB at 64) while CPU per image does not fall beyond
   * ~8–16 rows. Embeddings do not depend on it.
   */
  rowsPerRun?: number;
  /** A partial batch is closed this long after its first row arrived, ms, or once the model has no
   *  run in flight if that is later (it keeps taking rows meanwhile). Default 50, 0..60_000. */
  maxDelayMs?: number;
  /** onnxruntime intra-op threads. Default 2, 1..64. */
  threads?: number;
  /**
   * Execution provider of the model's session: `cpu` (default), `cuda`, `cuda:1`, `tensorrt`,
   * `webgpu`, `dml`, `coreml` (see src/io/devices.ts). GPU providers fall back to CPU for the
   * operators they lack. An unavailable provider fails the stage with ERR_DBPRUNE_DEVICE, whose
   * message says how to install onnxruntime-node's GPU binaries. Ignored for a given session.
   */
  device?: string;
  /** Model input to feed. Default `pixel_values` if present, else the first input. */
  inputName?: string;
  /** Model output to read. Default `image_embeds`, else `pooler_output`, else the first output.
   *  A [N, T, D] output is reduced to its first token (CLS). */
  outputName?: string;
  /** Input side when the model's input shape has symbolic H/W. Default: the model dir's
   *  preprocessor config, else 224. */
  imageSize?: number;
  signal?: AbortSignal;
}

/** The embed stage, with `ready`: settles once the model is loaded and checked (rejects with the
 *  stage's construction error). Hand it to `decode({ startAfter })` so nothing is decoded first. */
export type EmbedStage = Transform & { readonly ready: Promise<void> };

/** Validated options of {@link embed}. */
/** {@link embedSettings}' result. @internal */
export interface EmbedSettings {
  batchSize: number;
  rowsPerRun: number;
  maxDelayMs: number;
  threads: number;
  device: Device;
}

/** The stage's settings from its options, validated (defaults and limits: {@link EmbedOptions}). @internal */
export function embedSettings(opts: EmbedOptions): EmbedSettings {
  checkOption(
    typeof opts?.model === 'string' ? opts.model.length > 0 : opts?.model instanceof Object && typeof opts.model.run === 'function',
    'model',
    'a path to an .onnx file or model directory, or an InferenceSession',
    typeof opts?.model === 'string' ? opts.model : typeof opts?.model,
  );
  const batchSize = integerOption(opts.batchSize, 'batchSize', { default: 32, min: 1, max: 4096 });
  let device: Device;
  try {
    device = parseDevice(opts.device ?? 'cpu');
  } catch (e) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `invalid option device: ${(e as Error).message}`, { option: 'device' });
  }
  const rowsPerRun = integerOption(opts.rowsPerRun, 'rowsPerRun', { default: device.name === 'cpu' ? 16 : batchSize, min: 1, max: 4096 });
  const maxDelayMs = numberOption(opts.maxDelayMs, 'maxDelayMs', { default: 50, min: 0, max: 60_000 });
  const threads = integerOption(opts.threads, 'threads', { default: 2, min: 1, max: 64 });
  if (opts.imageSize !== undefined) integerOption(opts.imageSize, 'imageSize', { min: 1, max: 8192 });
  return { batchSize, rowsPerRun, maxDelayMs, threads, device };
}

/**
 * Stage: consumes {@link DecodedSample}s, emits {@link EmbeddingBatch}es (objectMode).
 *
 * Samples are collected into micro-batches of up to `batchSize` rows; their valid rows go to the
 * model (on a worker thread) in runs of `rowsPerRun` as soon as that many are there. A partial batch
 * is closed when `maxDelayMs` has passed since its first row and the model has no run in flight, and
 * at the end of input. Two runs are in flight at most (one running, one queued); input waits beyond
 * that (backpressure). Rows keep input order across and within batches. Each emitted batch
 * holds every row it received: `embeddings` is rows × dim, L2-normalised; rows that arrived with
 * an error, or whose embedding is zero/non-finite (`error:embedding`), have `errors[i]` set and
 * zeros in the matrix. `thumbnails` are carried when any row has one. The model's output may be
 * `image_embeds`/pooled [N, D] or a token sequence [N, T, D] (first token is used).
 *
 * Options: see {@link EmbedOptions}; validated at construction (`ERR_DBPRUNE_INVALID_OPTION`).
 * Stage errors: `ERR_DBPRUNE_MODEL` (model missing, not loadable, unusable output, inference
 * failure), `ERR_DBPRUNE_DIM_MISMATCH` (a sample's pixel count ≠ 3·H·W of the model input — the
 * decode size disagrees with the model), `ERR_DBPRUNE_ABORTED` on `signal`.
 */
export function embed(opts: EmbedOptions): EmbedStage {
  const settings = embedSettings(opts);
  const { batchSize, maxDelayMs } = settings;
  const { signal } = opts;

  let model: ModelInfo | undefined;
  let batcher: EmbedBatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** The open partial batch has waited `maxDelayMs`: it is closed once the model is idle. */
  let due = false;
  /** A transform callback held back while {@link RUNS_IN_FLIGHT} runs are in flight. */
  let held: TransformCallback | undefined;

  // A partial batch whose delay has passed is closed when the model has no run in flight, not
  // queued behind the running ones: while the model is busy it keeps taking rows (up to batchSize),
  // so a decoder slower than the delay cannot cut the stream into tiny batches.
  const closeIfDue = (): void => {
    if (!due || !batcher || batcher.runsInFlight > 0) return;
    due = false;
    batcher.close();
  };
  const sink: BatcherSink = {
    push: (b) => stream.push(b),
    fail: (e) => stream.destroy(e as Error),
    runSettled: () => {
      if (held && batcher && batcher.runsInFlight < RUNS_IN_FLIGHT) {
        const cb = held;
        held = undefined;
        cb();
      }
      closeIfDue();
    },
  };

  let markReady!: () => void;
  let markFailed!: (e: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    markFailed = reject;
  });
  ready.catch(() => undefined); // reported through the stream's error; `ready` is for waiting

  const onAbort = (): void => {
    stream.destroy(new DbpruneError(ErrorCodes.ABORTED, 'aborted', {}, { cause: signal?.reason }));
  };

  const stream: Transform = new Transform({
    objectMode: true,
    construct(cb: (err?: Error | null) => void): void {
      if (signal?.aborted) return cb(new DbpruneError(ErrorCodes.ABORTED, 'aborted', {}, { cause: signal.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      loadModel(opts, settings).then(
        (m) => {
          model = m;
          batcher = new EmbedBatcher(m, batchSize, sink);
          markReady();
          cb();
        },
        (e: unknown) => {
          markFailed(e);
          cb(e as Error);
        },
      );
    },
    transform(s: DecodedSample, _enc: BufferEncoding, cb: TransformCallback): void {
      const b = batcher as EmbedBatcher;
      try {
        b.add(s);
      } catch (e) {
        cb(e as Error);
        return;
      }
      if (b.size === 0) {
        // the batch was full and closed
        if (timer) clearTimeout(timer);
        timer = undefined;
        due = false;
      } else if (!timer && !due) {
        timer = setTimeout(() => {
          timer = undefined;
          due = true;
          closeIfDue();
        }, maxDelayMs);
      }
      if (b.runsInFlight >= RUNS_IN_FLIGHT) held = cb;
      else cb();
    },
    flush(cb: TransformCallback): void {
      if (timer) clearTimeout(timer);
      timer = undefined;
      const b = batcher as EmbedBatcher;
      b.close();
      b.drained().then(() => cb(), cb);
    },
    destroy(err: Error | null, cb: (error: Error | null) => void): void {
      if (timer) clearTimeout(timer);
      timer = undefined;
      held = undefined;
      signal?.removeEventListener('abort', onAbort);
      const m = model;
      model = undefined;
      const release = m ? (batcher as EmbedBatcher).drained().then(() => m.session.release()).catch(() => undefined) : Promise.resolve();
      release.then(() => cb(err), () => cb(err));
    },
  });
  stream.once('close', () => markFailed(new DbpruneError(ErrorCodes.ABORTED, 'embed stage closed before its model was ready', {})));
  return Object.assign(stream, { ready });
}
