/**
 * `pruneExact` over DataComp shards: CLIP-score only, basic ∩ CLIP score and computed cosine scores
 * against the numpy reference; kept_uids.npy as DataComp's resharder reads it; the combined order
 * CLIP score → SemDeDup → DBP equal to DBP run on the surviving rows alone; --target; and the
 * errors for misaligned or incomplete shards.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { pruneExact } from '../../pipelines/exact-prune.js';
import { fit } from '../../pipelines/fit.js';
import { readManifest } from '../../src/io/manifest.js';
import { readNpyHeader, writeNpy } from '../../src/io/npy.js';
import { NpzFile } from '../../src/io/npz.js';
import { dataCompDir, dataCompShards, loadDataCompColumns, loadDataCompExpected } from '../helpers/datacomp.js';

const expected = loadDataCompExpected();
let centroids = '';

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbprune-dc-fit-'));
  const r = await fit({ datacomp: dataCompDir, k: 8, sample: 1000, seed: 0, out: dir });
  expect(r.rowsRead).toBe(360);
  centroids = r.centroidsPath;
});

function keptUids(manifest: string): string[] {
  return readManifest(manifest)
    .filter((r) => r.decision === 'keep')
    .map((r) => r.uid as string)
    .sort();
}

/** kept_uids.npy: a (n,) structured array of u8,u8, read as [upper, lower] decimal strings. */
function readUidSubset(path: string): [string, string][] {
  const buf = readFileSync(path);
  const h = buf.readUInt16LE(8) + 10;
  expect(buf.toString('latin1', 10, h)).toContain("('f0', '<u8'), ('f1', '<u8')");
  const out: [string, string][] = [];
  for (let o = h; o < buf.length; o += 16) out.push([buf.readBigUInt64LE(o).toString(), buf.readBigUInt64LE(o + 8).toString()]);
  return out;
}

describe('prune --datacomp (exact)', () => {
  it('CLIP score only: keeps exactly the reference top-30% set and writes its sorted u8,u8 subset', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const { stats, files } = await pruneExact({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { clipScore: { top: 0.3 } }, report: false });
    expect(keptUids(files.manifest)).toEqual(expected.clip_top['0.3'].kept);
    expect(readUidSubset(files.uids as string)).toEqual(expected['kept_uids_clip_top_0.3']);
    expect(stats.totals.samples).toBe(360);
    expect(stats.totals.errors['filter:clip-score']).toBe(360 - expected.clip_top['0.3'].kept.length);
    expect((stats.filters as { clip_score: { threshold: number } }).clip_score.threshold).toBe(expected.clip_top['0.3'].threshold);
    const rows = readManifest(files.manifest);
    expect(rows.length).toBe(360); // nothing disappears
    expect(new Set(rows.map((r) => r.uid)).size).toBe(360);
    expect(rows.filter((r) => r.reason === 'filter:clip-score').every((r) => r.decision === 'drop' && r.status === 'success')).toBe(true);
  });

  it('ties: top 10% keeps every row tied at the threshold (39 rows for n = 36)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const { files } = await pruneExact({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { clipScore: { top: 0.1 } }, report: false });
    const want = expected.clip_top['0.1'];
    expect(want.ties_at_threshold).toBeGreaterThan(1);
    expect(keptUids(files.manifest)).toEqual(want.kept);
  });

  it('basic (no language) ∩ CLIP score equals the reference intersection; reasons in order', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const { stats, files } = await pruneExact({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { basic: 'no-language', clipScore: { top: 0.3 } }, format: 'jsonl', report: false });
    expect(keptUids(files.manifest)).toEqual(expected['basic_no_language_and_clip_top_0.3']);
    const rows = readManifest(files.manifest);
    const basicSet = new Set(expected.basic_no_language);
    // a row failing both filters is reported as basic (the first in the order)
    for (const r of rows) if (!basicSet.has(r.uid as string)) expect(r.reason).toBe('filter:basic');
    expect(stats.totals.errors['filter:basic']).toBe(360 - expected.basic_no_language.length);
  });

  it('computes cosine(l14_img, l14_txt) from the float16 npz when asked, to the reference set', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const { files } = await pruneExact({ datacomp: dataCompDir, centroids, out, keepRatio: 1, filters: { clipScore: { top: 0.3, from: 'l14', force: true } }, report: false });
    expect(keptUids(files.manifest)).toEqual(expected.cosine_top['0.3'].kept);
  });

  it('CLIP score → SemDeDup → DBP equals SemDeDup + DBP run on the surviving rows alone', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const params = { keepRatio: 0.4, dedupEps: [0.05], report: false } as const;
    const combined = await pruneExact({ datacomp: dataCompDir, centroids, out, ...params, filters: { clipScore: { top: 0.3 } } });
    // The survivors' l14_img rows, in pool order, as a plain .npy + keys (the same float16 values).
    const survivors = new Set(expected.clip_top['0.3'].kept);
    const cols = loadDataCompColumns();
    const rows: Float32Array[] = [];
    let i = 0;
    for (const shard of dataCompShards) {
      const npz = await NpzFile.open(shard.npz);
      for await (const b of npz.rows('l14_img', { batchRows: 50 })) {
        for (let r = 0; r < b.rows; r++, i++) if (survivors.has(cols.uid[i])) rows.push(b.data.slice(r * 768, (r + 1) * 768));
      }
      npz.close();
    }
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-dc-sub-'));
    const emb = new Float32Array(rows.length * 768);
    rows.forEach((r, j) => emb.set(r, j * 768));
    await writeNpy(join(dir, 'emb.npy'), emb, [rows.length, 768]);
    writeFileSync(join(dir, 'keys.txt'), `${cols.uid.filter((u) => survivors.has(u)).join('\n')}\n`);
    const alone = await pruneExact({ embeddings: join(dir, 'emb.npy'), keys: join(dir, 'keys.txt'), centroids, out: join(dir, 'out'), ...params });
    expect(combined.stats.clusters.n).toEqual(alone.stats.clusters.n);
    expect(combined.stats.clusters.quota).toEqual(alone.stats.clusters.quota);
    expect(combined.stats.totals.duplicates).toBe(alone.stats.totals.duplicates);
    expect(combined.stats.totals.duplicates).toBeGreaterThan(0); // SemDeDup did act between the filter and DBP
    expect(keptUids(combined.files.manifest)).toEqual(readFileSync(alone.files.kept, 'utf8').split('\n').filter(Boolean).sort());
  });

  it('--target keeps exactly N of the survivors', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-dc-'));
    const { stats } = await pruneExact({ datacomp: dataCompDir, centroids, out, target: 37, filters: { clipScore: { top: 0.3 } }, report: false });
    expect(stats.totals.kept).toBe(37);
    expect(stats.totals.valid).toBe(expected.clip_top['0.3'].kept.length);
    expect(stats.params.target).toBe(37);
    await expect(pruneExact({ datacomp: dataCompDir, centroids, out, keepRatio: 0.5, target: 3 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_USAGE' });
  });

  it('names the shard when parquet and npz rows disagree, or a partner file is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-dc-bad-'));
    copyFileSync(dataCompShards[0].parquet, join(dir, '00000007.parquet'));
    await writeNpy(join(dir, 'l14.npy'), new Float32Array(119 * 768).fill(0.01), [119, 768], 'float16');
    writeFileSync(join(dir, '00000007.npz'), zipSync({ 'l14_img.npy': [readFileSync(join(dir, 'l14.npy')), { level: 6 }] }));
    expect((await readNpyHeader(join(dir, 'l14.npy'))).rows).toBe(119);
    const err = await pruneExact({ datacomp: dir, centroids, out: join(dir, 'o'), keepRatio: 0.5 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_ROW_COUNT_MISMATCH', context: { shard: '00000007' } });
    expect(String((err as Error).message)).toContain('00000007');
    copyFileSync(dataCompShards[1].parquet, join(dir, '00000008.parquet'));
    await expect(pruneExact({ datacomp: join(dir, '00000008.parquet'), centroids, out: join(dir, 'o'), keepRatio: 0.5 })).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_INPUT_NOT_FOUND',
      context: { shard: '00000008' },
    });
  });
});
