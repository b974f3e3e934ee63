/**
 * The embed stage's model: opening the ONNX session (on a worker thread, kernels/encoder-worker.ts,
 * or a caller's session), its session options, and the checks of its input/output against the
 * decode size (one warm-up row).
 */
import type { InferenceSession } from 'onnxruntime-node';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { checkDevice, deviceError, executionProviders, type Device } from '../io/devices.js';
import { resolveModel } from '../io/model-config.js';
import { isS3Uri, readLocation } from '../io/storage/index.js';
import { InThreadEncoder, WorkerEncoder, type EncoderSession, type EncoderSessionOptions } from '../kernels/encoder-worker.js';

/** What the model needs from the embed stage's options. */
export interface ModelRequest {
  model: string | InferenceSession;
  inputName?: string;
  outputName?: string;
  imageSize?: number;
}

/** Settings the model is opened with. */
export interface ModelSettings {
  threads: number;
  device: Device;
  rowsPerRun: number;
}

/** An opened, checked model. */
export interface ModelInfo {
  session: EncoderSession;
  /** Rows per session run (the stage's `rowsPerRun`). */
  rowsPerRun: number;
  inputName: string;
  outputName: string;
  height: number;
  width: number;
  /** Static batch dimension, or 0 when dynamic. */
  fixedBatch: number;
  dim: number;
}

/**
 * The image encoder's ORT session options (the model-only benchmark uses the same): `threads`
 * intra-op threads, no busy-waiting between runs (as the nearest-centroid sessions: decode and the
 * rest of the pipeline share the cores with ORT's pool, whose spinning threads otherwise steal
 * their time), full graph optimisation, the device's execution providers.
 */
export function encoderSessionOptions(threads: number, device: Device = { name: 'cpu', deviceId: 0 }): EncoderSessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: executionProviders(device),
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** Opens the model named by `o.model` on a worker thread (see kernels/encoder-worker.ts), or wraps a given session. */
async function openSession(o: ModelRequest, threads: number, device: Device): Promise<{ session: EncoderSession; configured?: number }> {
  if (typeof o.model !== 'string') return { session: new InThreadEncoder(o.model) };
  const loc = await resolveModel(o.model);
  await checkDevice(device);
  try {
    // ORT needs the whole model: an s3:// model is read into memory, a local one by path.
    const source = isS3Uri(loc.onnxPath) ? new Uint8Array(await readLocation(loc.onnxPath)) : loc.onnxPath;
    return { session: await WorkerEncoder.create(source, encoderSessionOptions(threads, device)), configured: loc.preprocessing?.size };
  } catch (e) {
    if (device.name !== 'cpu') throw deviceError(device, loc.onnxPath, e);
    throw new DbpruneError(ErrorCodes.MODEL, `cannot load ONNX model ${loc.onnxPath}: ${(e as Error).message}`, { file: loc.onnxPath }, { cause: e });
  }
}

/** Opens and checks the model; releases the session again when a check fails. */
export async function loadModel(o: ModelRequest, settings: ModelSettings): Promise<ModelInfo> {
  const { session, configured } = await openSession(o, settings.threads, settings.device);
  try {
    return { ...(await checkModel(o, session, configured)), rowsPerRun: settings.rowsPerRun };
  } catch (e) {
    await session.release();
    throw e;
  }
}

/** Picks the model's input/output, checks the input shape against `imageSize` and runs one warm-up row. */
async function checkModel(o: ModelRequest, session: EncoderSession, configured: number | undefined): Promise<Omit<ModelInfo, 'rowsPerRun'>> {
  const file = typeof o.model === 'string' ? o.model : undefined;
  const pick = (names: readonly string[], wanted: string | undefined, prefs: string[], what: string): string => {
    if (wanted !== undefined) {
      if (!names.includes(wanted)) {
        throw new DbpruneError(ErrorCodes.MODEL, `model has no ${what} ${wanted} (has ${names.join(', ')})`, { file });
      }
      return wanted;
    }
    return prefs.find((p) => names.includes(p)) ?? names[0];
  };
  const inputName = pick(session.inputNames, o.inputName, ['pixel_values'], 'input');
  const outputName = pick(session.outputNames, o.outputName, ['image_embeds', 'pooler_output'], 'output');
  const meta = session.inputs.find((i) => i.name === inputName);
  const shape = meta && meta.isTensor ? meta.shape : [];
  if (shape.length !== 0 && shape.length !== 4) {
    throw new DbpruneError(ErrorCodes.MODEL, `model input ${inputName} has rank ${shape.length}, expected 4 (N, 3, H, W)`, { file });
  }
  /** A fixed (positive numeric) dimension of the input shape, else undefined (symbolic or absent). */
  const fixedSide = (v: number | string | undefined): number | undefined => (typeof v === 'number' && v > 0 ? v : undefined);
  const [fixedH, fixedW] = [fixedSide(shape[2]), fixedSide(shape[3])];
  if (o.imageSize !== undefined && ((fixedH !== undefined && fixedH !== o.imageSize) || (fixedW !== undefined && fixedW !== o.imageSize))) {
    throw new DbpruneError(
      ErrorCodes.USAGE,
      `image size ${o.imageSize} (--image-size, or the model's preprocessor config) does not match the model input ${fixedH ?? 'any'}×${fixedW ?? 'any'} of ${file ?? 'the model'}; give --image-size ${fixedH ?? fixedW} or leave it out`,
      { file },
    );
  }
  const fallback = o.imageSize ?? configured ?? 224;
  const fixedBatch = fixedSide(shape[0]) ?? 0;
  const height = fixedH ?? fallback;
  const width = fixedW ?? fallback;
  const info: Omit<ModelInfo, 'rowsPerRun'> = { session, inputName, outputName, height, width, fixedBatch, dim: 0 };
  // One warm-up row: finds the embedding width and checks that the model runs at this size.
  const n = fixedBatch || 1;
  let t;
  try {
    t = await session.run(inputName, new Float32Array(n * 3 * height * width), [n, 3, height, width], outputName);
  } catch (e) {
    throw new DbpruneError(ErrorCodes.MODEL, `model does not run on [${n}, 3, ${height}, ${width}] input: ${(e as Error).message}`, { file }, { cause: e });
  }
  if (t.dims.length !== 2 && t.dims.length !== 3) {
    throw new DbpruneError(ErrorCodes.MODEL, `model output ${outputName} has dims [${t?.dims.join(', ')}], expected [N, D] or [N, T, D]`, { file });
  }
  info.dim = t.dims[t.dims.length - 1];
  return info;
}
