/**
 * The fast exact-scoring kernel behind `NearestCentroid` (nearest-centroid.ts): an onnxruntime-node session of a
 * graph built here in JS with `onnx-proto`,
 *
 *     x [N, dim] ──MatMul(x, Cᵀ)──► S [N, k] ──TopK(2)──► values [N, 2], indices [N, 2] (int32)
 *
 * with the unit centroids C baked in as an initializer (ORT pre-packs it once per session). TopK(2)
 * gives the best and second-best float32 scores, which the caller needs for its near-tie check.
 * (`ArgMax + ReduceMax` measured only ~2% faster here at d = 512, k = 500 — 369k vs 360k rows/s
 * raw, 2 threads — and gives no second best; it is kept as `head: 'argmax'` for benchmarks only.)
 *
 * This module computes scores only; the conventions (float64 δ, tie rules) live in src/core/nearest.ts.
 */
import * as ort from 'onnxruntime-node';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { Top2 } from '../core/nearest.js';
import { encodeModel, intAttr, onnx, valueInfo } from './onnx-graph.js';

/** Which reduction follows the MatMul. */
export type OrtHead = 'topk' | 'argmax';

/**
 * Serialises the scoring graph for unit centroids `centroids` (k×dim, row-major float32).
 * Input `x` is float32 [N, dim] (N dynamic). Outputs: head 'topk' → `values` float32 [N, min(2,k)]
 * and `indices` int32 [N, min(2,k)]; head 'argmax' → `best` float32 [N] and `index` int32 [N].
 */
export function buildNearestModel(centroids: Float32Array, k: number, dim: number, head: OrtHead = 'topk'): Uint8Array {
  const F = onnx.TensorProto.DataType.FLOAT;
  const I32 = onnx.TensorProto.DataType.INT32;
  const I64 = onnx.TensorProto.DataType.INT64;
  // Cᵀ as [dim, k] so the graph is a plain MatMul.
  const ct = new Float32Array(dim * k);
  for (let j = 0; j < k; j++) {
    const o = j * dim;
    for (let t = 0; t < dim; t++) ct[t * k + j] = centroids[o + t];
  }
  const initializers = [
    onnx.TensorProto.create({
      name: 'CT',
      dims: [dim, k],
      dataType: F,
      rawData: new Uint8Array(ct.buffer, ct.byteOffset, ct.byteLength),
    }),
  ];
  const nodes = [onnx.NodeProto.create({ opType: 'MatMul', input: ['x', 'CT'], output: ['S'], name: 'matmul' })];
  let outputs;
  if (head === 'topk') {
    const kk = Math.min(2, k);
    const kBytes = new Uint8Array(new BigInt64Array([BigInt(kk)]).buffer);
    initializers.push(onnx.TensorProto.create({ name: 'K', dims: [1], dataType: I64, rawData: kBytes }));
    nodes.push(
      onnx.NodeProto.create({
        opType: 'TopK',
        input: ['S', 'K'],
        output: ['values', 'indices64'],
        name: 'topk',
        attribute: [intAttr('axis', 1), intAttr('largest', 1), intAttr('sorted', 1)],
      }),
      onnx.NodeProto.create({ opType: 'Cast', input: ['indices64'], output: ['indices'], name: 'cast', attribute: [intAttr('to', I32)] }),
    );
    outputs = [valueInfo('values', F, ['N', kk]), valueInfo('indices', I32, ['N', kk])];
  } else {
    nodes.push(
      onnx.NodeProto.create({
        opType: 'ArgMax',
        input: ['S'],
        output: ['index64'],
        name: 'argmax',
        attribute: [intAttr('axis', 1), intAttr('keepdims', 0)],
      }),
      onnx.NodeProto.create({ opType: 'Cast', input: ['index64'], output: ['index'], name: 'cast', attribute: [intAttr('to', I32)] }),
      onnx.NodeProto.create({
        opType: 'ReduceMax',
        input: ['S'],
        output: ['best'],
        name: 'reducemax',
        attribute: [onnx.AttributeProto.create({ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }), intAttr('keepdims', 0)],
      }),
    );
    outputs = [valueInfo('best', F, ['N']), valueInfo('index', I32, ['N'])];
  }
  return encodeModel({ name: 'nearest_centroid', node: nodes, initializer: initializers, input: [valueInfo('x', F, ['N', dim])], output: outputs });
}

/** Options of {@link OrtScorer.create}. */
export interface OrtScorerOptions {
  /** Intra-op threads of the session (1..cpus). */
  threads: number;
  /** Reduction head; 'topk' (default) yields best and second best. */
  head?: OrtHead;
}

/**
 * An onnxruntime-node session that scores batches against fixed unit centroids.
 * Calls to {@link OrtScorer.top2} must not overlap (the caller serialises them).
 */
export class OrtScorer {
  private constructor(
    private session: ort.InferenceSession | null,
    readonly k: number,
    readonly dim: number,
    readonly head: OrtHead,
  ) {}

  /**
   * Builds the graph and opens the session.
   * Throws ERR_DBPRUNE_INTERNAL (with the ORT error as cause) when the session cannot be created.
   */
  static async create(centroids: Float32Array, k: number, dim: number, opts: OrtScorerOptions): Promise<OrtScorer> {
    const head = opts.head ?? 'topk';
    const bytes = buildNearestModel(centroids, k, dim, head);
    try {
      const session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: opts.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        executionProviders: ['cpu'],
        // No busy-waiting between runs: on a shared 2-core box spinning pool threads steal the
        // core the JS thread needs for its float64 pass (measured: 123k vs 106k rows/s contended,
        // on par when idle).
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      return new OrtScorer(session, k, dim, head);
    } catch (e) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `cannot create the nearest-centroid ONNX session: ${String(e)}`, { k, dim }, { cause: e });
    }
  }

  /** Scores `rows` rows of `x` (rows×dim, may be a subarray view). */
  async top2(x: Float32Array, rows: number): Promise<Top2> {
    if (!this.session) throw new DbpruneError(ErrorCodes.INTERNAL, 'OrtScorer used after dispose()');
    const view = x.length === rows * this.dim ? x : x.subarray(0, rows * this.dim);
    const input = new ort.Tensor('float32', view, [rows, this.dim]);
    const res = await this.session.run({ x: input });
    if (this.head === 'argmax') {
      const idx1 = res.index.data as Int32Array;
      const val1 = res.best.data as Float32Array;
      return { idx1, val1, idx2: new Int32Array(rows).fill(-1), val2: new Float32Array(rows).fill(-Infinity) };
    }
    return top2FromOutputs(res.values.data as Float32Array, res.indices.data as Int32Array, rows, this.k);
  }

  /** Releases the native session. Idempotent. */
  async dispose(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s) await s.release();
  }
}

/** Splits the interleaved TopK outputs of the 'topk' graph ([rows, min(2, k)]) into a {@link Top2}. */
export function top2FromOutputs(vals: Float32Array, inds: Int32Array, rows: number, k: number): Top2 {
  const kk = Math.min(2, k);
  const idx1 = new Int32Array(rows);
  const val1 = new Float32Array(rows);
  const idx2 = new Int32Array(rows);
  const val2 = new Float32Array(rows);
  if (kk === 2) {
    for (let i = 0; i < rows; i++) {
      idx1[i] = inds[2 * i];
      val1[i] = vals[2 * i];
      idx2[i] = inds[2 * i + 1];
      val2[i] = vals[2 * i + 1];
    }
  } else {
    idx1.set(inds.subarray(0, rows));
    val1.set(vals.subarray(0, rows));
    idx2.fill(-1);
    val2.fill(-Infinity);
  }
  return { idx1, val1, idx2, val2 };
}
