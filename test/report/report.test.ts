/**
 * The report: ReportCollector over synthetic manifest rows and over the real exact job's manifest,
 * then report.html rendered in real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): no console errors, no network, one scatter point per non-empty cluster, and
 * the numbers on the page equal stats.json. Without chromium the browser tests skip locally and
 * fail in CI (process.env.CI set).
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneExact } from '../../pipelines/exact-prune.js';
import { Rng } from '../../src/core/rng.js';
import type { ManifestRow } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { ReportCollector, writeReportThumbnails, type ReportSection, type ReportThumbnails } from '../../src/report/report-data.js';
import { writeReport } from '../../src/report/report-html.js';
import { writeJsonAtomic, type RunStats } from '../../src/io/stats.js';
import { dbpSmallDir } from '../helpers/fixture.js';

/** What the page functions below use of a DOM element (tsconfig has no DOM lib: they run in the browser). */
interface DomElement {
  getAttribute(name: string): string | null;
}

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) {
  throw new Error(`${CHROMIUM} is missing and CI is set: the report tests need Debian's chromium (apt-get install chromium)`);
}
if (!haveChromium) console.warn(`[report.test] skipping browser tests: ${CHROMIUM} not found (install Debian's chromium; in CI this fails)`);

// ---------------------------------------------------------------- synthetic data

const WORDS = 'a photo of red blue small large dog cat car house tree river city night beach mountain painting drawing logo'.split(' ');

async function makeThumbs(count: number, side: number, seed: number, noise = 24): Promise<Buffer[]> {
  const rng = new Rng(seed);
  const out: Buffer[] = [];
  for (let t = 0; t < count; t++) {
    const raw = Buffer.alloc(side * side * 3);
    const [r0, g0, b0] = [rng.int(256), rng.int(256), rng.int(256)];
    const cx = rng.next() * side;
    const cy = rng.next() * side;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const d = Math.hypot(x - cx, y - cy) / side;
        const i = (y * side + x) * 3;
        const n = rng.int(noise);
        raw[i] = Math.min(255, (r0 * (1 - d) + 40 * d + n) | 0);
        raw[i + 1] = Math.min(255, (g0 * (1 - d) + (x * 255) / side / 3 + n) | 0);
        raw[i + 2] = Math.min(255, (b0 * d + (y * 255) / side / 3 + n) | 0);
      }
    }
    out.push(await sharp(raw, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 75 }).toBuffer());
  }
  return out;
}

interface Synthetic {
  stats: RunStats;
  report: ReportSection;
  nonEmpty: number;
}

/**
 * A streaming-like run: k clusters (the last one empty), n rows per cluster in random order,
 * δ ~ N(μ_j, 0.05), kept iff δ ≥ θ_j, a few errors and duplicates, thumbnails on every row.
 */
async function synthetic(out: string, k: number, perCluster: number, thumbs: Buffer[] | undefined, seed = 7): Promise<Synthetic> {
  const rng = new Rng(seed);
  const mu = Array.from({ length: k }, (_, j) => 0.18 + (0.35 * j) / k + 0.03 * rng.normal());
  const theta = mu.map((m) => m + 0.05 * (0.52 + 0.8 * (rng.next() * 2 - 1))); // keeps ~30% on average
  const dInter = Array.from({ length: k }, () => 0.35 + 0.3 * rng.next());
  const sizes = Array.from({ length: k }, (_, j) => (j === k - 1 ? 0 : Math.max(3, Math.round(perCluster * (0.3 + 1.4 * rng.next())))));
  const order: number[] = [];
  sizes.forEach((n, j) => {
    for (let i = 0; i < n; i++) order.push(j);
  });
  for (let i = order.length - 1; i > 0; i--) {
    const r = rng.int(i + 1);
    [order[i], order[r]] = [order[r], order[i]];
  }
  const collector = new ReportCollector({ k, seed: 1 });
  collector.setThroughput({ fetch: 2400.5, decode: 910.25, embed: 820, assign: 150000 });
  const n = new Array<number>(k).fill(0);
  const kept = new Array<number>(k).fill(0);
  const sum = new Array<number>(k).fill(0);
  const errors: Record<string, number> = {};
  let duplicates = 0;
  let keptTotal = 0;
  const total = order.length + 9;
  const batch: ManifestRow[] = [];
  const batchThumbs: (Buffer | undefined)[] = [];
  let t = 0;
  const flush = (): void => {
    collector.observe(batch, thumbs ? batchThumbs : undefined);
    batch.length = 0;
    batchThumbs.length = 0;
    t += 0.25;
    collector.tick(t);
  };
  const caption = (): string => Array.from({ length: 3 + rng.int(8) }, () => WORDS[rng.int(WORDS.length)]).join(' ');
  let row = 0;
  for (let i = 0; i < total; i++) {
    const key = String(100000 + i).padStart(9, '0');
    let r: ManifestRow;
    if (i % Math.floor(total / 9) === 5 && row < order.length - 1) {
      const reason = i % 2 ? 'error:download' : 'error:decode';
      errors[reason] = (errors[reason] ?? 0) + 1;
      r = { key, shard: '00000.tar', url: null, caption: caption(), decision: 'drop', reason, cluster: -1, distance: null, duplicate_of: null, error: 'synthetic' };
    } else {
      if (row >= order.length) {
        errors['error:decode'] = (errors['error:decode'] ?? 0) + 1;
        r = { key, shard: '00000.tar', url: null, caption: null, decision: 'drop', reason: 'error:decode', cluster: -1, distance: null, duplicate_of: null, error: 'synthetic' };
      } else {
        const j = order[row++];
        const d = Math.max(0.01, mu[j] + 0.05 * rng.normal());
        const dup = rng.next() < 0.02;
        const keep = !dup && d >= theta[j];
        if (dup) duplicates++;
        else {
          n[j]++;
          sum[j] += d;
        }
        if (keep) {
          kept[j]++;
          keptTotal++;
        }
        r = {
          key, shard: '00000.tar', url: null, caption: caption(), decision: keep ? 'keep' : 'drop', reason: dup ? 'duplicate' : 'dbp',
          cluster: j, distance: d, duplicate_of: dup ? '000100000' : null, error: null,
        };
      }
    }
    batch.push(r);
    batchThumbs.push(thumbs && r.cluster >= 0 ? thumbs[i % thumbs.length] : undefined);
    if (batch.length === 64) flush();
  }
  if (batch.length) flush();
  const { report, thumbnails } = collector.toJSON();
  const dIntra = n.map((c, j) => (c > 0 ? sum[j] / c : 0));
  const complexity = dIntra.map((d, j) => d * dInter[j]);
  const ex = complexity.map((c) => Math.exp(c / 0.5));
  const z = ex.reduce((a, b) => a + b, 0);
  const samples = total;
  const stats: RunStats = {
    version: 1,
    mode: 'streaming',
    method: 'Density-Based Pruning (Abbas et al., ICLR 2024)',
    params: { keep_ratio: 0.3, temperature: 0.5, num_nns: 20, balance: 0.5, which: 'hard', seed: 0 },
    totals: {
      samples, valid: samples - Object.values(errors).reduce((a, b) => a + b, 0), n_target: Math.floor(0.3 * samples), kept: keptTotal,
      dropped: samples - keptTotal, keep_ratio: keptTotal / samples, errors, duplicates, renormalized: 0, k, min_samples: 3, lambda: 0.01,
      seconds: t, samples_per_sec: samples / t,
    },
    clusters: {
      n, d_intra: dIntra, d_inter: dInter, complexity, p: ex.map((e) => e / z),
      quota: kept.map((c, j) => (n[j] > 0 ? c + 0.37 : 0)), quota_real: kept.map((c) => c + 0.37), lb: n.map((c) => Math.min(3, c)), ub: n,
      kept, threshold: theta.map((th, j) => (n[j] > 0 ? th : null)),
    },
    report,
  };
  await writeJsonAtomic(join(out, 'stats.json'), stats);
  await writeReportThumbnails(out, thumbnails);
  // compare with what is on disk (floats rounded to 9 digits there)
  const onDisk = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as RunStats;
  return { stats: onDisk, report, nonEmpty: sizes.filter((s) => s > 0).length };
}

// ---------------------------------------------------------------- the collector alone

describe('ReportCollector', () => {
  it('validates its options', () => {
    for (const bad of [{ k: 0 }, { k: 3, bins: 2 }, { k: 3, thumbsPerCluster: -1 }, { k: 3, seed: -1 }, { k: 3, maxTimelinePoints: 1 }]) {
      expect(() => new ReportCollector(bad)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    }
    expect(() => new ReportCollector({ k: 2 }).tick(Number.NaN)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });

  it('counts every row: histograms sum to the cluster sizes, exact δ extremes, errors by reason', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-'));
    const thumbs = await makeThumbs(8, 32, 3);
    const { stats, report } = await synthetic(out, 20, 60, thumbs);
    const hist = report.histograms;
    for (let j = 0; j < 20; j++) {
      const all = hist.all[j].reduce((a, b) => a + b, 0);
      const kept = hist.kept[j].reduce((a, b) => a + b, 0);
      // duplicates have a cluster and δ too: histograms hold every decided row of the cluster
      expect(all).toBeGreaterThanOrEqual(stats.clusters.n[j]);
      expect(kept).toBe(stats.clusters.kept[j]);
      expect(hist.all[j].length).toBeLessThanOrEqual(48);
      if (stats.clusters.kept[j] > 0) expect(report.delta.kept_min[j]).toBeGreaterThanOrEqual(stats.clusters.threshold![j]!);
    }
    expect(hist.all[19]).toEqual([]);
    expect(report.observed.samples).toBe(stats.totals.samples);
    expect(report.observed.kept).toBe(stats.totals.kept);
    expect(report.errors).toEqual(Object.fromEntries(Object.entries(stats.totals.errors).sort((a, b) => b[1] - a[1])));
    expect(report.observed.duplicates).toBe(stats.totals.duplicates);
    expect(report.timeline.samples.at(-1)).toBe(stats.totals.samples);
    expect(report.throughput.embed).toBe(820);
    const payload = JSON.parse(readFileSync(join(out, 'thumbnails.json'), 'utf8')) as ReportThumbnails;
    for (let j = 0; j < 19; j++) {
      const mine = payload.items.filter((t) => t.cluster === j);
      expect(mine.filter((t) => t.decision === 'keep').length).toBe(Math.min(4, stats.clusters.kept[j]));
      expect(mine.filter((t) => t.decision === 'drop').length).toBeLessThanOrEqual(4);
    }
  });

  it('bounds the timeline, reservoir and byte budget, and is deterministic for a seed', () => {
    const run = (seed: number): ReturnType<ReportCollector['toJSON']> => {
      const c = new ReportCollector({ k: 3, seed, thumbsPerCluster: 2, maxTimelinePoints: 50,
        // 5 thumbnails: base64 (400) + caption (139 chars + "…") + key (≤ 5) + markup (96)
        thumbBudgetBytes: 5 * (400 + 142 + 5 + 96) });
      const jpeg = (i: number): Buffer => Buffer.alloc(300, i & 255);
      for (let i = 0; i < 10_000; i++) {
        const row: ManifestRow = { key: `k${i}`, shard: null, url: null, caption: 'x'.repeat(500), decision: i % 7 < 2 ? 'keep' : 'drop', reason: 'dbp', cluster: i % 3, distance: (i % 97) / 100, duplicate_of: null, error: null };
        c.observe([row], [jpeg(i)]);
        c.tick(i / 100);
      }
      return c.toJSON();
    };
    const a = run(5);
    expect(a.report.timeline.t.length).toBeLessThanOrEqual(50);
    expect(a.report.timeline.t.at(-1)).toBe(99.99);
    expect(a.report.timeline.samples.at(-1)).toBe(10_000);
    expect(a.thumbnails.items.length).toBe(5); // budget: 5 thumbnails of 300 bytes
    expect(a.report.thumbnails.over_budget).toBe(12 - 5);
    expect(a.thumbnails.items.every((t) => t.caption!.length <= 140)).toBe(true);
    // round-robin: every cluster's first kept and dropped before anybody's second
    expect(a.thumbnails.items.slice(0, 5).map((t) => `${t.cluster}${t.decision}`)).toEqual(['0keep', '0drop', '1keep', '1drop', '2keep']);
    expect(run(5).thumbnails).toEqual(a.thumbnails);
    expect(run(6).thumbnails.items.map((t) => t.key)).not.toEqual(a.thumbnails.items.map((t) => t.key));
  });
});

describe('writeReport', () => {
  it('refuses a missing or foreign stats.json with stable codes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-bad-'));
    await expect(writeReport(out)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
    writeFileSync(join(out, 'stats.json'), '{"version": 2}');
    await expect(writeReport(out)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT' });
  });
});

// ---------------------------------------------------------------- in the browser

describe.skipIf(!haveChromium)('report.html in headless Chromium', () => {
  let ctx: BrowserContext;

  beforeAll(async () => {
    ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'dbprune-chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
  });
  afterAll(async () => {
    await ctx?.close();
  });

  /** Opens the report; returns the page and what went wrong (console errors, any request but the page itself). */
  async function open(path: string): Promise<{ page: Page; problems: string[] }> {
    const page = await ctx.newPage();
    const problems: string[] = [];
    const self = pathToFileURL(path).href;
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (r.url() !== self && !r.url().startsWith('data:')) problems.push(`request: ${r.url()}`);
    });
    page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()}`));
    await page.goto(self);
    await page.waitForSelector('body[data-ready="1"]');
    return { page, problems };
  }

  const num = (s: string | null): number => Number((s ?? '').replace(/[,\s%s]/g, ''));

  it('shows a streaming run: one point per non-empty cluster, numbers equal stats.json, thumbnails, timeline', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-'));
    const thumbs = await makeThumbs(48, 40, 11);
    const { stats, nonEmpty } = await synthetic(out, 40, 80, thumbs);
    const path = await writeReport(out);
    expect(path).toBe(join(out, 'report.html'));
    const { page, problems } = await open(path);

    const ids = await page.$$eval('#scatter circle[data-cluster]', (els: DomElement[]) => els.map((e) => Number(e.getAttribute('data-cluster'))));
    expect(ids.length).toBe(nonEmpty);
    expect(new Set(ids)).toEqual(new Set(stats.clusters.n.flatMap((n, j) => (n > 0 ? [j] : []))));

    expect(num(await page.textContent('#total-samples'))).toBe(stats.totals.samples);
    expect(num(await page.textContent('#total-kept'))).toBe(stats.totals.kept);
    expect(Number(await page.getAttribute('#total-kept', 'data-value'))).toBe(stats.totals.kept);

    // pick the most complex cluster in the <select>
    const j = stats.clusters.complexity.reduce((b, c, i) => (stats.clusters.n[i] > 0 && c > stats.clusters.complexity[b] ? i : b), 0);
    await page.selectOption('#cluster-select', String(j));
    expect(num(await page.textContent('#cluster-detail [data-field="kept"]'))).toBe(stats.clusters.kept[j]);
    expect(Number(await page.getAttribute('#cluster-detail [data-field="quota"]', 'data-value'))).toBe(stats.clusters.quota[j]);
    expect(num(await page.textContent('#cluster-detail [data-field="n"]'))).toBe(stats.clusters.n[j]);
    expect(Number(await page.getAttribute('#cluster-detail [data-field="threshold"]', 'data-value'))).toBe(stats.clusters.threshold![j]);
    expect(await page.$('#hist svg #threshold-line')).not.toBeNull();
    // the quota chart: one group per non-empty cluster, in complexity order
    const quotaOrder = await page.$$eval('#quota g[data-cluster]', (els: DomElement[]) => els.map((e) => Number(e.getAttribute('data-cluster'))));
    expect(quotaOrder.length).toBe(nonEmpty);
    for (let i = 1; i < quotaOrder.length; i++) expect(stats.clusters.complexity[quotaOrder[i]]).toBeGreaterThanOrEqual(stats.clusters.complexity[quotaOrder[i - 1]]);
    // thumbnails of the chosen cluster, loaded, with captions
    const imgs = await page.$$eval('#cluster-thumbs img', (els) => els.map((e) => (e as unknown as { naturalWidth: number }).naturalWidth));
    expect(imgs.length).toBeGreaterThan(0);
    expect(imgs.every((w) => w === 40)).toBe(true);
    expect(imgs.length).toBeLessThanOrEqual(8);
    expect((await page.textContent('#cluster-thumbs figcaption'))!.length).toBeGreaterThan(3);
    expect(await page.$$eval('#gallery .gal-row', (els) => els.length)).toBeGreaterThan(0);
    // errors by reason and the timeline
    for (const [reason, count] of Object.entries(stats.totals.errors)) {
      expect(Number(await page.getAttribute(`#errors [data-name="${reason}"]`, 'data-value'))).toBe(count);
    }
    expect(await page.$('#progress svg path')).not.toBeNull();
    expect(await page.$$eval('#throughput .row', (els) => els.length)).toBe(5);
    await page.evaluate('document.fonts.ready');
    await page.screenshot({ path: '/tmp/report.png', fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the real exact job on the golden fixture, thresholds = the smallest kept δ', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-exact-'));
    const { stats, files } = await pruneExact({
      embeddings: join(dbpSmallDir, 'embeddings.npy'),
      keys: join(dbpSmallDir, 'keys.txt'),
      centroids: join(dbpSmallDir, 'centroids.npy'),
      out,
      keepRatio: 0.3,
      backend: 'js',
      format: 'jsonl',
    });
    // what the pipeline will do in pass 2: observe the rows as they are written
    const rows = readManifest(files.manifest);
    const c = new ReportCollector({ k: stats.totals.k });
    for (let i = 0; i < rows.length; i += 4096) {
      c.observe(rows.slice(i, i + 4096));
      c.tick(i / 1e5);
    }
    c.setThroughput({ assign: stats.totals.samples_per_sec });
    const { report } = c.toJSON();
    await writeJsonAtomic(files.stats, { ...stats, report });
    const onDisk = JSON.parse(readFileSync(files.stats, 'utf8')) as RunStats;
    const path = await writeReport(out);
    const { page, problems } = await open(path);

    const nonEmpty = onDisk.clusters.n.filter((n) => n > 0).length;
    expect(await page.$$eval('#scatter circle[data-cluster]', (els) => els.length)).toBe(nonEmpty);
    expect(num(await page.textContent('#total-kept'))).toBe(onDisk.totals.kept);
    expect(num(await page.textContent('#total-samples'))).toBe(onDisk.totals.samples);
    for (const j of [0, 17, onDisk.totals.k - 1]) {
      await page.selectOption('#cluster-select', String(j));
      expect(num(await page.textContent('#cluster-detail [data-field="quota"]'))).toBe(onDisk.clusters.quota[j]);
      expect(num(await page.textContent('#cluster-detail [data-field="kept"]'))).toBe(onDisk.clusters.kept[j]);
      const minKept = Math.min(...rows.filter((r) => r.cluster === j && r.decision === 'keep').map((r) => r.distance!));
      expect(Number(await page.getAttribute('#cluster-detail [data-field="threshold"]', 'data-value'))).toBeCloseTo(minKept, 6);
    }
    expect(await page.textContent('#threshold-note')).toContain('smallest kept δ');
    expect(await page.textContent('#gallery')).toContain('No thumbnails');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('renders an older stats.json without a report section or thumbnails', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-old-'));
    const { stats } = await synthetic(out, 6, 20, undefined);
    const old: Partial<RunStats> = { ...stats };
    delete old.report;
    writeFileSync(join(out, 'stats.json'), JSON.stringify(old));
    const { page, problems } = await open(await writeReport(out));
    expect(await page.$$eval('#scatter circle[data-cluster]', (els) => els.length)).toBe(5);
    expect(num(await page.textContent('#total-kept'))).toBe(stats.totals.kept);
    expect(await page.textContent('#hist')).toContain('no distance histograms');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('stays under 5 MB for k = 500 with thumbnails on', async () => {
    const out = mkdtempSync(join(tmpdir(), 'dbprune-report-k500-'));
    const thumbs = await makeThumbs(96, 40, 5, 90); // noisy: ~1.3 KB each, like photos, so the budget bites
    const { nonEmpty } = await synthetic(out, 500, 16, thumbs, 3);
    const path = await writeReport(out);
    const bytes = statSync(path).size;
    const report = (JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as { report: ReportSection }).report;
    console.log(
      `[report.test] k=500: report.html ${(bytes / 1e6).toFixed(2)} MB, stats.json ${(statSync(join(out, 'stats.json')).size / 1e6).toFixed(2)} MB, ` +
        `thumbnails ${report.thumbnails.included} (${(report.thumbnails.jpeg_bytes / 1e6).toFixed(2)} MB jpeg, ${(report.thumbnails.bytes / 1e6).toFixed(2)} MB budgeted, ${report.thumbnails.over_budget} over budget), mean thumb ${(thumbs.reduce((a, b) => a + b.length, 0) / thumbs.length).toFixed(0)} B`,
    );
    expect(bytes).toBeLessThan(5e6);
    expect(report.thumbnails.over_budget).toBeGreaterThan(0);
    const { page, problems } = await open(path);
    expect(await page.$$eval('#scatter circle[data-cluster]', (els) => els.length)).toBe(nonEmpty);
    expect(problems).toEqual([]);
    await page.close();
  });
});
