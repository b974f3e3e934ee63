/**
 * scripts/keras-to-onnx.ts on a small MobileNetV2-shaped Keras model (ZeroPadding2D → strided Conv2D →
 * BN → ReLU6 → depthwise 'same' → BN → ReLU6 → 1×1 Conv2D → BN → Add → ReLU6) with uint8-quantised
 * weights as tfjs stores them: the ONNX graph run by onnxruntime must match a direct NHWC float64
 * evaluation of the Keras layers (both with BatchNorm folded and weights kept uint8, and expanded
 * to float). The converter's check against TensorFlow.js on the real nsfwjs model is
 * scripts/verify-real-model.mjs (dev-only, needs @tensorflow/tfjs).
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { decodeTfjsWeights, kerasMobileNetToOnnx, type KerasLayer, type TfjsWeightSpec } from '../../scripts/keras-to-onnx.js';

const S = 9; // input side; padded to 10, strided conv → 4×4
const C = 4;

function layer(name: string, class_name: string, config: Record<string, unknown>, inputs: string[]): KerasLayer {
  return { name, class_name, config: { name, ...config }, inbound_nodes: inputs.length ? [inputs.map((i) => [i, 0, 0, {}] as [string, number, number, unknown])] : [] };
}

const LAYERS: KerasLayer[] = [
  layer('input_1', 'InputLayer', { batch_input_shape: [null, S, S, 3] }, []),
  layer('pad', 'ZeroPadding2D', { padding: [[0, 1], [0, 1]] }, ['input_1']),
  layer('conv', 'Conv2D', { filters: C, kernel_size: [3, 3], strides: [2, 2], padding: 'valid', use_bias: false, activation: 'linear' }, ['pad']),
  layer('conv_bn', 'BatchNormalization', { epsilon: 1e-3 }, ['conv']),
  layer('conv_relu', 'ReLU', { max_value: 6 }, ['conv_bn']),
  layer('dw', 'DepthwiseConv2D', { kernel_size: [3, 3], strides: [1, 1], padding: 'same', use_bias: false, activation: 'linear', depth_multiplier: 1 }, ['conv_relu']),
  layer('dw_bn', 'BatchNormalization', { epsilon: 1e-3 }, ['dw']),
  layer('dw_relu', 'ReLU', { max_value: 6 }, ['dw_bn']),
  layer('proj', 'Conv2D', { filters: C, kernel_size: [1, 1], strides: [1, 1], padding: 'same', use_bias: false, activation: 'linear' }, ['dw_relu']),
  layer('proj_bn', 'BatchNormalization', { epsilon: 1e-3 }, ['proj']),
  layer('add', 'Add', {}, ['conv_relu', 'proj_bn']),
  layer('out_relu', 'ReLU', { max_value: 6 }, ['add']),
];

/** uint8-quantised weights as tfjs writes them: value = min + scale·q, with −min/scale an integer. */
function makeWeights(rng: Rng): { specs: TfjsWeightSpec[]; bytes: Uint8Array } {
  const shapes: [string, number[], number, number][] = [
    ['conv/kernel', [3, 3, 3, C], 0.02, 128],
    ['dw/depthwise_kernel', [3, 3, C, 1], 0.03, 120],
    ['proj/kernel', [1, 1, C, C], 0.02, 130],
  ];
  for (const bn of ['conv_bn', 'dw_bn', 'proj_bn']) {
    shapes.push([`${bn}/gamma`, [C], 0.01, 0], [`${bn}/beta`, [C], 0.01, 128], [`${bn}/moving_mean`, [C], 0.01, 128], [`${bn}/moving_variance`, [C], 0.01, 0]);
  }
  const specs: TfjsWeightSpec[] = [];
  const chunks: number[] = [];
  for (const [name, shape, scale, zp] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    // gamma/variance: codes 60..255 keep them positive (variance > 0)
    for (let i = 0; i < n; i++) chunks.push(zp === 0 ? 60 + rng.int(196) : rng.int(256));
    specs.push({ name, shape, dtype: 'float32', quantization: { min: -zp * scale, scale, dtype: 'uint8' } });
  }
  return { specs, bytes: Uint8Array.from(chunks) };
}

/** Direct NHWC evaluation of LAYERS (float64), then the spatial mean of out_relu. */
function reference(input: Float64Array, w: Map<string, { values: Float32Array }>): Float64Array {
  type T = { h: number; w: number; c: number; d: Float64Array };
  const at = (t: T, y: number, x: number, c: number): number => (y < 0 || x < 0 || y >= t.h || x >= t.w ? 0 : t.d[(y * t.w + x) * t.c + c]);
  const conv = (t: T, k: Float32Array, kh: number, co: number, stride: number, pad: number, depthwise: boolean): T => {
    const oh = Math.floor((t.h + 2 * pad - kh) / stride) + 1;
    const out: T = { h: oh, w: oh, c: co, d: new Float64Array(oh * oh * co) };
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < oh; x++)
        for (let o = 0; o < co; o++) {
          let s = 0;
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kh; kx++) {
              const iy = y * stride + ky - pad;
              const ix = x * stride + kx - pad;
              if (depthwise) s += at(t, iy, ix, o) * k[(ky * kh + kx) * co + o];
              else for (let i = 0; i < t.c; i++) s += at(t, iy, ix, i) * k[((ky * kh + kx) * t.c + i) * co + o];
            }
          out.d[(y * oh + x) * co + o] = s;
        }
    return out;
  };
  const bn = (t: T, name: string): T => {
    const g = w.get(`${name}/gamma`)!.values, b = w.get(`${name}/beta`)!.values, m = w.get(`${name}/moving_mean`)!.values, v = w.get(`${name}/moving_variance`)!.values;
    const d = t.d.map((x, i) => ((x - m[i % t.c]) / Math.sqrt(v[i % t.c] + 1e-3)) * g[i % t.c] + b[i % t.c]);
    return { ...t, d };
  };
  const relu6 = (t: T): T => ({ ...t, d: t.d.map((x) => Math.min(6, Math.max(0, x))) });
  // ZeroPadding2D [[0,1],[0,1]]: one zero row/column at the bottom/right.
  const padded: T = { h: S + 1, w: S + 1, c: 3, d: new Float64Array((S + 1) * (S + 1) * 3) };
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) padded.d[(y * (S + 1) + x) * 3 + c] = input[(y * S + x) * 3 + c];
  const a = relu6(bn(conv(padded, w.get('conv/kernel')!.values, 3, C, 2, 0, false), 'conv_bn'));
  const b = relu6(bn(conv(a, w.get('dw/depthwise_kernel')!.values, 3, C, 1, 1, true), 'dw_bn'));
  const p = bn(conv(b, w.get('proj/kernel')!.values, 1, C, 1, 0, false), 'proj_bn');
  const out = relu6({ ...p, d: p.d.map((x, i) => x + a.d[i]) });
  const gap = new Float64Array(C);
  for (let i = 0; i < out.d.length; i++) gap[i % C] += out.d[i] / (out.h * out.w);
  return gap;
}

describe('keras-to-onnx (MobileNetV2 layers, uint8 tfjs weights)', () => {
  for (const quantized of [true, false]) {
    it(`matches a direct evaluation of the Keras layers (${quantized ? 'uint8 + DequantizeLinear' : 'float weights'})`, async () => {
      const rng = new Rng(5);
      const { specs, bytes } = makeWeights(rng);
      const weights = decodeTfjsWeights(specs, bytes);
      const { bytes: model, dim } = kerasMobileNetToOnnx(LAYERS, weights, { size: S, quantized });
      expect(dim).toBe(C);
      const session = await InferenceSession.create(model);
      for (let trial = 0; trial < 3; trial++) {
        const nhwc = Float64Array.from({ length: S * S * 3 }, () => rng.next());
        const nchw = new Float32Array(3 * S * S);
        for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) nchw[(c * S + y) * S + x] = nhwc[(y * S + x) * 3 + c];
        const out = await session.run({ pixel_values: new Tensor('float32', nchw, [1, 3, S, S]) });
        const got = out.image_embeds.data as Float32Array;
        const want = reference(nhwc, weights);
        expect(want.some((v) => v > 0)).toBe(true);
        for (let i = 0; i < C; i++) expect(got[i]).toBeCloseTo(want[i], 4);
      }
      await session.release();
    });
  }

  it('refuses layers it does not convert, and weights that are not uint8-quantised', () => {
    const { specs, bytes } = makeWeights(new Rng(1));
    const weights = decodeTfjsWeights(specs, bytes);
    const withDense = [...LAYERS.slice(0, 5), layer('dense', 'Dense', { units: 2 }, ['conv_relu'])];
    expect(() => kerasMobileNetToOnnx(withDense, weights, { size: S, stopAt: 'dense' })).toThrow(/Dense is not supported/);
    expect(() => decodeTfjsWeights([{ name: 'x', shape: [2], dtype: 'float32' }], new Uint8Array(8))).toThrow(/uint8-quantised/);
    expect(() => decodeTfjsWeights(specs, bytes.subarray(1))).toThrow(/weight data/);
  });
});
