/**
 * Locating an ONNX vision encoder and reading its preprocessing from a transformers.js / optimum
 * `preprocessor_config.json` (the layout `onnx/vision_model.onnx` + `preprocessor_config.json`).
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { describeRange, inRange, type NumberRange } from '../core/validate.js';
import { joinLocation as join, parentLocation as dirname, readLocation, statLocation } from './storage/index.js';

/** Resize modes of the `decode` stage. */
export const RESIZE_MODES = ['shortest-center-crop', 'squash'] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];
/** sharp resampling kernels. */
export const RESIZE_KERNELS = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'] as const;
export type ResizeKernel = (typeof RESIZE_KERNELS)[number];
/** The model input side (pixels, square) the `decode` stage and model configs accept. */
export const IMAGE_SIZE: NumberRange = { min: 1, max: 8192 };

/** Preprocessing as the `decode` stage takes it. */
export interface Preprocessing {
  /** Output side, pixels (square). */
  size: number;
  mode: ResizeMode;
  /** Per-channel RGB mean, applied after rescaling to [0, 1]. */
  mean: [number, number, number];
  std: [number, number, number];
  kernel: ResizeKernel;
  /** Multiplies raw 0..255 values before normalising. Default 1/255. */
  rescaleFactor: number;
}

/** CLIP's (OpenAI) normalisation constants. */
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Default preprocessing: CLIP ViT-B/32 (224, shortest side + centre crop, bicubic). */
export const DEFAULT_PREPROCESSING: Preprocessing = {
  size: 224,
  mode: 'shortest-center-crop',
  mean: CLIP_MEAN,
  std: CLIP_STD,
  kernel: 'cubic',
  rescaleFactor: 1 / 255,
};

/** PIL resample codes as written in preprocessor configs → sharp kernels. */
const PIL_RESAMPLE: Record<number, ResizeKernel> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic', 4: 'linear', 5: 'cubic' };

function triple(v: unknown, what: string, file: string): [number, number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  const arr = typeof v === 'number' ? [v, v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 3 || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new DbpruneError(ErrorCodes.MODEL, `${file}: ${what} must be a number or 3 numbers, got ${JSON.stringify(v)}`, { file });
  }
  return [arr[0], arr[1], arr[2]];
}

function side(v: unknown, file: string, what: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.shortest_edge === 'number') return o.shortest_edge;
    if (typeof o.height === 'number' && typeof o.width === 'number') {
      if (o.height !== o.width) {
        throw new DbpruneError(ErrorCodes.MODEL, `${file}: non-square ${what} ${o.height}×${o.width} is not supported`, { file });
      }
      return o.height;
    }
  }
  throw new DbpruneError(ErrorCodes.MODEL, `${file}: cannot read ${what} ${JSON.stringify(v)}`, { file });
}

/**
 * Maps a parsed `preprocessor_config.json` to {@link Preprocessing}: `crop_size` (when
 * `do_center_crop` is not false) else `size` (number, `{shortest_edge}` or square `{height,width}`);
 * `do_center_crop: false` → mode `squash`; `image_mean`/`image_std` (identity when `do_normalize`
 * is false); `resample` (PIL code) → kernel; `rescale_factor` (1 when `do_rescale` is false).
 * Missing fields take {@link DEFAULT_PREPROCESSING}'s values.
 *
 * @throws ERR_DBPRUNE_MODEL for malformed fields or non-square sizes.
 */
export function preprocessingFromConfig(cfg: Record<string, unknown>, file = 'preprocessor_config.json'): Preprocessing {
  const crop = cfg.do_center_crop !== false;
  const cropSide = crop ? side(cfg.crop_size, file, 'crop_size') : undefined;
  const size = cropSide ?? side(cfg.size, file, 'size') ?? DEFAULT_PREPROCESSING.size;
  if (!inRange(size, 'integer', IMAGE_SIZE)) {
    throw new DbpruneError(ErrorCodes.MODEL, `${file}: image size ${String(size)} is not ${describeRange('integer', IMAGE_SIZE)}`, { file });
  }
  const normalize = cfg.do_normalize !== false;
  const mean = normalize ? (triple(cfg.image_mean, 'image_mean', file) ?? DEFAULT_PREPROCESSING.mean) : ([0, 0, 0] as [number, number, number]);
  const std = normalize ? (triple(cfg.image_std, 'image_std', file) ?? DEFAULT_PREPROCESSING.std) : ([1, 1, 1] as [number, number, number]);
  if (std.some((s) => s === 0)) throw new DbpruneError(ErrorCodes.MODEL, `${file}: image_std has a zero`, { file });
  const kernel = typeof cfg.resample === 'number' ? (PIL_RESAMPLE[cfg.resample] ?? DEFAULT_PREPROCESSING.kernel) : DEFAULT_PREPROCESSING.kernel;
  const rescaleFactor = cfg.do_rescale === false ? 1 : typeof cfg.rescale_factor === 'number' ? cfg.rescale_factor : DEFAULT_PREPROCESSING.rescaleFactor;
  return { size, mode: crop ? 'shortest-center-crop' : 'squash', mean, std, kernel, rescaleFactor };
}

/** Where a model lives: the .onnx file and, when found, its preprocessor config. */
export interface ModelLocation {
  onnxPath: string;
  /** Path of `preprocessor_config.json`, when one was found. */
  configPath?: string;
  /** Preprocessing read from it, when one was found. */
  preprocessing?: Preprocessing;
}

const ONNX_CANDIDATES = ['onnx/vision_model.onnx', 'vision_model.onnx', 'onnx/model.onnx', 'model.onnx'];

async function isFile(p: string): Promise<boolean> {
  try {
    return (await statLocation(p))?.kind === 'file';
  } catch {
    return false;
  }
}

/**
 * Resolves `model` (an `.onnx` file, or a directory holding `onnx/vision_model.onnx`,
 * `vision_model.onnx`, `onnx/model.onnx` or `model.onnx`, first found wins) and reads the
 * `preprocessor_config.json` in the model directory (for a file in `…/onnx/`, its parent too).
 *
 * @throws ERR_DBPRUNE_MODEL when no model file is found or the config is not valid JSON.
 */
export async function resolveModel(model: string): Promise<ModelLocation> {
  let onnxPath: string | undefined;
  const st = await statLocation(model);
  if (st === undefined) throw new DbpruneError(ErrorCodes.MODEL, `model ${model} does not exist`, { file: model });
  let dirs: string[];
  if (st.kind === 'directory') {
    for (const c of ONNX_CANDIDATES) {
      if (await isFile(join(model, c))) {
        onnxPath = join(model, c);
        break;
      }
    }
    if (!onnxPath) {
      throw new DbpruneError(ErrorCodes.MODEL, `no ONNX model in ${model} (looked for ${ONNX_CANDIDATES.join(', ')})`, { file: model });
    }
    dirs = [model];
  } else {
    onnxPath = model;
    const d = dirname(model);
    dirs = [d, dirname(d)];
  }
  for (const d of dirs) {
    const configPath = join(d, 'preprocessor_config.json');
    if (!(await isFile(configPath))) continue;
    let cfg: unknown;
    try {
      cfg = JSON.parse((await readLocation(configPath)).toString('utf8'));
    } catch (e) {
      throw new DbpruneError(ErrorCodes.MODEL, `${configPath} is not valid JSON: ${(e as Error).message}`, { file: configPath }, { cause: e });
    }
    if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) {
      throw new DbpruneError(ErrorCodes.MODEL, `${configPath} is not a JSON object`, { file: configPath });
    }
    return { onnxPath, configPath, preprocessing: preprocessingFromConfig(cfg as Record<string, unknown>, configPath) };
  }
  return { onnxPath };
}
