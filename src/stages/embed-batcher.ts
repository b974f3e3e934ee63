/**
 * The embed stage's batching: rows go to the model in runs of `rowsPerRun` as soon as that many
 * are there, while the emitted batch (up to `batchSize` rows) is assembled around them. So the
 * model starts on a batch before it is complete, and only the rows of the runs in flight (plus at
 * most one run's worth waiting) hold pixels: with 64-row batches handed over whole, three batches
 * of 224 px pixels (~115 MB) were alive at once.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { sampleRef, type DecodedSample, type EmbeddingBatch, type RowError, type SampleRef } from '../core/sample.js';
import type { EncoderOutput } from '../kernels/encoder-worker.js';
import type { ModelInfo } from './embed-model.js';

/** One run's rows (indices in its batch) and the model's output for them. */
interface RunResult {
  part: number[];
  out: EncoderOutput;
}

/** The batch being assembled: its rows, their errors and thumbnails, and the runs posted for it. */
class OpenBatch {
  readonly rows: SampleRef[] = [];
  readonly errors: (RowError | undefined)[] = [];
  readonly thumbnails: (Buffer | undefined)[] = [];
  anyThumbnail = false;
  /** Valid rows not yet handed to a run. */
  unsent: { row: number; pixels: Float32Array }[] = [];
  readonly runs: Promise<RunResult>[] = [];
}

/** Where the batcher's results go. */
export interface BatcherSink {
  push(batch: EmbeddingBatch): void;
  fail(error: unknown): void;
  /** A run finished (or failed): `runsInFlight` went down. */
  runSettled(): void;
}

/** Writes the rows of one run L2-normalised into `matrix`; a zero or non-finite one becomes `error:embedding`. */
function normaliseRows(m: ModelInfo, b: OpenBatch, r: RunResult, matrix: Float32Array): void {
  const { data, dims } = r.out;
  const d = m.dim;
  const rowStride = dims.length === 3 ? Number(dims[1]) * d : d; // [N, T, D]: token 0
  r.part.forEach((row, i) => {
    const src = i * rowStride;
    let ss = 0;
    for (let k = 0; k < d; k++) ss += data[src + k] * data[src + k];
    const norm = Math.sqrt(ss);
    if (!Number.isFinite(norm) || norm === 0) {
      b.errors[row] = {
        reason: 'error:embedding',
        message: `model gave a ${Number.isFinite(norm) ? 'zero' : 'non-finite'} embedding for ${b.rows[row].key}`,
        code: ErrorCodes.EMBEDDING,
      };
      return;
    }
    const inv = 1 / norm;
    const dst = row * d;
    for (let k = 0; k < d; k++) matrix[dst + k] = data[src + k] * inv;
  });
}

/** Assembles batches of up to `batchSize` rows and runs the model on them in runs of `rowsPerRun` (or the model's static batch). */
export class EmbedBatcher {
  private open = new OpenBatch();
  private inflight = 0;
  private emitted: Promise<void> = Promise.resolve();
  private failed = false;
  private readonly runRows: number;
  private readonly per: number;

  constructor(
    private readonly m: ModelInfo,
    private readonly batchSize: number,
    private readonly sink: BatcherSink,
  ) {
    this.runRows = m.fixedBatch || m.rowsPerRun;
    this.per = 3 * m.height * m.width;
  }

  /** Rows in the batch being assembled. */
  get size(): number {
    return this.open.rows.length;
  }

  /** Runs handed to the model and not finished. */
  get runsInFlight(): number {
    return this.inflight;
  }

  /**
   * Adds one sample: a run is posted when `rowsPerRun` valid rows wait, the batch is closed at
   * `batchSize` rows. Throws ERR_DBPRUNE_DIM_MISMATCH when the sample's pixel count is not 3·H·W.
   */
  add(s: DecodedSample): void {
    if (!s.error && s.pixels && s.pixels.length !== this.per) {
      throw new DbpruneError(
        ErrorCodes.DIM_MISMATCH,
        `sample ${s.key} has ${s.pixels.length} pixel values, the model takes 3×${this.m.height}×${this.m.width} = ${this.per}; decode size must match the model`,
        { key: s.key, shard: s.shard },
      );
    }
    const b = this.open;
    const row = b.rows.length;
    b.rows.push(sampleRef(s));
    b.thumbnails.push(s.thumbnail);
    if (s.thumbnail) b.anyThumbnail = true;
    if (s.error) b.errors.push(s.error);
    else if (!s.pixels) b.errors.push({ reason: 'error:decode', message: `sample ${s.key} reached embed without pixels`, code: ErrorCodes.DECODE });
    else {
      b.errors.push(undefined);
      b.unsent.push({ row, pixels: s.pixels });
    }
    if (b.unsent.length >= this.runRows) this.post(b);
    if (b.rows.length >= this.batchSize) this.close();
  }

  /** Closes the batch being assembled (if any rows): its last rows go to the model, and it is emitted when its runs are done, in order. */
  close(): void {
    const b = this.open;
    if (b.rows.length === 0) return;
    this.open = new OpenBatch();
    if (b.unsent.length > 0) this.post(b);
    this.emitted = this.emitted.then(() => this.emit(b)).catch((e: unknown) => this.fail(e));
  }

  /** Settles when every closed batch has been emitted (or the batcher failed). */
  drained(): Promise<void> {
    return this.emitted;
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.sink.fail(e);
  }

  private post(b: OpenBatch): void {
    const rows = b.unsent;
    b.unsent = [];
    const n = this.m.fixedBatch || rows.length;
    const input = this.m.session.buffer(n * this.per);
    rows.forEach((r, i) => input.set(r.pixels, i * this.per));
    // a static batch model gets zeros in the rows past the last sample (the buffer may be recycled)
    if (rows.length < n) input.fill(0, rows.length * this.per);
    const part = rows.map((r) => r.row);
    this.inflight++;
    const run = this.m.session.run(this.m.inputName, input, [n, 3, this.m.height, this.m.width], this.m.outputName).then(
      (out): RunResult => ({ part, out }),
      (e: unknown) => {
        throw new DbpruneError(ErrorCodes.MODEL, `inference failed on a batch of ${n}: ${(e as Error).message}`, { key: b.rows[part[0]].key }, { cause: e });
      },
    );
    const settled = (): void => {
      this.inflight--;
      this.sink.runSettled();
    };
    run.then(settled, settled);
    b.runs.push(run);
  }

  private async emit(b: OpenBatch): Promise<void> {
    const results = await Promise.all(b.runs);
    if (this.failed) return;
    const embeddings = new Float32Array(b.rows.length * this.m.dim);
    for (const r of results) normaliseRows(this.m, b, r, embeddings);
    const batch: EmbeddingBatch = { rows: b.rows, dim: this.m.dim, embeddings };
    if (b.errors.some((e) => e !== undefined)) batch.errors = b.errors;
    if (b.anyThumbnail) batch.thumbnails = b.thumbnails;
    this.sink.push(batch);
  }
}
