// Dev-only check of scripts/make-real-model.ts: runs the ORIGINAL nsfwjs MobileNetV2 layers model in
// TensorFlow.js (pure-JS CPU backend) and the converted ONNX model in onnxruntime-node on the same
// float input tensors, and compares the global-average-pooled `out_relu` features.
//
//   mkdir -p /tmp/tfjs && (cd /tmp/tfjs && npm init -y && npm install @tensorflow/tfjs@4)
//   node scripts/verify-real-model.mjs --tfjs /tmp/tfjs --nsfwjs <unpacked nsfwjs@4.4.0> \
//        --model data-samples/openclipart/model [image files…]
//
// @tensorflow/tfjs is deliberately not a dependency of dbprune (plain .mjs, outside the typecheck).
// Inputs: 4 seeded random tensors in [0, 1] plus the given images (squash-resized to 224, /255).
//
// Result, 2026-11-27 (tfjs 4.22.0 CPU backend vs onnxruntime-node 1.30.0 CPU; 4 random tensors +
// 4 openclipart drawings from birds/fruit/vehicles/smilies; features range up to 4.51):
//   uint8 + DequantizeLinear model (bundled): max |Δ| = 9.5e-6, min cosine = 1.0000000
//   float model (--float):                     max |Δ| = 8.3e-6, min cosine = 1.0000000
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

const { values, positionals } = parseArgs({
  options: { tfjs: { type: 'string' }, nsfwjs: { type: 'string' }, model: { type: 'string' } },
  allowPositionals: true,
});
if (!values.tfjs || !values.nsfwjs || !values.model) {
  console.error('usage: node scripts/verify-real-model.mjs --tfjs <dir with @tensorflow/tfjs> --nsfwjs <unpacked nsfwjs> --model <model dir> [images…]');
  process.exit(2);
}
const tf = createRequire(join(resolve(values.tfjs), 'x.js'))('@tensorflow/tfjs');
const req = createRequire(join(resolve(values.nsfwjs), 'dist', 'models', 'mobilenet_v2', 'x.js'));
const topo = req('./model.min.js');
const b64 = req('./group1-shard1of1.min.js');
const wbytes = Buffer.from(b64, 'base64');
const weightData = wbytes.buffer.slice(wbytes.byteOffset, wbytes.byteOffset + wbytes.byteLength);

await tf.setBackend('cpu');
const full = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topo.modelTopology, weightSpecs: topo.weightsManifest[0].weights, weightData }));
const features = tf.model({ inputs: full.inputs, outputs: full.getLayer('out_relu').output });

const S = 224;
/** NHWC float inputs in [0, 1]. */
const inputs = [];
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
for (let i = 0; i < 4; i++) inputs.push({ name: `random${i}`, nhwc: Float32Array.from({ length: S * S * 3 }, rand) });
for (const f of positionals) {
  const raw = await sharp(f).flatten({ background: '#ffffff' }).removeAlpha().resize(S, S, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
  inputs.push({ name: f, nhwc: Float32Array.from(raw, (v) => v / 255) });
}

const session = await ort.InferenceSession.create(join(values.model, 'onnx', 'vision_model.onnx'));
let maxAbs = 0;
let maxVal = 0;
let minCos = 1;
for (const inp of inputs) {
  const ref = tf.tidy(() => features.predict(tf.tensor4d(inp.nhwc, [1, S, S, 3])).mean([1, 2]).dataSync());
  const nchw = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) nchw[(c * S + y) * S + x] = inp.nhwc[(y * S + x) * 3 + c];
  const out = await session.run({ pixel_values: new ort.Tensor('float32', nchw, [1, 3, S, S]) });
  const got = out.image_embeds.data;
  let dot = 0, na = 0, nb = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    m = Math.max(m, Math.abs(ref[i] - got[i]));
    maxVal = Math.max(maxVal, Math.abs(ref[i]));
    dot += ref[i] * got[i]; na += ref[i] ** 2; nb += got[i] ** 2;
  }
  const cos = dot / Math.sqrt(na * nb);
  maxAbs = Math.max(maxAbs, m);
  minCos = Math.min(minCos, cos);
  console.log(`${inp.name}: dim ${got.length} vs ${ref.length}, max |Δ| ${m.toExponential(2)}, cosine ${cos.toFixed(7)}`);
}
console.log(`tfjs ${tf.version.tfjs}: max |Δ| = ${maxAbs.toExponential(2)} (features up to ${maxVal.toFixed(2)}), min cosine = ${minCos.toFixed(7)}`);
