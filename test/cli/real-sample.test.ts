/**
 * The real bundled sample (data-samples/openclipart: openclipart drawings in 22 categories, the
 * MobileNetV2 encoder converted from nsfwjs) through the real CLI:
 * - embed → fit (from images) → run on one shard plus two oversize drawings, and embed → prune:
 *   clusters are clearly purer than the majority-label baseline, rows in = rows out, oversize
 *   images become error:decode rows that give their dimensions; embed resumes per part;
 * - `dbprune run` with no flags (what `npm start` runs) prunes all bundled drawings with the real
 *   encoder and prints the report path.
 * Labels are the `concept` column of the shards' parquet (the openclipart category).
 */
import { createReadStream, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { readManifest, type ManifestRecord } from '../../src/io/manifest.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { readTarSamples } from '../../src/io/tar.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import type { RunStats } from '../../src/io/stats.js';
import { readJson } from '../helpers/json.js';
import { makeTar, tempDir, writeFile } from '../stages/image-fixtures.js';

const real = join(repoRoot, 'data-samples', 'openclipart');
const model = join(real, 'model');
const shard0 = join(real, 'shards', '00000.tar');
const tmp = tempDir('dbprune-real-');
let oversizeTar: string;
const SLOW = { timeoutMs: 300_000 };

async function labels(parquets: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const p of parquets) for (const r of await parquetReadObjects({ file: await asyncBufferFromFile(p) })) m.set(String(r.key), String(r.concept));
  return m;
}

/** Cluster purity (Σ_clusters max label count / n) and the majority-label share, over assigned rows. */
function purity(rows: ManifestRecord[], label: Map<string, string>): { purity: number; baseline: number; n: number } {
  const byCluster = new Map<number, Map<string, number>>();
  const overall = new Map<string, number>();
  let n = 0;
  for (const r of rows) {
    if (r.cluster < 0) continue;
    const l = label.get(r.key);
    if (l === undefined) throw new Error(`no label for ${r.key}`);
    const m = byCluster.get(r.cluster) ?? new Map<string, number>();
    m.set(l, (m.get(l) ?? 0) + 1);
    byCluster.set(r.cluster, m);
    overall.set(l, (overall.get(l) ?? 0) + 1);
    n++;
  }
  let pure = 0;
  for (const m of byCluster.values()) pure += Math.max(...m.values());
  return { purity: pure / n, baseline: Math.max(...overall.values()) / n, n };
}

beforeAll(async () => {
  // Two real drawings blown up past decode's 50-megapixel limit, like openclipart's 10k×16k originals.
  const picked: ImageSample[] = [];
  for await (const s of readTarSamples(createReadStream(shard0))) if (picked.length < 2) picked.push(s);
  const big = [
    { key: 'oversize0', w: 9000, h: 6000, fmt: 'jpeg' as const, ext: 'jpg' },
    { key: 'oversize1', w: 7200, h: 7200, fmt: 'png' as const, ext: 'png' },
  ];
  const members = [];
  for (const [i, b] of big.entries()) {
    const img = await sharp(picked[i].image).resize(b.w, b.h, { fit: 'fill', kernel: 'nearest' }).toFormat(b.fmt, b.fmt === 'png' ? { compressionLevel: 1 } : { quality: 50 }).toBuffer();
    members.push({ name: `${b.key}.${b.ext}`, data: img }, { name: `${b.key}.txt`, data: 'too big' }, { name: `${b.key}.json`, data: JSON.stringify({ key: b.key, concept: 'oversize' }) });
  }
  oversizeTar = writeFile(tmp.dir, 'oversize.tar', await makeTar(members));
}, 60_000);
afterAll(() => tmp.cleanup());

describe('the real bundled sample (openclipart + MobileNetV2)', () => {
  it('embed → fit → run and embed → prune: clusters purer than the majority label, nothing lost, oversize → error:decode with dimensions', async () => {
    // embed: 250 drawings + 2 oversize, parts of 100 rows.
    const emb = join(tmp.dir, 'emb');
    const e = await runCli(['embed', shard0, oversizeTar, '--model', model, '--out', emb, '--part-rows', '100', '-q'], SLOW);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/embedded 250 of 252 samples \(2 errors: error:decode 2\) in [\d.]+ s, [\d.]+ rows\/s, d = 1280/);
    expect(readdirSync(join(emb, 'img_emb')).sort()).toEqual(['img_emb_0.npy', 'img_emb_1.npy', 'img_emb_2.npy']);
    const metaFiles = [0, 1, 2].map((n) => join(emb, 'metadata', `metadata_${n}.parquet`));
    const meta = (await Promise.all(metaFiles.map(async (f) => (await parquetReadObjects({ file: await asyncBufferFromFile(f) })) as Record<string, unknown>[]))).flat();
    const npys = await Promise.all([0, 1, 2].map((n) => readNpyFloat32(join(emb, 'img_emb', `img_emb_${n}.npy`))));
    expect(npys.map((x) => x.rows)).toEqual([100, 100, 52]);
    expect(meta.length).toBe(252);
    expect(meta[0]).toMatchObject({ key: '000000000', status: 'success', error: null });
    expect(meta.every((r) => typeof r.concept === 'string')).toBe(true); // sidecar columns kept
    expect(meta.filter((r) => r.concept !== 'oversize').every((r) => typeof r.url === 'string' && typeof r.sha256 === 'string')).toBe(true);
    const failed = meta.filter((r) => r.error !== null);
    expect(failed.map((r) => [r.key, r.error, r.status])).toEqual([
      ['oversize0', 'error:decode', 'failed_to_resize'],
      ['oversize1', 'error:decode', 'failed_to_resize'],
    ]);
    expect(failed[0].error_message).toContain('9000×6000 = 54000000 pixels');
    expect(failed[1].error_message).toContain('7200×7200 = 51840000 pixels');
    const last = npys[2];
    expect(Number.isNaN(last.data[(last.rows - 1) * 1280])).toBe(true);

    // Resume: the two full parts are kept, the short last part is redone, same result.
    const again = await runCli(['embed', shard0, oversizeTar, '--model', model, '--out', emb, '--part-rows', '100', '-q'], SLOW);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('resumed: kept 2 complete part(s), 200 samples');
    expect(again.stdout).toMatch(/embedded 50 of 52 samples/);
    expect((await readNpyFloat32(join(emb, 'img_emb', 'img_emb_2.npy'))).data).toEqual(last.data);

    // fit straight from the images (a uniform sample = all 250 here), k = number of categories.
    const cents = join(tmp.dir, 'centroids');
    const f = await runCli(['fit', shard0, '--model', model, '-k', '22', '--sample', '1000', '--out', cents, '-q'], SLOW);
    expect(f.stderr).toBe('');
    expect(f.code).toBe(0);
    expect(JSON.parse(f.stdout)).toMatchObject({ k: 22, dim: 1280, sampleSize: 250, samplesSeen: 250, failed: 0 });

    // run (streaming) with those centroids over the same images + the oversize shard.
    const out = join(tmp.dir, 'run');
    const r = await runCli(['run', shard0, oversizeTar, '--model', model, '--centroids', join(cents, 'centroids.npy'), '--out', out, '--format', 'jsonl', '-q'], SLOW);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows.length).toBe(252);
    expect(new Set(rows.map((x) => x.key)).size).toBe(252);
    const bad = rows.filter((x) => x.reason === 'error:decode');
    expect(bad.map((x) => x.key).sort()).toEqual(['oversize0', 'oversize1']);
    expect(bad.find((x) => x.key === 'oversize0')?.error).toMatch(/9000×6000 = 54000000 pixels, above maxPixels 50000000/);
    const label = await labels([join(real, 'shards', '00000.parquet')]);
    const p = purity(rows, label);
    expect(p.n).toBe(250);
    // 22 categories; measured: purity ≈ 0.3–0.4 against a majority baseline ≈ 0.07.
    expect(p.purity).toBeGreaterThan(Math.max(0.2, 2.5 * p.baseline));

    // Exact mode over the embed output with the same centroids: every row out, the failed ones as errors.
    const pruned = join(tmp.dir, 'prune');
    const x = await runCli(['prune', '--embeddings', emb, '--centroids', join(cents, 'centroids.npy'), '--keep', '0.5', '--out', pruned, '--format', 'jsonl', '-q'], SLOW);
    expect(x.stderr).toBe('');
    expect(x.code).toBe(0);
    const prows = readManifest(join(pruned, 'manifest.jsonl'));
    expect(prows.length).toBe(252);
    expect(prows.filter((row) => row.reason.startsWith('error:')).map((row) => row.key).sort()).toEqual(['oversize0', 'oversize1']);
    expect(purity(prows, label).purity).toBeGreaterThan(Math.max(0.2, 2.5 * p.baseline));
  }, 600_000);

  it('no flags (npm start): prunes every bundled drawing with the real encoder and prints the report path', async () => {
    const r = await runCli(['run', '-q'], { cwd: tmp.dir, ...SLOW });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const shardParquets = readdirSync(join(real, 'shards')).filter((f) => f.endsWith('.parquet')).map((f) => join(real, 'shards', f));
    const label = await labels(shardParquets);
    expect(r.stdout).toMatch(new RegExp(`kept \\d+ of ${label.size.toLocaleString('en-US')} samples`));
    expect(r.stdout).toContain('report: out/report.html');
    const rows = readManifest(join(tmp.dir, 'out', 'manifest.parquet'));
    expect(rows.length).toBe(label.size);
    const stats = readJson<RunStats>(join(tmp.dir, 'out', 'stats.json'));
    expect(stats.totals.kept).toBe(rows.filter((row) => row.decision === 'keep').length);
    const p = purity(rows, label);
    expect(p.purity).toBeGreaterThan(Math.max(0.2, 2.5 * p.baseline));
  }, 300_000);
});
