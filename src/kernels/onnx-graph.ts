/**
 * Small builders for ONNX graphs made in JS with `onnx-proto` (the nearest-centroid scoring models
 * in matmul-ort.ts and matmul-int8.ts). Pure data construction, no I/O.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;

/** A graph input/output of `elemType` (onnx.TensorProto.DataType) with fixed or symbolic dims. */
export function valueInfo(name: string, elemType: number, dims: (number | string)[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            typeof d === 'number'
              ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
              : onnx.TensorShapeProto.Dimension.create({ dimParam: d }),
          ),
        }),
      }),
    }),
  });
}

/** An INT node attribute. */
export function intAttr(name: string, i: number): InstanceType<typeof onnx.AttributeProto> {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
}

/** The parts of a graph {@link encodeModel} wraps. */
export interface GraphParts {
  name: string;
  node: InstanceType<typeof onnx.NodeProto>[];
  initializer: InstanceType<typeof onnx.TensorProto>[];
  input: InstanceType<typeof onnx.ValueInfoProto>[];
  output: InstanceType<typeof onnx.ValueInfoProto>[];
}

/** The serialised model (IR 7, default opset 13, producer `dbprune`) of one graph, for `InferenceSession.create`. */
export function encodeModel(graph: GraphParts): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'dbprune',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    graph: onnx.GraphProto.create(graph),
  });
  return onnx.ModelProto.encode(model).finish();
}
