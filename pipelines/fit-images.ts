/**
 * `dbprune fit <shards…> --model M`: centroids + calibration straight from images, without a
 * separate embed pass over everything:
 *
 *   shards (or URL list) → choose a uniform sample (reservoir) → decode → embed → k-means + calibration
 *
 * The sample is drawn BEFORE decoding: sample i of the stream takes reservoir slot i while the
 * reservoir fills, then slot j = uniform(0..i) when j < capacity (Vitter's Algorithm R), else it is
 * skipped without being decoded or embedded. Only ≈ capacity·(1 + ln(N / capacity)) samples are
 * embedded for a stream of N, and memory is capacity × d floats. Decode and embed keep order, so the
 * slots are applied in stream order and the final reservoir is Algorithm R's. A chosen sample that
 * fails (decode/download error) leaves its slot as it was (empty while filling): failures are counted
 * and left out, like fit's NaN rows.
 */
import { Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { throwIfAborted, UsageError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import type { EmbeddingBatch } from '../src/core/sample.js';
import { resolveModel } from '../src/io/model-config.js';
import { checkGivenDim, fitSample, readGivenCentroids, resolveFitOptions, type FitOptions, type FitResult } from './fit.js';
import type { ImageEncoderOptions } from './decision-tail.js';
import { decodeEmbedStages, imageSampleStages, type ImageInputOptions } from './images-to-embeddings.js';

/** Options of {@link fitFromImages}: fit's options with images (shards or URL lists) and an image encoder instead of embeddings. */
export interface FitFromImagesOptions extends Omit<FitOptions, 'embeddings'>, ImageInputOptions, ImageEncoderOptions {}

/** What {@link fitFromImages} returns: fit's result plus how many samples were seen, embedded and failed. */
export interface FitFromImagesResult extends FitResult {
  /** Samples in the input stream. */
  samplesSeen: number;
  /** Samples decoded and embedded (chosen into the reservoir at some point). */
  embedded: number;
  /** Chosen samples that failed (decode/download/untar errors). */
  failed: number;
}

/**
 * Fits centroids and calibration on a uniform sample of the images (`sample`, default 100,000).
 * Options as {@link FitOptions} (minus `embeddings`) plus the input and encoder. Errors: those of
 * `fit`, the model/input codes of the stages, ERR_DBPRUNE_USAGE when no sample could be embedded.
 */
export async function fitFromImages(opts: FitFromImagesOptions): Promise<FitFromImagesResult> {
  const t0 = Date.now();
  const { signal } = opts;
  const log = opts.log ?? (() => {});
  const r = resolveFitOptions(opts);
  const given = await readGivenCentroids(opts.centroids, signal);
  const model = await resolveModel(opts.model);
  throwIfAborted(signal);

  const capacity = r.sample;
  const rng = new Rng(r.seed);
  let seen = 0;
  let embedded = 0;
  let failed = 0;
  const slots: number[] = [];
  const choose = new Transform({
    objectMode: true,
    transform(chunk: unknown, _e, cb) {
      const i = seen++;
      const slot = i < capacity ? i : rng.int(i + 1);
      if (slot >= capacity) return cb();
      slots.push(slot);
      cb(null, chunk);
    },
  });

  let dim = 0;
  let data: Float32Array | undefined;
  let filled: Uint8Array | undefined;
  const sink = new Writable({
    objectMode: true,
    write(b: EmbeddingBatch, _enc, cb) {
      if (!data) {
        dim = b.dim;
        data = new Float32Array(Math.min(capacity, 1024) * dim);
        filled = new Uint8Array(data.length / dim);
        log(`fit: embedding a uniform sample of up to ${capacity} images (${dim}-d, seed ${r.seed})`);
      }
      for (let i = 0; i < b.rows.length; i++) {
        const slot = slots.shift() as number;
        if (slot * dim >= data.length) {
          // Grow (doubling, up to capacity rows): memory follows the sample actually drawn.
          const rows = Math.min(capacity, Math.max(slot + 1, (2 * data.length) / dim));
          const grown = new Float32Array(rows * dim);
          grown.set(data);
          data = grown;
          const f = new Uint8Array(rows);
          f.set(filled as Uint8Array);
          filled = f;
        }
        const row = b.embeddings.subarray(i * dim, (i + 1) * dim);
        let s = 0;
        for (let t = 0; t < dim; t++) s += row[t] * row[t];
        if (b.errors?.[i] || !Number.isFinite(s) || s === 0) {
          failed++;
          continue;
        }
        data.set(row, slot * dim);
        (filled as Uint8Array)[slot] = 1;
        embedded++;
      }
      cb();
    },
  });

  await pipeline(
    [
      ...imageSampleStages(opts, choose, signal),
      ...decodeEmbedStages(model, opts, signal),
      sink,
    ] as (NodeJS.ReadableStream | Duplex | Writable)[],
    { signal },
  );
  if (!data || !filled) throw new UsageError('no samples in the input to fit on');
  checkGivenDim(given, opts.centroids, dim);
  // Compact the filled slots (order of slots, so the result is deterministic).
  let n = 0;
  for (let j = 0; j < Math.min(filled.length, seen); j++) {
    if (!filled[j]) continue;
    if (n !== j) data.copyWithin(n * dim, j * dim, (j + 1) * dim);
    n++;
  }
  log(`fit: ${seen} samples in the stream, ${embedded} embedded, ${failed} failed, sample of ${n}`);
  if (r.k > n && given === undefined) throw new UsageError(`-k ${r.k} is larger than the ${n} images embedded for the sample`, { k: r.k, sampleSize: n });
  const result = await fitSample({ data, n, dim, valid: Math.max(n, seen - failed), skipped: failed, rowsRead: seen }, given, r, opts, t0);
  return { ...result, samplesSeen: seen, embedded, failed };
}
