/**
 * `decode`: image bytes → the model's normalised C×H×W float32 input tensor (sharp/libvips).
 */
import type { Duplex } from 'node:stream';
import { generatorStage } from './generator-stage.js';
import { loadSharp, type Sharp } from '../io/sharp.js';
import { checkOption, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { choiceOption, integerOption, numberListOption, numberOption } from '../core/validate.js';
import { sampleRef, type DecodedSample, type ImageSample, type RowError } from '../core/sample.js';
import { DEFAULT_PREPROCESSING, IMAGE_SIZE, RESIZE_KERNELS, RESIZE_MODES, type ResizeKernel, type ResizeMode } from '../io/model-config.js';

/** Options of {@link decode}: output side (default 224; 1..8192), resize mode (default shortest-center-crop), mean/std (default CLIP's), concurrency and a signal. */
export interface DecodeOptions {
  /** Output side in pixels (square). Default 224, 1..8192. */
  size?: number;
  /** `shortest-center-crop` (default; resize the shorter side to `size`, crop the centre — CLIP)
   *  or `squash` (resize to size×size ignoring aspect ratio). */
  mode?: ResizeMode;
  /** Per-channel RGB mean after rescaling to [0, 1]. Default CLIP's. */
  mean?: readonly number[];
  /** Per-channel RGB std. Default CLIP's; no zeros. */
  std?: readonly number[];
  /** Resampling kernel. Default `cubic` (PIL bicubic). */
  kernel?: ResizeKernel;
  /** Factor on 0..255 values before normalising. Default 1/255, > 0. */
  rescaleFactor?: number;
  /** Largest input width×height decoded (sharp `limitInputPixels`). Default 50e6, 1..1e10. */
  maxPixels?: number;
  /** Images decoded at once. Default 2, 1..64. Output order is input order regardless. */
  concurrency?: number;
  /** RGB 0..255 that transparent pixels are composited onto (like img2dataset, which stores
   *  fully transparent pixels as white). Default [255, 255, 255]. */
  background?: readonly number[];
  /** Side of an optional JPEG thumbnail (cropped like the tensor) in `thumbnail`. Default off, 8..512. */
  thumbnail?: number;
  /** Decode nothing before this settles, e.g. the `ready` of the embed stage, which checks `size`
   *  against the model's input shape (a wrong size must not decode gigabytes first). A rejection
   *  only stops this stage quietly: whoever owns the promise reports it. Default none. */
  startAfter?: Promise<unknown>;
  signal?: AbortSignal;
}

interface Resolved {
  size: number;
  mode: ResizeMode;
  kernel: ResizeKernel;
  maxPixels: number;
  thumbnail: number | undefined;
  background: { r: number; g: number; b: number };
  /** Per channel, the normalised value of each 0..255 input: `lut[c·256 + v] = v·scale_c + offset_c`. */
  lut: Float32Array;
}

function resolve(o: DecodeOptions): Resolved {
  const size = integerOption(o.size, 'size', { default: DEFAULT_PREPROCESSING.size, ...IMAGE_SIZE });
  const mode = choiceOption(o.mode, 'mode', RESIZE_MODES, DEFAULT_PREPROCESSING.mode);
  const kernel = choiceOption(o.kernel, 'kernel', RESIZE_KERNELS, DEFAULT_PREPROCESSING.kernel);
  const mean = numberListOption(o.mean, 'mean', 3, 'number', { default: DEFAULT_PREPROCESSING.mean });
  const std = numberListOption(o.std, 'std', 3, 'number', { default: DEFAULT_PREPROCESSING.std });
  checkOption(std.every((x) => x !== 0), 'std', '3 finite non-zero numbers', std);
  const rescale = numberOption(o.rescaleFactor, 'rescaleFactor', { default: DEFAULT_PREPROCESSING.rescaleFactor, min: 0, exclusiveMin: true });
  const maxPixels = integerOption(o.maxPixels, 'maxPixels', { default: 50e6, min: 1, max: 1e10 });
  const thumbnail = o.thumbnail === undefined ? undefined : integerOption(o.thumbnail, 'thumbnail', { min: 8, max: 512 });
  const bg = numberListOption(o.background, 'background', 3, 'integer', { default: [255, 255, 255], min: 0, max: 255 });
  const background = { r: bg[0], g: bg[1], b: bg[2] };
  const scale = new Float32Array(3);
  const offset = new Float32Array(3);
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    scale[c] = rescale / std[c];
    offset[c] = -mean[c] / std[c];
    // the same float32 values as computing v·scale + offset per pixel (same expression, rounded once)
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = v * scale[c] + offset[c];
  }
  return { size, mode, kernel, maxPixels, thumbnail, background, lut };
}

/** Interleaved 0..255 pixels (`ch` channels; grey → RGB) → normalised C×H×W float32, in one pass through a lookup table. */
function toPlanes(data: Buffer, hw: number, ch: number, lut: Float32Array): Float32Array {
  const px = new Float32Array(3 * hw);
  const g = ch >= 3 ? 1 : 0;
  const b = ch >= 3 ? 2 : 0;
  for (let i = 0, j = 0; i < hw; i++, j += ch) {
    px[i] = lut[data[j]];
    px[hw + i] = lut[256 + data[j + g]];
    px[2 * hw + i] = lut[512 + data[j + b]];
  }
  return px;
}

/**
 * RGB `side`×`side` area average of the `size`×`size` `ch`-channel image `data` (grey → RGB), for
 * the report thumbnail. Hand-written rather than a sharp resize: the thumbnail (~40 px, shown
 * small) needs no better filter, and sharp's lanczos3 resize of the 224 px image cost ~0.7 ms of
 * CPU per image more than this (measured on the bundled drawings), about 4% of `run`'s CPU.
 */
function boxShrink(data: Buffer, size: number, ch: number, side: number): Buffer {
  const out = Buffer.alloc(side * side * 3);
  // source rows/columns [floor(i·size/side), floor((i+1)·size/side)), at least one (when enlarging)
  const bounds = (i: number): number => Math.min(size - 1, Math.floor((i * size) / side));
  for (let ty = 0; ty < side; ty++) {
    const y0 = bounds(ty);
    const y1 = Math.max(y0 + 1, Math.floor(((ty + 1) * size) / side));
    for (let tx = 0; tx < side; tx++) {
      const x0 = bounds(tx);
      const x1 = Math.max(x0 + 1, Math.floor(((tx + 1) * size) / side));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0, j = (y * size + x0) * ch; x < x1; x++, j += ch) {
          r += data[j];
          g += data[ch >= 3 ? j + 1 : j];
          b += data[ch >= 3 ? j + 2 : j];
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (ty * side + tx) * 3;
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(b / n);
    }
  }
  return out;
}

async function decodeOne(s: ImageSample, r: Resolved, sharp: Sharp): Promise<DecodedSample> {
  const out: DecodedSample = sampleRef(s);
  if (s.error) {
    out.error = s.error;
    return out;
  }
  if (!s.image || s.image.length === 0) {
    out.error = { reason: 'error:decode', message: `sample ${s.key} has no image bytes`, code: ErrorCodes.DECODE };
    return out;
  }
  try {
    const { data, info } = await sharp(s.image, { limitInputPixels: r.maxPixels })
      .flatten({ background: r.background })
      .toColourspace('srgb')
      .resize(r.size, r.size, { fit: r.mode === 'squash' ? 'fill' : 'cover', position: 'centre', kernel: r.kernel })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const hw = r.size * r.size;
    const ch = info.channels;
    if (info.width !== r.size || info.height !== r.size || data.length < hw * ch) {
      throw new Error(`unexpected decoder output ${info.width}×${info.height}×${ch}`);
    }
    out.pixels = toPlanes(data, hw, ch, r.lut);
    if (r.thumbnail !== undefined) {
      const t = r.thumbnail;
      out.thumbnail = await sharp(boxShrink(data, r.size, ch, t), { raw: { width: t, height: t, channels: 3 } })
        .jpeg({ quality: 75 })
        .toBuffer();
    }
    return out;
  } catch (e) {
    out.error = await decodeError(s, e, r, sharp);
    return out;
  }
}

async function decodeError(s: ImageSample, e: unknown, r: Resolved, sharp: Sharp): Promise<RowError> {
  const msg = (e as Error)?.message ?? String(e);
  const where = `${s.key}${s.shard ? ` (shard ${s.shard})` : ''}`;
  if (/pixel limit/i.test(msg)) {
    let dims = '';
    try {
      const m = await sharp(s.image, { limitInputPixels: false }).metadata();
      if (m.width && m.height) dims = ` ${m.width}×${m.height} = ${m.width * m.height} pixels,`;
    } catch {
      // header unreadable: keep the short message
    }
    return { reason: 'error:decode', message: `image ${where} is too large:${dims} above maxPixels ${r.maxPixels}`, code: ErrorCodes.DECODE };
  }
  return { reason: 'error:decode', message: `cannot decode image ${where}${s.imageExt ? ` (.${s.imageExt})` : ''}: ${msg}`, code: ErrorCodes.DECODE };
}

/**
 * Stage: consumes {@link ImageSample}s, emits one {@link DecodedSample} per sample, in input order.
 *
 * Each image is decoded with sharp, transparency composited onto `background` (white), converted to sRGB,
 * resized to `size`×`size` (`mode`), then normalised per channel, `(v · rescaleFactor − mean) / std`,
 * into `pixels` (C×H×W float32, RGB). Options and defaults: see {@link DecodeOptions}; they are
 * validated here (`ERR_DBPRUNE_INVALID_OPTION`). Preprocessing of a transformers.js model dir:
 * `resolveModel(dir).preprocessing` from `../io/model-config.js`.
 *
 * Per-sample failures become rows, never stage errors: an input row that already has an error
 * passes through with it; a corrupt or unsupported image, or one above `maxPixels` (message gives
 * its size and the limit), gets `error:decode` (code `ERR_DBPRUNE_DECODE`).
 * The stage fails only with `ERR_DBPRUNE_ABORTED` on `signal`.
 */
export function decode(opts: DecodeOptions = {}): Duplex {
  const r = resolve(opts);
  const concurrency = integerOption(opts.concurrency, 'concurrency', { default: 2, min: 1, max: 64 });
  const { signal, startAfter } = opts;
  return generatorStage(async function* (source: AsyncIterable<ImageSample>): AsyncGenerator<DecodedSample> {
    if (startAfter && !(await startAfter.then(() => true, () => false))) return;
    const sharp = await loadSharp();
    // Up to `concurrency` decodes in flight, emitted in input order. A finished head is emitted
    // as soon as it is ready, without waiting for more input: a continuous stream that pauses
    // must not hold its last samples back.
    const inflight: Promise<DecodedSample>[] = [];
    const input = source[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<ImageSample>> | undefined;
    let ended = false;
    try {
      for (;;) {
        throwIfAborted(signal);
        if (ended || inflight.length >= concurrency) {
          if (inflight.length === 0) return;
          yield await (inflight.shift() as Promise<DecodedSample>);
          continue;
        }
        next ??= input.next();
        const first = inflight.length === 0 ? await next.then((r) => ({ r })) : await Promise.race([next.then((r) => ({ r })), inflight[0].then(() => ({ r: undefined }))]);
        if (first.r === undefined) {
          yield await (inflight.shift() as Promise<DecodedSample>);
          continue;
        }
        next = undefined;
        if (first.r.done) ended = true;
        else inflight.push(decodeOne(first.r.value, r, sharp));
      }
    } finally {
      // decodeOne never rejects; nothing to clean up beyond dropping the references.
      inflight.length = 0;
      if (!ended) await input.return?.();
    }
  });
}
