/**
 * `clipScoreFilter()`: DataComp's CLIP-score baselines as a stage over {@link EmbeddingBatch}es
 * carrying `fields.clip_score` (a metadata column such as `clip_l14_similarity_score`, or the
 * cosine of the npz's image and text embeddings, or the `clipScore` stage's output). Rows below
 * the threshold are marked `filter:clip-score` and flow on (reach the manifest, skipped by assign,
 * dedup and decide).
 *
 * - `min: t` keeps `score ≥ t` (DataComp's `--threshold`).
 * - `top: f` keeps the top fraction f by the reference rule (`n = int(N·f)`, `t = sorted_desc[n]`,
 *   keep `score ≥ t`). Exact mode computes t over the whole pool first and passes it as `min`;
 *   here, streaming, t is a running estimate: the first `warmup` rows are held and decided with the
 *   threshold of their own sample, later rows with the threshold of a reservoir of every score seen
 *   (see {@link RunningTopThreshold}).
 */
import { Transform } from 'node:stream';
import { RunningTopThreshold } from '../core/datacomp-filters.js';
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { integerOption, numberOption } from '../core/validate.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch, type RowError } from '../core/sample.js';

/** Options of {@link clipScoreFilter}: exactly one of `min` (keep score ≥ min) or `top` (keep the top fraction, in (0, 1]); `warmup` rows (default 10,000; ≥ 1). */
export interface ClipScoreFilterOptions {
  /** Keep `score ≥ min`. */
  min?: number;
  /** Keep the top fraction (streaming estimate of the reference rule), in (0, 1]. */
  top?: number;
  /** Streaming `top`: rows held back to calibrate the first threshold. Default 10,000 (≥ 1). */
  warmup?: number;
  /** Streaming `top`: reservoir size. Default 100,000. */
  reservoir?: number;
  seed?: number;
  signal?: AbortSignal;
}

export type ClipScoreFilterStream = Transform & { readonly dropped: number; readonly threshold: number; readonly seen: number };

/** Marks rows of one batch whose score is below `threshold` (NaN fails). Returns rows newly marked. */
export function markClipScore(scores: Float64Array | undefined, n: number, errors: (RowError | undefined)[], threshold: number): number {
  if (!scores) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, 'the CLIP-score filter needs a score per row (a score column, or embeddings to compute it from)');
  let marked = 0;
  for (let i = 0; i < n; i++) {
    if (errors[i]) continue;
    const s = scores[i];
    if (!(s >= threshold)) {
      errors[i] = { reason: 'filter:clip-score', message: Number.isNaN(s) ? "CLIP score missing" : `CLIP score below ${threshold}` };
      marked++;
    }
  }
  return marked;
}

/**
 * DataComp's CLIP-score filter as a stage: rows below the threshold are marked `filter:clip-score` and flow on.
 * Throws ERR_DBPRUNE_INVALID_OPTION unless exactly one of `min` and `top` is given.
 */
export function clipScoreFilter(opts: ClipScoreFilterOptions): ClipScoreFilterStream {
  const hasMin = opts.min !== undefined;
  const hasTop = opts.top !== undefined;
  checkOption(hasMin !== hasTop, 'min/top', 'exactly one of min and top', { min: opts.min, top: opts.top });
  if (hasMin) numberOption(opts.min, 'min');
  const warmup = integerOption(opts.warmup, 'warmup', { default: 10_000, min: 1 });
  const running = hasTop ? new RunningTopThreshold(opts.top as number, { capacity: opts.reservoir, seed: opts.seed }) : undefined;
  let dropped = 0;
  let seen = 0;
  let held: EmbeddingBatch[] = [];
  let heldRows = 0;
  const mark = (b: EmbeddingBatch, t: number): void => {
    const n = b.rows.length;
    const errors = b.errors ?? new Array<RowError | undefined>(n).fill(undefined);
    const m = markClipScore(b.fields?.clip_score, n, errors, t);
    dropped += m;
    if (m > 0) b.errors = errors;
  };
  const releaseHeld = (push: (b: EmbeddingBatch) => void): void => {
    const t = (running as RunningTopThreshold).update();
    for (const b of held) {
      mark(b, t);
      push(b);
    }
    held = [];
  };
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      try {
        throwIfAborted(opts.signal);
        seen += batch.rows.length;
        if (!running) {
          mark(batch, opts.min as number);
          cb(null, batch);
          return;
        }
        const scores = batch.fields?.clip_score;
        if (!scores) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, 'the CLIP-score filter needs a score per row (a score column, or embeddings to compute it from)');
        running.observe(scores.subarray(0, batch.rows.length));
        if (heldRows < warmup) {
          held.push(batch);
          heldRows += batch.rows.length;
          if (heldRows >= warmup) releaseHeld((b) => this.push(b));
          cb();
          return;
        }
        mark(batch, running.threshold);
        cb(null, batch);
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      if (held.length > 0) releaseHeld((b) => this.push(b));
      cb();
    },
  });
  Object.defineProperties(stream, {
    dropped: { get: () => dropped },
    seen: { get: () => seen },
    threshold: { get: () => (running ? running.threshold : (opts.min as number)) },
  });
  return stream as ClipScoreFilterStream;
}
