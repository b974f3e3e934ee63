/**
 * `embed`: decoded samples → micro-batches of L2-normalised embeddings (onnxruntime-node).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { InferenceSession } from 'onnxruntime-node';
import { DbpruneError, ErrorCodes, checkOption } from '../core/errors.js';
import { integerOption, numberOption } from '../core/validate.js';
import type { DecodedSample, EmbeddingBatch, RowError, SampleRef } from '../core/sample.js';
import { parseDevice, type Device } from '../io/devices.js';
import type { EncoderOutput } from '../kernels/encoder-worker.js';
import { loadModel, type ModelInfo } from './embed-model.js';

export { encoderSessionOptions } from './embed-model.js';

/** Options of {@link embed}: the ONNX model (file, folder or session; required), batch size (default 32; 1..4096), batch delay (default 50 ms), device, threads, a signal. */
export interface EmbedOptions {
  /** An `.onnx` file, a transformers.js/optimum model directory (`onnx/vision_model.onnx`), or an
   *  already created `InferenceSession` (shared, not released by the stage). Required. */
  model: string | InferenceSession;
  /** Rows per emitted batch, at most. Default 32, 1..4096. */
  batchSize?: number;
  /**
   * Rows per inference call (session run), at most: a batch runs in ⌈batchSize / rowsPerRun⌉ calls,
   * handed to the model's thread together. Default 16, 1..4096. ORT's working memory grows with it
   * (MobileNetV2 at 224 px, model alone: peak RSS ≈ 270 MB at 16 rows, ≈ 450 MB at 32, ≈ 800 MB at
   * 64) while CPU per image does not fall beyond ~8–16 rows. Embeddings do not depend on it.
   */
  rowsPerRun?: number;
  /** A partial batch is run this long after its first row arrived, ms, or when the batches before it
   *  are done if that is later (it keeps taking rows meanwhile). Default 50, 0..60_000. */
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

function toRef(s: DecodedSample): SampleRef {
  const r: SampleRef = { key: s.key };
  if (s.shard !== undefined) r.shard = s.shard;
  if (s.url !== undefined) r.url = s.url;
  if (s.caption !== undefined) r.caption = s.caption;
  if (s.uid !== undefined) r.uid = s.uid;
  return r;
}

/** Writes `data`'s rows (`part`, one per output row) L2-normalised into `matrix`; a zero or non-finite one becomes `error:embedding`. */
function normaliseRows(m: ModelInfo, samples: DecodedSample[], part: number[], out: EncoderOutput, matrix: Float32Array, errors: (RowError | undefined)[]): void {
  const { data, dims } = out;
  const d = m.dim;
  const rowStride = dims.length === 3 ? Number(dims[1]) * d : d; // [N, T, D]: token 0
  part.forEach((r, i) => {
    const src = i * rowStride;
    let ss = 0;
    for (let k = 0; k < d; k++) ss += data[src + k] * data[src + k];
    const norm = Math.sqrt(ss);
    if (!Number.isFinite(norm) || norm === 0) {
      errors[r] = {
        reason: 'error:embedding',
        message: `model gave a ${Number.isFinite(norm) ? 'zero' : 'non-finite'} embedding for ${samples[r].key}`,
        code: ErrorCodes.EMBEDDING,
      };
      return;
    }
    const inv = 1 / norm;
    const dst = r * d;
    for (let k = 0; k < d; k++) matrix[dst + k] = data[src + k] * inv;
  });
}

/**
 * Runs the model on `rows` (indices into `samples`) in calls of at most `rowsPerRun` rows (the
 * static batch of a fixed-batch model), all handed to the session at once, and writes
 * L2-normalised embeddings into `matrix`; rows whose embedding is not finite or has zero norm get
 * `error:embedding`.
 */
async function infer(m: ModelInfo, samples: DecodedSample[], rows: number[], matrix: Float32Array, errors: (RowError | undefined)[]): Promise<void> {
  const per = 3 * m.height * m.width;
  const chunk = m.fixedBatch || m.rowsPerRun;
  const runs: Promise<void>[] = [];
  for (let start = 0; start < rows.length; start += chunk) {
    const part = rows.slice(start, start + chunk);
    const n = m.fixedBatch || part.length;
    const input = m.session.buffer(n * per);
    part.forEach((r, i) => input.set(samples[r].pixels as Float32Array, i * per));
    // a static batch model gets zeros in the rows past the last sample (the buffer may be recycled)
    if (part.length < n) input.fill(0, part.length * per);
    runs.push(
      m.session.run(m.inputName, input, [n, 3, m.height, m.width], m.outputName).then(
        (out) => normaliseRows(m, samples, part, out, matrix, errors),
        (e: unknown) => {
          throw new DbpruneError(ErrorCodes.MODEL, `inference failed on a batch of ${n}: ${(e as Error).message}`, { key: samples[part[0]].key }, { cause: e });
        },
      ),
    );
  }
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The embed stage, with `ready`: settles once the model is loaded and checked (rejects with the
 *  stage's construction error). Hand it to `decode({ startAfter })` so nothing is decoded first. */
export type EmbedStage = Transform & { readonly ready: Promise<void> };

/** Validated options of {@link embed}. */
interface EmbedSettings {
  batchSize: number;
  rowsPerRun: number;
  maxDelayMs: number;
  threads: number;
  device: Device;
}

function validateEmbed(opts: EmbedOptions): EmbedSettings {
  checkOption(
    typeof opts?.model === 'string' ? opts.model.length > 0 : opts?.model instanceof Object && typeof opts.model.run === 'function',
    'model',
    'a path to an .onnx file or model directory, or an InferenceSession',
    typeof opts?.model === 'string' ? opts.model : typeof opts?.model,
  );
  const batchSize = integerOption(opts.batchSize, 'batchSize', { default: 32, min: 1, max: 4096 });
  const rowsPerRun = integerOption(opts.rowsPerRun, 'rowsPerRun', { default: 16, min: 1, max: 4096 });
  const maxDelayMs = numberOption(opts.maxDelayMs, 'maxDelayMs', { default: 50, min: 0, max: 60_000 });
  const threads = integerOption(opts.threads, 'threads', { default: 2, min: 1, max: 64 });
  let device: Device;
  try {
    device = parseDevice(opts.device ?? 'cpu');
  } catch (e) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `invalid option device: ${(e as Error).message}`, { option: 'device' });
  }
  if (opts.imageSize !== undefined) integerOption(opts.imageSize, 'imageSize', { min: 1, max: 8192 });
  return { batchSize, rowsPerRun, maxDelayMs, threads, device };
}

/**
 * One micro-batch: checks each sample's pixels against the model input, runs the model on the
 * valid rows and builds the {@link EmbeddingBatch} (rows in order; error rows keep zeros).
 * Throws ERR_DBPRUNE_DIM_MISMATCH when a sample's pixel count is not 3·H·W.
 */
async function embedBatch(m: ModelInfo, samples: DecodedSample[]): Promise<EmbeddingBatch> {
  const n = samples.length;
  const embeddings = new Float32Array(n * m.dim);
  const errors = new Array<RowError | undefined>(n).fill(undefined);
  const ok: number[] = [];
  const per = 3 * m.height * m.width;
  let anyThumb = false;
  samples.forEach((s, i) => {
    if (s.thumbnail) anyThumb = true;
    if (s.error) errors[i] = s.error;
    else if (!s.pixels) {
      errors[i] = { reason: 'error:decode', message: `sample ${s.key} reached embed without pixels`, code: ErrorCodes.DECODE };
    } else if (s.pixels.length !== per) {
      throw new DbpruneError(
        ErrorCodes.DIM_MISMATCH,
        `sample ${s.key} has ${s.pixels.length} pixel values, the model takes 3×${m.height}×${m.width} = ${per}; decode size must match the model`,
        { key: s.key, shard: s.shard },
      );
    } else ok.push(i);
  });
  if (ok.length > 0) await infer(m, samples, ok, embeddings, errors);
  const batch: EmbeddingBatch = { rows: samples.map(toRef), dim: m.dim, embeddings };
  if (errors.some((e) => e !== undefined)) batch.errors = errors;
  if (anyThumb) batch.thumbnails = samples.map((s) => s.thumbnail);
  return batch;
}

/**
 * Stage: consumes {@link DecodedSample}s, emits {@link EmbeddingBatch}es (objectMode).
 *
 * Samples are collected into micro-batches of up to `batchSize` rows; a partial batch is run when
 * `maxDelayMs` has passed since its first row and the model has finished the batches before it,
 * and at the end of input. One batch is in inference at a time, one more full batch waits, and the
 * next one fills meanwhile (backpressure beyond that). Rows keep input order across and within batches. Each emitted batch
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
  const settings = validateEmbed(opts);
  const { batchSize, maxDelayMs } = settings;
  const { signal } = opts;

  let model: ModelInfo | undefined;
  let pending: DecodedSample[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** The pending partial batch has waited `maxDelayMs`: it runs as soon as the model is free. */
  let due = false;
  let chain: Promise<void> = Promise.resolve();
  /** Completion of the most recently scheduled full batch (see `transform`). */
  let lastScheduled: Promise<void> = Promise.resolve();
  let failed = false;

  const runBatch = async (stream: Transform, samples: DecodedSample[]): Promise<void> => {
    stream.push(await embedBatch(model as ModelInfo, samples));
  };

  const schedule = (stream: Transform): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    due = false;
    const samples = pending;
    pending = [];
    if (samples.length === 0) return chain;
    chain = chain.then(() => (failed ? undefined : runBatch(stream, samples)));
    chain = chain.catch((e: unknown) => {
      failed = true;
      stream.destroy(e as Error);
    });
    return chain;
  };

  // A partial batch whose delay has passed runs when the batches before it are done, not behind
  // them: while the model is busy it keeps taking rows (up to batchSize), so a decoder slower than
  // 50 ms per batch cannot cut the stream into many tiny batches queued behind a running one
  // (smaller batches cost more CPU per image, and the queue held their pixels in memory).
  const runWhenFree = (s: Transform): void => {
    timer = undefined;
    due = true;
    const idle = chain;
    void idle.then(() => {
      if (due && chain === idle) void schedule(s);
    });
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
      pending.push(s);
      if (pending.length >= batchSize) {
        // Double buffering: while this batch runs, accept the samples of the next one, so decode
        // keeps working during inference. At most two batches are outstanding: wait only for the
        // one scheduled before this.
        const previous = lastScheduled;
        lastScheduled = schedule(stream);
        previous.then(() => cb(), cb);
        return;
      }
      if (!timer && !due) timer = setTimeout(() => runWhenFree(stream), maxDelayMs);
      cb();
    },
    flush(cb: TransformCallback): void {
      schedule(stream).then(() => cb(), cb);
    },
    destroy(err: Error | null, cb: (error: Error | null) => void): void {
      if (timer) clearTimeout(timer);
      timer = undefined;
      pending = [];
      failed = true;
      signal?.removeEventListener('abort', onAbort);
      const m = model;
      model = undefined;
      const release = m ? chain.then(() => m.session.release()).catch(() => undefined) : Promise.resolve();
      release.then(() => cb(err), () => cb(err));
    },
  });
  stream.once('close', () => markFailed(new DbpruneError(ErrorCodes.ABORTED, 'embed stage closed before its model was ready', {})));
  return Object.assign(stream, { ready });
}
