/**
 * Builds a tiny, deterministic CLIP-style **text tower** laid out like a transformers.js / optimum
 * export, for the `clipScore` stage's tests:
 *
 *   <dir>/onnx/text_model.onnx      input_ids [N, L] int64, attention_mask [N, L] int64 → text_embeds [N, dim]
 *   <dir>/tokenizer.json            a Hugging Face tokenizer (BPE over lower-cased letters, Whitespace
 *                                   pre-tokenizer, <s> … </s> template), read by @huggingface/tokenizers
 *   <dir>/tokenizer_config.json     model_max_length, pad_token
 *
 * The graph (opset 13): Gather(token_embedding, input_ids) → × mask → ReduceSum over L / Σ mask
 * (mean of the real tokens) → MatMul(projection) → `text_embeds`. Weights from the seeded Rng.
 *
 *   npx tsx scripts/make-text-model.ts <outDir>
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { Rng } from '../src/core/rng.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

const SPECIAL = ['<pad>', '<unk>', '<s>', '</s>'] as const;
const LETTERS = 'abcdefghijklmnopqrstuvwxyz'.split('');
/** Merges, in rank order; each result is in the vocabulary. */
const MERGES: [string, string][] = [
  ['d', 'o'],
  ['do', 'g'],
  ['c', 'a'],
  ['ca', 't'],
  ['p', 'h'],
  ['ph', 'o'],
  ['pho', 't'],
  ['phot', 'o'],
  ['c', 'ar'],
  ['a', 'r'],
];

/** The vocabulary: specials, letters, then merge results (ids in this order). */
export function tinyVocab(): Record<string, number> {
  const vocab: Record<string, number> = {};
  for (const t of [...SPECIAL, ...LETTERS, 'ar', ...MERGES.map(([a, b]) => a + b)]) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  return vocab;
}

/** tokenizer.json (Hugging Face tokenizers format). */
export function tinyTokenizerJson(): Record<string, unknown> {
  const vocab = tinyVocab();
  const merges = MERGES.filter(([a, b]) => a in vocab && b in vocab).map(([a, b]) => `${a} ${b}`);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [2], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [3], tokens: ['</s>'] } },
    },
    decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

/** The weights of the tiny text tower (also used by tests to recompute embeddings by hand). */
export function tinyTextWeights(dim = 64, seed = 20_240_601): { vocab: number; width: number; dim: number; embedding: Float32Array; projection: Float32Array } {
  const rng = new Rng(seed);
  const vocab = Object.keys(tinyVocab()).length;
  const width = 32;
  const embedding = Float32Array.from({ length: vocab * width }, () => rng.normal());
  const projection = Float32Array.from({ length: width * dim }, () => rng.normal() / Math.sqrt(width));
  return { vocab, width, dim, embedding, projection };
}

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

/** Serialized ONNX text model (deterministic bytes). */
export function buildTinyTextModel(dim = 64): Uint8Array {
  const w = tinyTextWeights(dim);
  const nodes: OnnxTypes.INodeProto[] = [
    { opType: 'Gather', input: ['token_embedding', 'input_ids'], output: ['tok'] },
    { opType: 'Cast', input: ['attention_mask'], output: ['mask'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] },
    { opType: 'Unsqueeze', input: ['mask', 'axis2'], output: ['mask3'] },
    { opType: 'Mul', input: ['tok', 'mask3'], output: ['masked'] },
    { opType: 'ReduceSum', input: ['masked', 'axis1'], output: ['summed'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
    { opType: 'ReduceSum', input: ['mask', 'axis1'], output: ['count'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
    { opType: 'Div', input: ['summed', 'count'], output: ['pooled'] },
    { opType: 'MatMul', input: ['pooled', 'projection'], output: ['text_embeds'] },
  ];
  nodes.forEach((n, i) => (n.name = `${n.opType}_${i}`));
  const model: OnnxTypes.IModelProto = {
    irVersion: 8,
    producerName: 'dbprune scripts/make-text-model.ts',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'tiny_text_encoder',
      node: nodes,
      initializer: [
        floatTensor('token_embedding', [w.vocab, w.width], w.embedding),
        floatTensor('projection', [w.width, w.dim], w.projection),
        { name: 'axis1', dims: [1], dataType: INT64, int64Data: [1] },
        { name: 'axis2', dims: [1], dataType: INT64, int64Data: [2] },
      ],
      input: [valueInfo('input_ids', INT64, ['batch', 'sequence']), valueInfo('attention_mask', INT64, ['batch', 'sequence'])],
      output: [valueInfo('text_embeds', FLOAT, ['batch', w.dim])],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** Writes the text tower folder (see the file comment). */
export function writeTinyTextModel(outDir: string, dim = 64): void {
  mkdirSync(join(outDir, 'onnx'), { recursive: true });
  writeFileSync(join(outDir, 'onnx', 'text_model.onnx'), buildTinyTextModel(dim));
  writeFileSync(join(outDir, 'tokenizer.json'), `${JSON.stringify(tinyTokenizerJson())}\n`);
  writeFileSync(join(outDir, 'tokenizer_config.json'), `${JSON.stringify({ model_max_length: 16, pad_token: '<pad>', tokenizer_class: 'PreTrainedTokenizerFast' }, null, 1)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: npx tsx scripts/make-text-model.ts <outDir>');
  writeTinyTextModel(out);
  console.log(`wrote ${join(out, 'onnx', 'text_model.onnx')}, tokenizer.json and tokenizer_config.json`);
}
