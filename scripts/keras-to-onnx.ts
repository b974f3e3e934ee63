/**
 * Converts a TensorFlow.js *layers* model of Keras MobileNetV2 (as shipped by `nsfwjs@4.4.0`:
 * `model.json` topology + uint8-quantised weights) into an ONNX image encoder that outputs the
 * global-average-pooled features of `out_relu` (1280-d for MobileNetV2 1.0), opset 13.
 *
 * Supported layers, which are all MobileNetV2 needs up to its pooled features: InputLayer,
 * ZeroPadding2D (folded into the next convolution's pads), Conv2D / DepthwiseConv2D (depthwise as a
 * group Conv) each followed by a BatchNormalization (folded into the convolution), ReLU with
 * `max_value` (ReLU6, as Clip), Add. Anything else before the stop layer is an error: the converter
 * refuses rather than guesses.
 *
 * Weights stay uint8: the tfjs quantisation is affine per tensor (value = min + scale·q, with
 * −min/scale an integer), so after folding the BatchNorm scale s_o of output channel o the kernel is
 * exactly DequantizeLinear(q, scale·s_o, zero_point) per output channel (axis 0). Biases are float.
 * Written by hand because no npm package converts tfjs layers models to ONNX (tf2onnx is Python).
 */
import type { onnx as OnnxTypes } from 'onnx-proto';
import { onnx } from '../src/kernels/onnx-graph.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const UINT8 = onnx.TensorProto.DataType.UINT8;

/** One entry of a tfjs `weightsManifest[].weights`. */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min?: number; scale: number; dtype: string };
}

/** A Keras layer of `modelTopology.model_config.config.layers`. */
export interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, unknown][][];
}

/** A dequantised weight: float values, and the raw uint8 codes with their affine parameters. */
interface Weight {
  shape: number[];
  values: Float32Array;
  q?: { codes: Uint8Array; scale: number; zeroPoint: number };
}

/** Decodes the concatenated weight bytes in manifest order (tfjs: value = min + scale·q). */
export function decodeTfjsWeights(specs: TfjsWeightSpec[], bytes: Uint8Array): Map<string, Weight> {
  const out = new Map<string, Weight>();
  let off = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (!s.quantization || s.quantization.dtype !== 'uint8' || s.dtype !== 'float32') {
      throw new Error(`weight ${s.name}: only uint8-quantised float32 weights are supported (got ${s.dtype}/${s.quantization?.dtype ?? 'none'})`);
    }
    if (off + n > bytes.length) throw new Error(`weight ${s.name}: weight data ends at ${bytes.length} bytes, need ${off + n}`);
    const codes = bytes.subarray(off, off + n);
    off += n;
    const { scale } = s.quantization;
    const min = s.quantization.min ?? 0;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = min + scale * codes[i];
    const zp = -min / scale;
    const zeroPoint = Math.round(zp);
    const exact = Math.abs(zp - zeroPoint) < 1e-3 && zeroPoint >= 0 && zeroPoint <= 255;
    out.set(s.name, { shape: s.shape, values, q: exact ? { codes, scale, zeroPoint } : undefined });
  }
  if (off !== bytes.length) throw new Error(`weight data has ${bytes.length} bytes, the manifest describes ${off}`);
  return out;
}

function ints(name: string, v: number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
}
function int(name: string, v: number): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: v };
}
function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}
function uint8Tensor(name: string, dims: number[], values: Uint8Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: UINT8, rawData: values };
}
function floatInfo(name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

function need(w: Map<string, Weight>, name: string): Weight {
  const x = w.get(name);
  if (!x) throw new Error(`missing weight ${name}`);
  return x;
}

/** Options of {@link kerasMobileNetToOnnx}. */
export interface KerasToOnnxOptions {
  /** Last layer whose output is pooled. Default `out_relu`. */
  stopAt?: string;
  /** Input side (square). Default 224. */
  size?: number;
  /** Keep weights uint8 + DequantizeLinear (default) or expand them to float. */
  quantized?: boolean;
  /** ONNX output name. Default `image_embeds`. */
  outputName?: string;
}

/**
 * Builds the ONNX model: `pixel_values` [N, 3, S, S] (RGB in [0, 1], NCHW) → … → GlobalAveragePool
 * of `stopAt` → `image_embeds` [N, C]. Returns the serialised bytes and the embedding width.
 */
export function kerasMobileNetToOnnx(layers: KerasLayer[], weights: Map<string, Weight>, opts: KerasToOnnxOptions = {}): { bytes: Uint8Array; dim: number } {
  const stopAt = opts.stopAt ?? 'out_relu';
  const size = opts.size ?? 224;
  const quantized = opts.quantized ?? true;
  const outputName = opts.outputName ?? 'image_embeds';
  const nodes: OnnxTypes.INodeProto[] = [];
  const init: OnnxTypes.ITensorProto[] = [];
  init.push(floatTensor('relu6_min', [], new Float32Array([0])), floatTensor('relu6_max', [], new Float32Array([6])));
  /** layer name → ONNX tensor name carrying its output (after folding). */
  const tensorOf = new Map<string, string>();
  /** ZeroPadding2D layers: name → [top, bottom, left, right] and the tensor they pad. */
  const padOf = new Map<string, { input: string; pads: [number, number, number, number] }>();
  /** Conv layers waiting for their BatchNormalization. */
  const convOf = new Map<string, KerasLayer>();
  let channels = 3;
  const inputOf = (l: KerasLayer, i = 0): string => {
    const nodesIn = l.inbound_nodes[0];
    if (!nodesIn || !nodesIn[i]) throw new Error(`layer ${l.name}: no inbound node ${i}`);
    return nodesIn[i][0];
  };

  for (const l of layers) {
    const c = l.config;
    switch (l.class_name) {
      case 'InputLayer':
        tensorOf.set(l.name, 'pixel_values');
        break;
      case 'ZeroPadding2D': {
        const p = c.padding as [[number, number], [number, number]];
        padOf.set(l.name, { input: inputOf(l), pads: [p[0][0], p[0][1], p[1][0], p[1][1]] });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D':
        if (c.use_bias || (c.activation ?? 'linear') !== 'linear') throw new Error(`layer ${l.name}: bias/activation inside the convolution is not supported`);
        convOf.set(l.name, l);
        break;
      case 'BatchNormalization': {
        const conv = convOf.get(inputOf(l));
        if (!conv) throw new Error(`layer ${l.name}: BatchNormalization not directly after a convolution is not supported`);
        channels = emitFoldedConv(conv, l, weights, { nodes, init, tensorOf, padOf, quantized, inputOf });
        break;
      }
      case 'ReLU': {
        if (c.max_value !== 6 || (c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) throw new Error(`layer ${l.name}: only ReLU6 is supported`);
        const x = tensorOf.get(inputOf(l));
        if (!x) throw new Error(`layer ${l.name}: input not computed`);
        nodes.push({ opType: 'Clip', input: [x, 'relu6_min', 'relu6_max'], output: [l.name], name: l.name });
        tensorOf.set(l.name, l.name);
        break;
      }
      case 'Add': {
        const ins = l.inbound_nodes[0].map((n) => tensorOf.get(n[0]));
        if (ins.length !== 2 || ins.some((x) => !x)) throw new Error(`layer ${l.name}: Add needs two computed inputs`);
        nodes.push({ opType: 'Add', input: ins as string[], output: [l.name], name: l.name });
        tensorOf.set(l.name, l.name);
        break;
      }
      default:
        throw new Error(`layer ${l.name}: ${l.class_name} is not supported before ${stopAt}`);
    }
    if (l.name === stopAt) {
      const x = tensorOf.get(l.name);
      if (!x) throw new Error(`stop layer ${stopAt} produced no tensor`);
      nodes.push(
        { opType: 'GlobalAveragePool', input: [x], output: ['pooled'], name: 'pool' },
        { opType: 'Flatten', input: ['pooled'], output: [outputName], name: 'flatten', attribute: [int('axis', 1)] },
      );
      const model: OnnxTypes.IModelProto = {
        irVersion: 8,
        producerName: 'dbprune scripts/keras-to-onnx.ts',
        producerVersion: '1',
        opsetImport: [{ domain: '', version: 13 }],
        graph: {
          name: 'mobilenet_v2_features',
          node: nodes,
          initializer: init,
          input: [floatInfo('pixel_values', ['batch', 3, size, size])],
          output: [floatInfo(outputName, ['batch', channels])],
        },
      };
      return { bytes: onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish(), dim: channels };
    }
  }
  throw new Error(`stop layer ${stopAt} not found`);
}

interface EmitContext {
  nodes: OnnxTypes.INodeProto[];
  init: OnnxTypes.ITensorProto[];
  tensorOf: Map<string, string>;
  padOf: Map<string, { input: string; pads: [number, number, number, number] }>;
  quantized: boolean;
  inputOf: (l: KerasLayer, i?: number) => string;
}

/** Emits Conv(x, W·s, β − μ·s) for a Keras conv + BatchNorm pair; returns the output channels. */
function emitFoldedConv(conv: KerasLayer, bn: KerasLayer, weights: Map<string, Weight>, ctx: EmitContext): number {
  const c = conv.config;
  const depthwise = conv.class_name === 'DepthwiseConv2D';
  if (depthwise && (c.depth_multiplier ?? 1) !== 1) throw new Error(`layer ${conv.name}: depth_multiplier ≠ 1 is not supported`);
  const kernel = need(weights, `${conv.name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`);
  const [kh, kw, cin, cm] = kernel.shape;
  const cout = depthwise ? cin : cm;
  const eps = Number(bn.config.epsilon ?? 1e-3);
  const gamma = need(weights, `${bn.name}/gamma`).values;
  const beta = need(weights, `${bn.name}/beta`).values;
  const mean = need(weights, `${bn.name}/moving_mean`).values;
  const variance = need(weights, `${bn.name}/moving_variance`).values;
  const s = new Float32Array(cout);
  const bias = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    s[o] = gamma[o] / Math.sqrt(variance[o] + eps);
    bias[o] = beta[o] - mean[o] * s[o];
  }
  // Keras [kh, kw, cin, cout] (depthwise: [kh, kw, C, 1]) → ONNX [cout, cin/group, kh, kw].
  const inPerGroup = depthwise ? 1 : cin;
  const codes = new Uint8Array(cout * inPerGroup * kh * kw);
  const floats = new Float32Array(codes.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let m = 0; m < cm; m++) {
          const src = ((y * kw + x) * cin + i) * cm + m;
          const o = depthwise ? i : m;
          const ii = depthwise ? 0 : i;
          const dst = ((o * inPerGroup + ii) * kh + y) * kw + x;
          if (kernel.q) codes[dst] = kernel.q.codes[src];
          floats[dst] = kernel.values[src] * s[o];
        }
  const wName = `${conv.name}_W`;
  if (ctx.quantized && kernel.q) {
    const q = kernel.q;
    const scales = new Float32Array(cout);
    for (let o = 0; o < cout; o++) scales[o] = q.scale * s[o];
    ctx.init.push(
      uint8Tensor(`${wName}_q`, [cout, inPerGroup, kh, kw], codes),
      floatTensor(`${wName}_scale`, [cout], scales),
      uint8Tensor(`${wName}_zp`, [cout], new Uint8Array(cout).fill(q.zeroPoint)),
    );
    ctx.nodes.push({ opType: 'DequantizeLinear', input: [`${wName}_q`, `${wName}_scale`, `${wName}_zp`], output: [wName], name: `${wName}_dq`, attribute: [int('axis', 0)] });
  } else {
    ctx.init.push(floatTensor(wName, [cout, inPerGroup, kh, kw], floats));
  }
  ctx.init.push(floatTensor(`${conv.name}_b`, [cout], bias));

  // Input: either a computed tensor or a ZeroPadding2D folded into pads.
  let src = ctx.inputOf(conv);
  let pads: [number, number, number, number] = [0, 0, 0, 0]; // top, left, bottom, right
  const zp = ctx.padOf.get(src);
  if (zp) {
    pads = [zp.pads[0], zp.pads[2], zp.pads[1], zp.pads[3]];
    src = zp.input;
  }
  const strides = c.strides as [number, number];
  if (c.padding === 'same') {
    if (strides[0] !== 1 || strides[1] !== 1) throw new Error(`layer ${conv.name}: 'same' padding with stride > 1 is not supported`);
    const ph = (kh - 1) / 2;
    const pw = (kw - 1) / 2;
    pads = [pads[0] + ph, pads[1] + pw, pads[2] + ph, pads[3] + pw];
  } else if (c.padding !== 'valid') throw new Error(`layer ${conv.name}: padding ${String(c.padding)} is not supported`);
  const x = ctx.tensorOf.get(src);
  if (!x) throw new Error(`layer ${conv.name}: input ${src} not computed`);
  ctx.nodes.push({
    opType: 'Conv',
    input: [x, wName, `${conv.name}_b`],
    output: [bn.name],
    name: conv.name,
    attribute: [ints('kernel_shape', [kh, kw]), ints('strides', strides), ints('pads', pads), int('group', depthwise ? cin : 1)],
  });
  ctx.tensorOf.set(bn.name, bn.name);
  return cout;
}
