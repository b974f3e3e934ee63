/**
 * Builds data-samples/openclipart/model/ — a real pretrained image encoder in the transformers.js /
 * optimum layout (`onnx/vision_model.onnx` + `preprocessor_config.json`):
 *
 *   npx tsx scripts/make-real-model.ts [--nsfwjs <unpacked package dir>] [--out <dir>] [--float]
 *
 * Source: the npm package `nsfwjs@4.4.0` (MIT), fetched with `npm pack` (which does not pull its
 * TensorFlow.js dependency) unless `--nsfwjs` points at an unpacked copy. Its
 * `dist/models/mobilenet_v2/` holds Keras MobileNetV2 (224 px) as a tfjs layers model (topology +
 * uint8-quantised weights, base64, wrapped in UMD `.min.js` files). Layers up to `block_10` are
 * unchanged ImageNet weights; later ones were fine-tuned by nsfwjs. We convert everything up to
 * `out_relu` and global-average-pool it: 1280-d general image features (scripts/keras-to-onnx.ts).
 * Weights stay uint8 with DequantizeLinear (≈ 2.3 MB; `--float` writes ≈ 9 MB of float weights).
 *
 * Preprocessing (nsfwjs's own): RGB, resized to 224×224 without cropping (bilinear), x/255, no
 * mean/std — written as `do_center_crop: false`, `resample: 2`, `rescale_factor: 1/255`,
 * `do_normalize: false`, which src/io/model-config.ts reads as mode `squash`, kernel `linear`.
 *
 * Checked against TensorFlow.js running the original layers model (scripts/verify-real-model.mjs,
 * a dev-only check; @tensorflow/tfjs is not a project dependency) on the same float input tensors
 * (4 random, 4 openclipart drawings), 2026-11-27, tfjs 4.22.0 vs onnxruntime-node 1.30.0: max abs
 * error 9.5e-6 on features up to 4.5, min cosine 1.0000000 (uint8 graph; float graph: 8.3e-6).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeTfjsWeights, kerasMobileNetToOnnx, type KerasLayer, type TfjsWeightSpec } from './keras-to-onnx.js';

export const NSFWJS_SPEC = 'nsfwjs@4.4.0';
export const REAL_MODEL_SIZE = 224;

/** `npm pack` + extract into a temp folder; returns the unpacked package dir (caller removes `root`). */
export function fetchNsfwjs(): { dir: string; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'dbprune-nsfwjs-'));
  execFileSync('npm', ['pack', NSFWJS_SPEC, '--pack-destination', root, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tgz = readdirSync(root).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack ${NSFWJS_SPEC} produced no tarball`);
  execFileSync('tar', ['xzf', join(root, tgz), '-C', root]);
  return { dir: join(root, 'package'), root };
}

/** Loads the MobileNetV2 topology, weight specs and weight bytes from an unpacked nsfwjs. */
export function loadNsfwjsMobileNet(pkgDir: string): { layers: KerasLayer[]; specs: TfjsWeightSpec[]; weightBytes: Uint8Array; topology: unknown } {
  const req = createRequire(join(resolve(pkgDir), 'dist', 'models', 'mobilenet_v2', 'x.js'));
  const model = req('./model.min.js') as {
    modelTopology: { model_config: { config: { layers: KerasLayer[] } } };
    weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
  };
  const b64 = req('./group1-shard1of1.min.js') as string;
  if (typeof b64 !== 'string') throw new Error('group1-shard1of1.min.js did not export a base64 string');
  if (model.weightsManifest.length !== 1 || model.weightsManifest[0].paths.length !== 1) throw new Error('expected one weight group with one shard');
  return {
    layers: model.modelTopology.model_config.config.layers,
    specs: model.weightsManifest[0].weights,
    weightBytes: new Uint8Array(Buffer.from(b64, 'base64')),
    topology: model.modelTopology,
  };
}

/** The preprocessor config of the converted model (nsfwjs's preprocessing). */
export function realPreprocessorConfig(): Record<string, unknown> {
  return {
    do_center_crop: false,
    do_convert_rgb: true,
    do_normalize: false,
    do_rescale: true,
    do_resize: true,
    image_processor_type: 'MobileNetV2ImageProcessor',
    resample: 2,
    rescale_factor: 1 / 255,
    size: { height: REAL_MODEL_SIZE, width: REAL_MODEL_SIZE },
    _source: `${NSFWJS_SPEC} dist/models/mobilenet_v2, converted by scripts/make-real-model.ts (features of out_relu, global-average-pooled)`,
  };
}

/** Converts and writes `<out>/onnx/vision_model.onnx` + `<out>/preprocessor_config.json`. */
export function writeRealModel(pkgDir: string, out: string, quantized = true): { onnxPath: string; bytes: number; dim: number } {
  const m = loadNsfwjsMobileNet(pkgDir);
  const weights = decodeTfjsWeights(m.specs, m.weightBytes);
  const { bytes, dim } = kerasMobileNetToOnnx(m.layers, weights, { size: REAL_MODEL_SIZE, quantized });
  mkdirSync(join(out, 'onnx'), { recursive: true });
  const onnxPath = join(out, 'onnx', 'vision_model.onnx');
  writeFileSync(onnxPath, bytes);
  writeFileSync(join(out, 'preprocessor_config.json'), JSON.stringify(realPreprocessorConfig(), null, 2) + '\n');
  return { onnxPath, bytes: bytes.length, dim };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { nsfwjs: { type: 'string' }, out: { type: 'string' }, float: { type: 'boolean' } } });
  const out = values.out ?? join(import.meta.dirname, '..', 'data-samples', 'openclipart', 'model');
  const fetched = values.nsfwjs ? undefined : fetchNsfwjs();
  try {
    const r = writeRealModel(values.nsfwjs ?? (fetched as { dir: string }).dir, out, !values.float);
    console.error(`wrote ${r.onnxPath} (${(r.bytes / 1e6).toFixed(2)} MB, ${r.dim}-d features)`);
  } finally {
    if (fetched) rmSync(fetched.root, { recursive: true, force: true });
  }
}
