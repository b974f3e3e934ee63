/**
 * `clipScore()`: image–text alignment from images. For each row of an {@link EmbeddingBatch} that
 * came out of `embed` (image tower), encodes its caption (`.txt` sidecar or metadata) with a text
 * tower (see io/text-encoder.ts) and writes cosine(image_embeds, text_embeds) to
 * `fields.clip_score`; rows with an error or no caption get NaN (a following `clipScoreFilter`
 * drops them as `CLIP score missing`). The image and text towers must come from the same CLIP
 * export (same embedding space and width).
 *
 *   … → decode → embed (onnx/vision_model.onnx) → clipScore (onnx/text_model.onnx) → clipScoreFilter → assign …
 */
import { Transform } from 'node:stream';
import { cosineRows } from '../core/datacomp-filters.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch } from '../core/sample.js';
import { loadTextEncoder, type TextEncoder } from '../io/text-encoder.js';

/** Options of {@link clipScore}: the text tower (folder or a loaded encoder), captions per call (default 64; 1..4096), threads and a signal. */
export interface ClipScoreOptions {
  /** Text tower folder (transformers.js/optimum layout), or a loaded encoder (not closed by the stage). */
  textModel: string | TextEncoder;
  /** Captions per text-model call. Default 64, 1..4096. */
  batchSize?: number;
  threads?: number;
  signal?: AbortSignal;
}

/**
 * Writes cosine(image embedding, caption embedding) to `fields.clip_score` for each row of an EmbeddingBatch; rows without a caption get NaN.
 * A text tower of another width throws ERR_DBPRUNE_DIM_MISMATCH.
 */
export function clipScore(opts: ClipScoreOptions): Transform {
  const batchSize = integerOption(opts.batchSize, 'batchSize', { default: 64, min: 1, max: 4096 });
  let encoder: Promise<TextEncoder> | undefined;
  const owned = typeof opts.textModel === 'string';
  const get = (): Promise<TextEncoder> => (encoder ??= typeof opts.textModel === 'string' ? loadTextEncoder(opts.textModel, { threads: opts.threads }) : Promise.resolve(opts.textModel));
  const score = async (b: EmbeddingBatch): Promise<EmbeddingBatch> => {
    throwIfAborted(opts.signal);
    const enc = await get();
    const n = b.rows.length;
    if (enc.dim !== b.dim) {
      throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `text model width ${enc.dim} differs from the image embedding width ${b.dim}: use both towers of one CLIP export`, { expected: b.dim, got: enc.dim });
    }
    const out = new Float64Array(n).fill(NaN);
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (!b.errors?.[i] && typeof b.rows[i].caption === 'string' && (b.rows[i].caption as string).length > 0) rows.push(i);
    for (let s = 0; s < rows.length; s += batchSize) {
      const part = rows.slice(s, s + batchSize);
      const txt = await enc.encode(part.map((i) => b.rows[i].caption as string));
      const img = new Float32Array(part.length * b.dim);
      part.forEach((r, j) => img.set(b.embeddings.subarray(r * b.dim, (r + 1) * b.dim), j * b.dim));
      const cos = cosineRows(img, txt, part.length, b.dim);
      part.forEach((r, j) => (out[r] = cos[j]));
    }
    b.fields = { ...b.fields, clip_score: out };
    return b;
  };
  return new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      score(batch).then((b) => cb(null, b), cb);
    },
    flush(cb) {
      if (owned && encoder) encoder.then((e) => e.close()).then(() => cb(), cb);
      else cb();
    },
  });
}
