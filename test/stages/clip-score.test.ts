/**
 * The clipScore stage with a real (tiny) ONNX text tower and a Hugging Face tokenizer.json, both
 * built by scripts/make-text-model.ts: token ids hand-checked, text embeddings recomputed by hand
 * from the script's weights, cosine scores per row, NaN for rows without caption or with an error.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { tinyTextWeights, tinyVocab, writeTinyTextModel } from '../../scripts/make-text-model.js';
import type { EmbeddingBatch } from '../../src/core/sample.js';
import { loadTextEncoder, type TextEncoder } from '../../src/io/text-encoder.js';
import { clipScore } from '../../src/stages/clip-score.js';
import { clipScoreFilter } from '../../src/stages/clip-score-filter.js';
import { shardsToManifest } from '../../pipelines/shards-to-manifest.js';
import { readManifest } from '../../src/io/manifest.js';
import { repoRoot } from '../helpers/fixture.js';

let dir = '';
let enc: TextEncoder;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbprune-text-'));
  writeTinyTextModel(dir);
  enc = await loadTextEncoder(dir);
});

/** normalize(mean over tokens of E[id] · P), computed here without onnxruntime. */
function byHand(ids: number[]): Float32Array {
  const w = tinyTextWeights();
  const pooled = new Float64Array(w.width);
  for (const id of ids) for (let k = 0; k < w.width; k++) pooled[k] += w.embedding[id * w.width + k] / ids.length;
  const out = new Float64Array(w.dim);
  for (let k = 0; k < w.width; k++) for (let d = 0; d < w.dim; d++) out[d] += pooled[k] * w.projection[k * w.dim + d];
  const norm = Math.hypot(...out);
  return Float32Array.from(out, (x) => x / norm);
}

describe('text encoder (tokenizer.json + onnx/text_model.onnx)', () => {
  it('tokenises with the BPE merges and the <s> … </s> template (hand-checked)', () => {
    const v = tinyVocab();
    expect(enc.tokenize('A Dog photo, cat!')).toEqual([v['<s>'], v.a, v.dog, v.photo, v['<unk>'], v.cat, v['<unk>'], v['</s>']]);
    const long = enc.tokenize(Array.from({ length: 40 }, () => 'dog').join(' '));
    expect(long.length).toBe(16); // model_max_length, end token kept
    expect(long[15]).toBe(v['</s>']);
  });

  it('embeds a padded batch as the hand computation does', async () => {
    const texts = ['a dog', 'photo of a cat on a car'];
    const got = await enc.encode(texts);
    texts.forEach((t, i) => {
      const want = byHand(enc.tokenize(t));
      for (let d = 0; d < enc.dim; d++) expect(got[i * enc.dim + d]).toBeCloseTo(want[d], 5);
    });
  });
});

describe('clipScore stage', () => {
  it('scores cosine(image, text) per row; NaN without caption or after an error; a filter can follow', async () => {
    const dim = enc.dim;
    const t = await enc.encode(['a dog', 'a cat']);
    const emb = new Float32Array(4 * dim);
    emb.set(t.subarray(0, dim), 0); // row 0: the text embedding of its own caption → 1
    emb.set(t.subarray(dim, 2 * dim), dim); // row 1: "a cat" image, caption "a dog"
    emb.set(t.subarray(0, dim), 2 * dim);
    emb.set(t.subarray(0, dim), 3 * dim);
    const batch: EmbeddingBatch = {
      rows: [{ key: '0', caption: 'a dog' }, { key: '1', caption: 'a dog' }, { key: '2' }, { key: '3', caption: 'a dog' }],
      dim,
      embeddings: emb,
      errors: [undefined, undefined, undefined, { reason: 'error:decode', message: 'bad jpeg' }],
    };
    const got: EmbeddingBatch[] = [];
    await pipeline(Readable.from([batch]), clipScore({ textModel: dir }), clipScoreFilter({ min: 0.999 }), async function (src: AsyncIterable<EmbeddingBatch>) {
      for await (const b of src) got.push(b);
    });
    const s = got[0].fields?.clip_score as Float64Array;
    expect(s[0]).toBeCloseTo(1, 6);
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += t[d] * t[dim + d];
    expect(s[1]).toBeCloseTo(dot, 6);
    expect(s[2]).toBeNaN();
    expect(s[3]).toBeNaN();
    expect(got[0].errors?.map((e) => e?.reason ?? null)).toEqual([null, 'filter:clip-score', 'filter:clip-score', 'error:decode']);
  });

  it('refuses a text tower of another width than the image embeddings', async () => {
    const b: EmbeddingBatch = { rows: [{ key: 'x', caption: 'a dog' }], dim: 8, embeddings: new Float32Array(8).fill(0.3) };
    await expect(pipeline(Readable.from([b]), clipScore({ textModel: enc }), async function* (src) {
      for await (const _ of src) yield;
    })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH' });
  });
});

describe('run with images and --text-model (shardsToManifest + alignment)', () => {
  it('scores every captioned image and drops all but the reference top half, nothing lost', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-align-'));
    const shards = join(repoRoot, 'data-samples', 'shards', '00000.tar');
    const model = join(repoRoot, 'data-samples', 'model');
    const r = await shardsToManifest({ inputs: shards, model, centroids: join(repoRoot, 'data-samples', 'centroids', 'centroids.npy'), out, keepRatio: 1, report: false, alignment: { textModel: dir, top: 0.5 } });
    const rows = readManifest(r.files.manifest as string);
    const n = r.stats.totals.samples;
    expect(rows.length).toBe(n);
    const errors = rows.filter((x) => x.reason.startsWith('error:')).length;
    expect(errors).toBe(0);
    // n < the 10,000-row warm-up: the pool threshold, so exactly n − (⌊n/2⌋ + 1) drops (no ties in cosines)
    expect(r.stats.totals.errors['filter:clip-score']).toBe(n - (Math.floor(n / 2) + 1));
  }, 120_000);
});
