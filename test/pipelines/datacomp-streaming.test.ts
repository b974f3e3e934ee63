/**
 * `run --datacomp` (embeddingsToManifest) with the streaming filter stages: every row out once, the
 * filters' reasons counted, a fixed --clip-score-min equal to the exact rule, the basic filter's
 * language test on hand-checked captions (eld), and DBP statistics only over survivors.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { embeddingsToManifest } from '../../pipelines/embeddings-to-manifest.js';
import { fit } from '../../pipelines/fit.js';
import type { EmbeddingBatch } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { basicFilter, loadLanguageDetector } from '../../src/stages/basic-filter.js';
import { clipScoreFilter } from '../../src/stages/clip-score-filter.js';
import { dataCompDir, loadDataCompExpected } from '../helpers/datacomp.js';

let centroids = '';
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbprune-dcs-fit-'));
  centroids = (await fit({ datacomp: dataCompDir, k: 8, sample: 1000, seed: 0, out: dir })).centroidsPath;
});

describe('run --datacomp (streaming)', () => {
  it('drops below --clip-score-min exactly as the reference threshold would, every row once', async () => {
    const exp = loadDataCompExpected();
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dcs-'));
    const t = exp.clip_top['0.3'].threshold;
    const r = await embeddingsToManifest({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { basic: 'no-language', clipScore: { min: t } }, report: false });
    const rows = readManifest(r.files.manifest as string);
    expect(rows.length).toBe(360);
    const passed = rows.filter((x) => !x.reason.startsWith('filter:')).map((x) => x.uid as string).sort();
    expect(passed).toEqual(exp['basic_no_language_and_clip_top_0.3']);
    expect(r.stats.totals.valid).toBe(passed.length); // DBP saw only the survivors
    expect(r.stats.totals.errors['filter:basic'] + r.stats.totals.errors['filter:clip-score']).toBe(360 - passed.length);
    expect((r.stats.filters as { clip_score: { mode: string } }).clip_score.mode).toBe('streaming');
  });

  it('--clip-score-top streaming: held warm-up decides the small pool with the pool threshold', async () => {
    const exp = loadDataCompExpected();
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dcs-'));
    const r = await embeddingsToManifest({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { clipScore: { top: 0.3 } }, report: false, batchRows: 50 });
    const rows = readManifest(r.files.manifest as string);
    expect(rows.map((x) => x.uid).length).toBe(360);
    // 360 rows < warm-up (10,000): every row is decided with the threshold of the whole pool = exact
    expect(rows.filter((x) => x.decision === 'keep').map((x) => x.uid as string).sort()).toEqual(exp.clip_top['0.3'].kept);
    // kept_uids.npy: the same set as DataComp's sorted u8,u8 subset
    const buf = readFileSync(r.files.uids as string);
    const h = buf.readUInt16LE(8) + 10;
    const pairs: [string, string][] = [];
    for (let o = h; o < buf.length; o += 16) pairs.push([buf.readBigUInt64LE(o).toString(), buf.readBigUInt64LE(o + 8).toString()]);
    expect(pairs).toEqual(exp['kept_uids_clip_top_0.3']);
  });
});

describe('basicFilter stage', () => {
  it('tests English with eld (hand-checked captions) and marks, never drops', async () => {
    const detect = await loadLanguageDetector();
    expect(detect('a photo of a dog on the beach')).toBe('en');
    expect(detect('una foto de un perro en la playa')).not.toBe('en');
    const texts = ['a photo of a dog on the beach', 'una foto de un perro en la playa', 'a photo of a dog on the beach', 'a photo of a cat'];
    const b: EmbeddingBatch = {
      rows: texts.map((_, i) => ({ key: String(i) })),
      dim: 1,
      embeddings: new Float32Array(4).fill(1),
      fields: { text: texts, original_width: Float64Array.from([640, 640, 100, 640]), original_height: Float64Array.from([480, 480, 480, 480]) },
    };
    const stage = basicFilter({ detect });
    const got: EmbeddingBatch[] = [];
    await pipeline(Readable.from([b]), stage, async function (src: AsyncIterable<EmbeddingBatch>) {
      for await (const x of src) got.push(x);
    });
    expect(got[0].rows.length).toBe(4);
    expect(got[0].errors?.map((e) => e?.message ?? null)).toEqual([null, 'caption is not English', 'min(original_width, original_height) < 200', null]);
    expect(stage.counts).toEqual({ language: 1, caption: 0, size: 1, aspect: 0 });
  });

  it('clipScoreFilter validates its options at construction', () => {
    expect(() => clipScoreFilter({})).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => clipScoreFilter({ min: 0.2, top: 0.3 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});
