/**
 * A CLIP-style **text tower** for image–text alignment scores, laid out as transformers.js /
 * optimum export it: `<dir>/onnx/text_model.onnx` (inputs `input_ids` [+ `attention_mask`], int64;
 * output `text_embeds`, else `pooler_output`), `<dir>/tokenizer.json` (Hugging Face tokenizers
 * format) and `<dir>/tokenizer_config.json` (`model_max_length`, `pad_token`).
 *
 * Tokenising is @huggingface/tokenizers' (pure JavaScript, reads the local tokenizer.json, downloads
 * nothing); inference is onnxruntime-node's. Captions longer than `model_max_length` tokens keep
 * their first tokens and their final (end) token, as HF truncation does with special tokens.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { pathExists } from './fs.js';

/** The part of @huggingface/tokenizers' `Tokenizer` used here. Typed locally: the package's
 *  types/index.d.ts re-exports `./core/Tokenizer` without a file extension, which NodeNext
 *  resolution cannot follow, so the imported class has no type (signatures copied from
 *  types/core/Tokenizer.d.ts, v0.2). */
interface HfTokenizer {
  encode(text: string): { ids: number[] };
  token_to_id(token: string): number | undefined;
}
const Tokenizer = HfTokenizerClass as unknown as new (tokenizer: object, config: object) => HfTokenizer;

export interface TextEncoder {
  /** Embedding width. */
  readonly dim: number;
  /** L2-normalised embeddings of `texts` (n × dim, row-major); a row that cannot be normalised is NaN. */
  encode(texts: readonly string[]): Promise<Float32Array>;
  /** Token ids of one text as fed to the model (after truncation), for inspection and tests. */
  tokenize(text: string): number[];
  close(): Promise<void>;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new DbpruneError(ErrorCodes.MODEL, `${path}: cannot read JSON (${(e as Error).message})`, { file: path }, { cause: e });
  }
}

/**
 * Loads a text tower folder. `threads`: onnxruntime intra-op threads (default 1, 1..64).
 * @throws ERR_DBPRUNE_MODEL (context.file) for a missing/invalid model, tokenizer or config.
 */
export async function loadTextEncoder(dir: string, opts: { threads?: number } = {}): Promise<TextEncoder> {
  const threads = integerOption(opts.threads, 'threads', { default: 1, min: 1, max: 64 });
  const onnxPath = join(dir, 'onnx', 'text_model.onnx');
  const tokPath = join(dir, 'tokenizer.json');
  for (const p of [onnxPath, tokPath]) {
    if (!(await pathExists(p))) throw new DbpruneError(ErrorCodes.MODEL, `text model folder ${dir} lacks ${p}`, { file: p });
  }
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = (await pathExists(cfgPath)) ? await readJson(cfgPath) : {};
  let tokenizer: HfTokenizer;
  try {
    tokenizer = new Tokenizer(await readJson(tokPath), config);
  } catch (e) {
    throw new DbpruneError(ErrorCodes.MODEL, `${tokPath}: not a usable tokenizer (${(e as Error).message})`, { file: tokPath }, { cause: e });
  }
  const maxLen = typeof config.model_max_length === 'number' && config.model_max_length > 1 && config.model_max_length < 100_000 ? config.model_max_length : 77;
  const padToken = typeof config.pad_token === 'string' ? config.pad_token : undefined;
  const padId = (padToken !== undefined ? tokenizer.token_to_id(padToken) : undefined) ?? 0;
  let session: InferenceSession;
  try {
    session = await InferenceSession.create(onnxPath, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  } catch (e) {
    throw new DbpruneError(ErrorCodes.MODEL, `cannot load ONNX model ${onnxPath}: ${(e as Error).message}`, { file: onnxPath }, { cause: e });
  }
  if (!session.inputNames.includes('input_ids')) throw new DbpruneError(ErrorCodes.MODEL, `${onnxPath} has no input_ids input (has ${session.inputNames.join(', ')})`, { file: onnxPath });
  const outputName = ['text_embeds', 'pooler_output'].find((n) => session.outputNames.includes(n)) ?? session.outputNames[0];
  const wantsMask = session.inputNames.includes('attention_mask');
  const tokenize = (text: string): number[] => {
    const ids = tokenizer.encode(text).ids;
    return ids.length <= maxLen ? ids : [...ids.slice(0, maxLen - 1), ids[ids.length - 1]];
  };
  const run = async (texts: readonly string[]): Promise<{ data: Float32Array; dim: number }> => {
    const ids = texts.map(tokenize);
    const len = Math.max(1, ...ids.map((x) => x.length));
    const input = new BigInt64Array(texts.length * len).fill(BigInt(padId));
    const mask = new BigInt64Array(texts.length * len);
    ids.forEach((row, i) => row.forEach((id, t) => ((input[i * len + t] = BigInt(id)), (mask[i * len + t] = 1n))));
    const feeds: Record<string, Tensor> = { input_ids: new Tensor('int64', input, [texts.length, len]) };
    if (wantsMask) feeds.attention_mask = new Tensor('int64', mask, [texts.length, len]);
    let out;
    try {
      out = await session.run(feeds);
    } catch (e) {
      throw new DbpruneError(ErrorCodes.MODEL, `text model inference failed on a batch of ${texts.length}: ${(e as Error).message}`, { file: onnxPath }, { cause: e });
    }
    const t = out[outputName];
    if (!t || t.dims.length !== 2) throw new DbpruneError(ErrorCodes.MODEL, `text model output ${outputName} has dims [${t?.dims.join(', ')}], expected [N, D]`, { file: onnxPath });
    return { data: t.data as Float32Array, dim: Number(t.dims[1]) };
  };
  const dim = (await run(['a'])).dim;
  return {
    dim,
    tokenize,
    async encode(texts) {
      if (texts.length === 0) return new Float32Array(0);
      const { data } = await run(texts);
      const outv = new Float32Array(texts.length * dim);
      for (let i = 0; i < texts.length; i++) {
        let ss = 0;
        for (let k = 0; k < dim; k++) ss += data[i * dim + k] ** 2;
        const inv = 1 / Math.sqrt(ss);
        for (let k = 0; k < dim; k++) outv[i * dim + k] = data[i * dim + k] * inv;
      }
      return outv;
    },
    close: () => session.release(),
  };
}
