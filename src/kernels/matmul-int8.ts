/**
 * An int8 pre-filter for the exact nearest centroid: an onnxruntime-node session that quantises
 * each row in the graph and scores it with `MatMulInteger` (uint8 × int8 → int32; VNNI on CPUs
 * that have it, ~3× the float32 MatMul at d = 512, k = 500 on the 2-core AVX-512 box), then keeps
 * the two best integer scores. Together with a proven error bound this decides most rows exactly;
 * the rest go to the float32 path (see {@link certainWinners}).
 *
 *     x [N, d] ─max(ReduceMax, −ReduceMin)─► m [N]        (per-row scale s_x = m / 127)
 *     QuantizeLinear(x, fl(m/127), 128, axis 0) ─► q [N, d] uint8   (q − 128 ∈ [−127, 127])
 *     MatMulInteger(q, Q_Cᵀ, 128, 0) ─► I [N, k] int32 ─TopK(2)─► values, indices
 *
 * Centroids are quantised once in JS with one global scale s_c = max|c| / 127 (so the integer
 * scores rank like the approximate scores s_x·s_c·I), rounding to nearest in float64.
 *
 * **Bound.** Write x = x̂ + e_x with x̂ = s_x (q − 128) and c = ĉ + e_c with ĉ = s_c q_c. Then
 * ⟨x, c⟩ − ⟨x̂, ĉ⟩ = ⟨e_x, c⟩ + ⟨x̂, e_c⟩, so by Cauchy–Schwarz
 *
 *     |⟨x, c_j⟩ − s_x s_c I_j| ≤ ‖e_x‖₂ · max_j ‖c_j‖₂ + ‖x̂‖₂ · max_j ‖e_c,j‖₂ =: B(x)
 *
 * for every centroid j. The graph rounds fl(x / fl(m/127)) to the nearest integer (QuantizeLinear), so
 * |x_t·127/m − q_t + 128| ≤ 1/2 + 127·(relative error of two roundings) ≤ {@link Q_HALF} (a margin far
 * above the 2·2⁻²⁴ of IEEE arithmetic), hence ‖e_x‖₂ ≤ √d · (m/127) · Q_HALF, and
 * ‖x̂‖₂ ≤ ‖x‖₂ + ‖e_x‖₂, with ‖x‖₂ from the graph's float32 ReduceL2 enlarged by a relative 1e-3
 * (its rounding error is below d·2⁻²⁴). If s_x s_c (I₁ − I₂) > 2·B(x) + {@link SLACK}, the top integer candidate
 * is the unique largest true ⟨x, c_j⟩ with a margin of more than SLACK (1e-9) — far above the
 * float32 MatMul error (≤ d·2⁻²⁴ ≈ 3e-5 at d = 512 for unit vectors) — so the float32 path with its
 * near-tie rule would pick the same centroid: the result is identical, not approximately so.
 *
 * **Kernel check.** `MatMulInteger` must be exact in int32. CPUs without VNNI may run MLAS kernels
 * built on `vpmaddubsw`, which saturate pairs of u8×s8 products at int16; {@link OrtInt8Scorer.create}
 * therefore runs {@link probeExactInt8Kernel}, whose every pair overflows int16 (255 × 127 +
 * 255 × 127); when the result is not the exact integer, callers skip this path.
 *
 * This module computes candidates and their certainty only; δ and tie rules live in `nearest.ts`.
 */
import * as ort from 'onnxruntime-node';
import type { OrtWorkerSessionOptions } from './ort-worker.js';
import { encodeModel, intAttr, onnx, valueInfo } from './onnx-graph.js';

const T = onnx.TensorProto.DataType;

/**
 * Upper bound of |x·127/m − (q − 128)| per element: 1/2 for the rounding plus 127·1e-4, i.e. it
 * tolerates a relative error of 1e-4 in the graph's Div and Mul (IEEE float32 gives 1.2e-7; even an
 * approximate reciprocal such as rcp14 stays below 6.1e-5).
 */
export const Q_HALF = 0.5 + 127e-4;
/** Absolute margin added to the certainty test (covers float64 rounding in the bound itself). */
export const SLACK = 1e-9;

/** The int8 pre-scores of a batch (outputs m, nx, values, indices of {@link buildInt8Model}). */
export interface Int8Top2 {
  /** Per-row max |x_t| (the quantisation scale times 127). Not finite or 0 → row is uncertain. */
  maxAbs: Float32Array;
  /** Per-row ‖x‖₂ in float32. */
  norm: Float32Array;
  /** Best and second-best integer scores, interleaved [rows, 2]. */
  values: Int32Array;
  /** Their centroid indices, interleaved [rows, 2]. */
  indices: Int32Array;
}

function tensor(name: string, dims: number[], dataType: number, bytes: ArrayBufferView): InstanceType<typeof onnx.TensorProto> {
  return onnx.TensorProto.create({ name, dims, dataType, rawData: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
}

/** Centroids quantised with one global scale, and the constants of the bound. */
export interface QuantizedCentroids {
  /** Q_Cᵀ as [dim, k] int8. */
  qt: Int8Array;
  /** The global scale s_c. */
  scale: number;
  /** max_j ‖c_j‖₂ (float64, rounded up by a relative 1e-12). */
  maxNorm: number;
  /** max_j ‖c_j − s_c q_c,j‖₂ (float64, rounded up by a relative 1e-12). */
  maxErr: number;
}

/** Quantises k×dim centroids (row-major) to int8 with one global scale; see the module bound. */
export function quantizeCentroids(centroids: Float32Array, k: number, dim: number): QuantizedCentroids {
  let m = 0;
  for (let i = 0; i < k * dim; i++) m = Math.max(m, Math.abs(centroids[i]));
  const scale = m / 127;
  const qt = new Int8Array(dim * k);
  let maxNorm = 0;
  let maxErr = 0;
  for (let j = 0; j < k; j++) {
    let n2 = 0;
    let e2 = 0;
    for (let t = 0; t < dim; t++) {
      const v = centroids[j * dim + t];
      const q = m > 0 ? Math.max(-127, Math.min(127, Math.round(v / scale))) : 0;
      qt[t * k + j] = q;
      const e = v - q * scale;
      n2 += v * v;
      e2 += e * e;
    }
    maxNorm = Math.max(maxNorm, Math.sqrt(n2));
    maxErr = Math.max(maxErr, Math.sqrt(e2));
  }
  return { qt, scale, maxNorm: maxNorm * (1 + 1e-12), maxErr: maxErr * (1 + 1e-12) };
}

/** Serialises the int8 scoring graph (see the module comment) for quantised centroids. */
export function buildInt8Model(qc: QuantizedCentroids, k: number, dim: number): Uint8Array {
  const f = (v: number): Float32Array => Float32Array.of(v);
  const initializers = [
    tensor('QCT', [dim, k], T.INT8, qc.qt),
    tensor('AZ', [], T.UINT8, Uint8Array.of(128)),
    tensor('BZ', [], T.INT8, Int8Array.of(0)),
    tensor('C127', [], T.FLOAT, f(127)),
    tensor('K', [1], T.INT64, BigInt64Array.of(2n)),
    tensor('FLAT', [1], T.INT64, BigInt64Array.of(-1n)),
  ];
  const node = (opType: string, input: string[], output: string[], attribute: InstanceType<typeof onnx.AttributeProto>[] = []): InstanceType<typeof onnx.NodeProto> =>
    onnx.NodeProto.create({ opType, input, output, name: output[0], attribute });
  const rows = (): InstanceType<typeof onnx.AttributeProto>[] => [
    onnx.AttributeProto.create({ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }),
    intAttr('keepdims', 1),
  ];
  // m = max(max x, −min x) reads x twice where Abs → ReduceMax also wrote |x|; one QuantizeLinear
  // (per row: axis 0) replaces Mul, Round, Add and Cast, each a pass over the batch: 2.92 → 2.53 ms
  // per 2,048 × 512 batch at k = 500 on the 2-core box.
  const nodes = [
    node('ReduceL2', ['x'], ['nx'], rows()),
    node('ReduceMax', ['x'], ['hi'], rows()),
    node('ReduceMin', ['x'], ['lo'], rows()),
    node('Neg', ['lo'], ['nlo']),
    node('Max', ['hi', 'nlo'], ['m']),
    node('Div', ['m', 'C127'], ['sx']),
    node('Reshape', ['sx', 'FLAT'], ['s']),
    node('Shape', ['s'], ['sn']),
    node('Expand', ['AZ', 'sn'], ['zp']),
    node('QuantizeLinear', ['x', 's', 'zp'], ['q'], [intAttr('axis', 0)]),
    node('MatMulInteger', ['q', 'QCT', 'AZ', 'BZ'], ['S']),
    node('TopK', ['S', 'K'], ['values', 'indices64'], [intAttr('axis', 1), intAttr('largest', 1), intAttr('sorted', 1)]),
    node('Cast', ['indices64'], ['indices'], [intAttr('to', T.INT32)]),
  ];
  return encodeModel({
    name: 'nearest_centroid_int8',
    node: nodes,
    initializer: initializers,
    input: [valueInfo('x', T.FLOAT, ['N', dim])],
    output: [valueInfo('m', T.FLOAT, ['N', 1]), valueInfo('nx', T.FLOAT, ['N', 1]), valueInfo('values', T.INT32, ['N', 2]), valueInfo('indices', T.INT32, ['N', 2])],
  });
}

/** The ORT session options of the nearest-centroid sessions (no spinning: the box is shared). */
export function nearestSessionOptions(threads: number): OrtWorkerSessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * Resolves true when this machine's `MatMulInteger` (uint8 × int8) is exact where a pair of products
 * overflows int16 (the failure mode of `vpmaddubsw` kernels).
 */
export async function probeExactInt8Kernel(threads: number): Promise<boolean> {
  const dim = 64;
  const k = 16;
  const b = new Int8Array(dim * k).fill(127);
  const model = encodeModel({
    name: 'probe',
    node: [onnx.NodeProto.create({ opType: 'MatMulInteger', input: ['a', 'B', 'AZ', 'BZ'], output: ['y'] })],
    initializer: [tensor('B', [dim, k], T.INT8, b), tensor('AZ', [], T.UINT8, Uint8Array.of(0)), tensor('BZ', [], T.INT8, Int8Array.of(0))],
    input: [valueInfo('a', T.UINT8, ['N', dim])],
    output: [valueInfo('y', T.INT32, ['N', k])],
  });
  const session = await ort.InferenceSession.create(model, nearestSessionOptions(threads) as ort.InferenceSession.SessionOptions);
  try {
    const rows = 32;
    const res = await session.run({ a: new ort.Tensor('uint8', new Uint8Array(rows * dim).fill(255), [rows, dim]) });
    const y = res.y.data as Int32Array;
    return y.length === rows * k && y.every((v) => v === 255 * 127 * dim);
  } finally {
    await session.release();
  }
}

/**
 * Per row: the certain winner (index of the unique largest ⟨x, c_j⟩, proven by the module bound),
 * or −1 when the bound does not separate the two best candidates or the row's scale is not usable.
 * Writes `winner[0..rows)`, returns the number of uncertain rows. `dim` and `qc` as in the session.
 */
export function certainWinners(r: Int8Top2, rows: number, dim: number, qc: QuantizedCentroids, winner: Int32Array): number {
  const { maxAbs, norm, values, indices } = r;
  const sqrtD = Math.sqrt(dim);
  let uncertain = 0;
  for (let i = 0; i < rows; i++) {
    const m = maxAbs[i];
    winner[i] = -1;
    if (!(m > 0 && m < Infinity)) {
      uncertain++;
      continue;
    }
    const sx = m / 127;
    const ex = sqrtD * sx * Q_HALF;
    const xn = norm[i] * (1 + 1e-3);
    const b = ex * qc.maxNorm + (xn + ex) * qc.maxErr;
    const gap = sx * qc.scale * (values[2 * i] - values[2 * i + 1]);
    const j = indices[2 * i];
    // `gap > …` is false for NaN (e.g. a NaN norm).
    if (gap > 2 * b + SLACK && j >= 0) winner[i] = j;
    else uncertain++;
  }
  return uncertain;
}
