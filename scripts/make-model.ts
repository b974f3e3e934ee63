/**
 * Builds the tiny, deterministic ONNX image encoder shipped in data-samples/model/, laid out like a
 * transformers.js export: `onnx/vision_model.onnx` + `preprocessor_config.json`.
 *
 *   npx tsx scripts/make-model.ts [outDir]      (default data-samples/model)
 *
 * The graph (opset 13): `pixel_values` [N, 3, S, S] →
 *   colour layout: AveragePool (S/8)×(S/8) → [N, 3, 8, 8] → Flatten (192 features)
 *   texture: depthwise 3×3 Laplacian → Abs → AveragePool to 4×4 → Flatten (48 features)
 *   Concat → Gemm (seeded random, 240→128) → Tanh → Gemm (128→dim) → `image_embeds` [N, dim].
 * So colour, layout and texture statistics map to distinct directions: images of one concept
 * land close together, different concepts apart. Weights come from the seeded `Rng`, so the
 * bytes are identical on every run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { Rng } from '../src/core/rng.js';
import { CLIP_MEAN, CLIP_STD } from '../src/io/model-config.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

export interface TinyModelOptions {
  /** Input side S (multiple of 8). Default 32. */
  size?: number;
  /** Embedding width. Default 64. */
  dim?: number;
  /** Weight seed. Default 20240501. */
  seed?: number;
  /** `image_embeds` [N, dim] (default) or `last_hidden_state` [N, 2, dim] whose first token is the
   *  embedding (to exercise token-sequence outputs). */
  output?: 'image_embeds' | 'last_hidden_state';
  /** Batch dimension: symbolic (default) or a fixed number. */
  batch?: number;
}

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function int64Tensor(name: string, values: number[]): OnnxTypes.ITensorProto {
  return { name, dims: [values.length], dataType: INT64, int64Data: values };
}

function ints(name: string, v: number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
}

function int(name: string, v: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
}

function valueInfo(name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function randn(rng: Rng, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Returns the serialized ONNX model (deterministic bytes for given options). */
export function buildTinyVisionModel(opts: TinyModelOptions = {}): Uint8Array {
  const size = opts.size ?? 32;
  const dim = opts.dim ?? 64;
  const rng = new Rng(opts.seed ?? 20240501);
  if (size % 8 !== 0 || size < 8) throw new Error(`size must be a positive multiple of 8, got ${size}`);
  const pool = size / 8;
  const texPool = size / 4;
  const fColour = 3 * 8 * 8;
  const fTex = 3 * 4 * 4;
  const feat = fColour + fTex;
  const hidden = 128;

  const lap = new Float32Array(3 * 9);
  for (let c = 0; c < 3; c++) lap.set([0, -1, 0, -1, 4, -1, 0, -1, 0], c * 9);
  const w1 = randn(rng, feat * hidden, 1.5 / Math.sqrt(feat));
  const b1 = randn(rng, hidden, 0.1);
  const w2 = randn(rng, hidden * dim, 1 / Math.sqrt(hidden));

  const nodes: OnnxTypes.INodeProto[] = [
    { opType: 'AveragePool', input: ['pixel_values'], output: ['colour'], attribute: [ints('kernel_shape', [pool, pool]), ints('strides', [pool, pool])] },
    { opType: 'Flatten', input: ['colour'], output: ['colour_flat'], attribute: [int('axis', 1)] },
    {
      opType: 'Conv',
      input: ['pixel_values', 'laplacian'],
      output: ['edges'],
      attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), int('group', 3)],
    },
    { opType: 'Abs', input: ['edges'], output: ['edges_abs'] },
    { opType: 'AveragePool', input: ['edges_abs'], output: ['texture'], attribute: [ints('kernel_shape', [texPool, texPool]), ints('strides', [texPool, texPool])] },
    { opType: 'Flatten', input: ['texture'], output: ['texture_flat'], attribute: [int('axis', 1)] },
    { opType: 'Concat', input: ['colour_flat', 'texture_flat'], output: ['features'], attribute: [int('axis', 1)] },
    { opType: 'Gemm', input: ['features', 'w1', 'b1'], output: ['h_pre'] },
    { opType: 'Tanh', input: ['h_pre'], output: ['h'] },
  ];
  const initializer: OnnxTypes.ITensorProto[] = [
    floatTensor('laplacian', [3, 1, 3, 3], lap),
    floatTensor('w1', [feat, hidden], w1),
    floatTensor('b1', [hidden], b1),
    floatTensor('w2', [hidden, dim], w2),
  ];
  const batch: number | string = opts.batch ?? 'batch';
  let outputs: OnnxTypes.IValueInfoProto[];
  if ((opts.output ?? 'image_embeds') === 'image_embeds') {
    nodes.push({ opType: 'MatMul', input: ['h', 'w2'], output: ['image_embeds'] });
    outputs = [valueInfo('image_embeds', [batch, dim])];
  } else {
    nodes.push(
      { opType: 'MatMul', input: ['h', 'w2'], output: ['cls'] },
      { opType: 'Neg', input: ['cls'], output: ['other'] },
      { opType: 'Unsqueeze', input: ['cls', 'axes1'], output: ['cls3'] },
      { opType: 'Unsqueeze', input: ['other', 'axes1'], output: ['other3'] },
      { opType: 'Concat', input: ['cls3', 'other3'], output: ['last_hidden_state'], attribute: [int('axis', 1)] },
    );
    initializer.push(int64Tensor('axes1', [1]));
    outputs = [valueInfo('last_hidden_state', [batch, 2, dim])];
  }
  nodes.forEach((n, i) => (n.name = `${n.opType}_${i}`));

  const model: OnnxTypes.IModelProto = {
    irVersion: 8,
    producerName: 'dbprune scripts/make-model.ts',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny_vision_encoder',
      node: nodes,
      initializer,
      input: [valueInfo('pixel_values', [batch, 3, size, size])],
      output: outputs,
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** Conv stacks of known cost at 224 px: `small` ≈ 1.2 GFLOP/image, `clip` ≈ 4.4 GFLOP/image (CLIP ViT-B/32's cost). */
export const CONV_ENCODER_LAYERS = {
  small: [
    { cin: 3, cout: 64, k: 7, s: 2 },
    { cin: 64, cout: 128, k: 3, s: 2 },
    { cin: 128, cout: 256, k: 3, s: 2 },
  ],
  clip: [
    { cin: 3, cout: 64, k: 7, s: 2 },
    { cin: 64, cout: 128, k: 3, s: 2 },
    { cin: 128, cout: 128, k: 3, s: 1 },
    { cin: 128, cout: 256, k: 3, s: 2 },
    { cin: 256, cout: 256, k: 3, s: 1 },
    { cin: 256, cout: 512, k: 3, s: 2 },
    { cin: 512, cout: 512, k: 3, s: 1 },
  ],
} as const;

/**
 * A benchmark stand-in for a real encoder's cost: a strided conv stack at `size` px (default 224)
 * → global average pool → `image_embeds` [N, dim]. Its embeddings mean nothing; it exists so the
 * end-to-end vs model-only ratio is measured where the model's cost is realistic, as with
 * CLIP/DINOv2, rather than with the bundled tiny encoder (where JPEG decoding dominates).
 */
export function buildConvEncoder(opts: { size?: number; dim?: number; seed?: number; cost?: keyof typeof CONV_ENCODER_LAYERS } = {}): Uint8Array {
  const size = opts.size ?? 224;
  const dim = opts.dim ?? 512;
  const rng = new Rng(opts.seed ?? 7);
  const layers = CONV_ENCODER_LAYERS[opts.cost ?? 'small'];
  const nodes: OnnxTypes.INodeProto[] = [];
  const initializer: OnnxTypes.ITensorProto[] = [];
  let x = 'pixel_values';
  layers.forEach((l, i) => {
    initializer.push(floatTensor(`conv${i}_w`, [l.cout, l.cin, l.k, l.k], randn(rng, l.cout * l.cin * l.k * l.k, Math.sqrt(2 / (l.cin * l.k * l.k)))));
    const pad = (l.k - 1) / 2;
    nodes.push(
      { opType: 'Conv', input: [x, `conv${i}_w`], output: [`c${i}`], attribute: [ints('kernel_shape', [l.k, l.k]), ints('strides', [l.s, l.s]), ints('pads', [pad, pad, pad, pad])] },
      { opType: 'Relu', input: [`c${i}`], output: [`r${i}`] },
    );
    x = `r${i}`;
  });
  const last = layers[layers.length - 1].cout;
  initializer.push(floatTensor('proj', [last, dim], randn(rng, last * dim, 1 / Math.sqrt(last))));
  nodes.push(
    { opType: 'GlobalAveragePool', input: [x], output: ['gap'] },
    { opType: 'Flatten', input: ['gap'], output: ['feat'], attribute: [int('axis', 1)] },
    { opType: 'MatMul', input: ['feat', 'proj'], output: ['image_embeds'] },
  );
  nodes.forEach((n, i) => (n.name = `${n.opType}_${i}`));
  const model: OnnxTypes.IModelProto = {
    irVersion: 8,
    producerName: 'dbprune scripts/make-model.ts',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: { name: 'conv_encoder_bench', node: nodes, initializer, input: [valueInfo('pixel_values', ['batch', 3, size, size])], output: [valueInfo('image_embeds', ['batch', dim])] },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** The `preprocessor_config.json` written beside the model (CLIP-style, `size` px). */
export function tinyPreprocessorConfig(size = 32): Record<string, unknown> {
  return {
    crop_size: { height: size, width: size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: CLIP_MEAN,
    image_processor_type: 'CLIPImageProcessor',
    image_std: CLIP_STD,
    resample: 3,
    rescale_factor: 1 / 255,
    size: { shortest_edge: size },
  };
}

/** Writes `onnx/vision_model.onnx` and `preprocessor_config.json` under `outDir`. */
export function writeTinyModel(outDir: string, opts: TinyModelOptions = {}): void {
  writeModelDir(outDir, buildTinyVisionModel(opts), opts.size ?? 32);
}

/** Writes a transformers.js/optimum-style model folder: `onnx/vision_model.onnx` + `preprocessor_config.json`. */
export function writeModelDir(outDir: string, onnxBytes: Uint8Array, size: number): void {
  mkdirSync(join(outDir, 'onnx'), { recursive: true });
  writeFileSync(join(outDir, 'onnx', 'vision_model.onnx'), onnxBytes);
  writeFileSync(join(outDir, 'preprocessor_config.json'), JSON.stringify(tinyPreprocessorConfig(size), null, 2) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2] ?? 'data-samples/model';
  writeTinyModel(out);
  console.log(`wrote ${join(out, 'onnx', 'vision_model.onnx')} and ${join(out, 'preprocessor_config.json')}`);
}
