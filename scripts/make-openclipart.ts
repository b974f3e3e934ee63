/**
 * Builds the real bundled sample, data-samples/openclipart/:
 *
 *   npx tsx scripts/make-openclipart.ts [--png-root <dir>] [--nsfwjs <dir>] [--out <dir>]
 *
 * - `model/`: nsfwjs's MobileNetV2 converted to ONNX (scripts/make-real-model.ts; `npm pack nsfwjs@4.4.0`
 *   unless `--nsfwjs` names an unpacked copy).
 * - `shards/0000N.{tar,parquet}` + `0000N_stats.json`: openclipart drawings (Debian `openclipart-png`,
 *   public domain; fetched with `apt-get download openclipart-png` + `dpkg-deb -x` unless
 *   `--png-root` names its `usr/share/openclipart/png`), {@link PER_CATEGORY} per category from
 *   {@link CATEGORIES} (seeded choice), downscaled to fit {@link MAX_SIDE} px, stored as JPEG / PNG /
 *   WebP in turn, captions from the file names (`banana_mateya_01.png` → "banana mateya"), the
 *   category in the `concept` column and `.json` sidecar (ground truth for the label-aware test).
 *   URLs are placeholders under `https://data-samples.dbprune.invalid/openclipart/` (not resolvable).
 * - `urls.parquet`: a URL list in img2dataset's format (url, caption, concept) of every sample — the
 *   same placeholder URLs, to show the format; serve the images yourself to download them.
 * - `centroids/{centroids.npy,calibration.json}`: `dbprune fit` on the shards with the model
 *   ({@link CENTROID_K} clusters, every sample, seed 0).
 * Same bytes on every run for the same inputs (seeded choice, fixed tar mtimes).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm/node';
import sharp from 'sharp';
import { Rng } from '../src/core/rng.js';
import { fitFromImages } from '../pipelines/fit-images.js';
import { parquetBytes, shardStatsJson, tarBytes, type Row } from './make-samples.js';
import { fetchNsfwjs, writeRealModel } from './make-real-model.js';

/** openclipart category folders used (relative to the png root). */
export const CATEGORIES = [
  'animals/mammals', 'animals/birds', 'animals/bugs', 'food/fruit', 'food/desserts', 'food/beverages',
  'transportation/vehicles', 'transportation/roadsigns', 'transportation/boating', 'signs_and_symbols/flags',
  'signs_and_symbols/weather', 'people/clothing', 'people/stickmen', 'people/smilies', 'recreation/music',
  'recreation/sports', 'shapes/stars', 'shapes/arrows', 'shapes/jigsaw', 'computer/hardware',
  'plants/flowers', 'buildings/homes',
] as const;
/** Drawings per category at most. */
export const PER_CATEGORY = 48;
/** Longest side after downscaling. */
export const MAX_SIDE = 192;
/** Samples per shard. */
export const PER_SHARD = 250;
/** k of the bundled centroids. */
export const CENTROID_K = 24;
const FORMATS = ['jpg', 'webp', 'png', 'jpg', 'webp'] as const;
const SEED = 13;

function listPngs(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listPngs(p));
    else if (e.name.endsWith('.png')) out.push(p);
  }
  return out.sort();
}

/** "stop_sign_miguel_s_nchez_.png" → "stop sign miguel s nchez". */
export function captionFromFile(file: string): string {
  return basename(file, '.png').replace(/[_-]+/g, ' ').replace(/\b\d+\b/g, ' ').replace(/\s+/g, ' ').trim();
}

async function encodeDrawing(file: string, format: (typeof FORMATS)[number]): Promise<{ bytes: Buffer; w: number; h: number; ow: number; oh: number }> {
  const meta = await sharp(file, { limitInputPixels: false }).metadata();
  const img = sharp(file, { limitInputPixels: false }).resize(MAX_SIDE, MAX_SIDE, { fit: 'inside', withoutEnlargement: true });
  const bytes =
    format === 'png'
      ? await img.png({ compressionLevel: 9, palette: true }).toBuffer()
      : format === 'webp'
        ? await img.webp({ quality: 75 }).toBuffer()
        : await img.flatten({ background: '#ffffff' }).jpeg({ quality: 80, mozjpeg: true }).toBuffer();
  const m = await sharp(bytes).metadata();
  return { bytes, w: m.width ?? 0, h: m.height ?? 0, ow: meta.width ?? 0, oh: meta.height ?? 0 };
}

/** Picks the drawings: per category, distinct files (by content), seeded shuffle, first PER_CATEGORY. */
function chooseDrawings(pngRoot: string): { file: string; category: string }[] {
  const seen = new Set<string>();
  const chosen: { file: string; category: string }[] = [];
  for (const [ci, category] of CATEGORIES.entries()) {
    const files = listPngs(join(pngRoot, category)).filter((f) => {
      const h = createHash('sha256').update(readFileSync(f)).digest('hex');
      if (seen.has(h)) return false;
      seen.add(h);
      return true;
    });
    const rng = new Rng(SEED * 100 + ci);
    for (let i = files.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [files[i], files[j]] = [files[j], files[i]];
    }
    for (const f of files.slice(0, PER_CATEGORY)) chosen.push({ file: f, category });
  }
  const rng = new Rng(SEED);
  for (let i = chosen.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [chosen[i], chosen[j]] = [chosen[j], chosen[i]];
  }
  return chosen;
}

/** Writes the shards and urls.parquet; returns the number of samples. */
export async function writeOpenclipartShards(pngRoot: string, out: string): Promise<number> {
  const chosen = chooseDrawings(pngRoot);
  const shardsDir = join(out, 'shards');
  rmSync(shardsDir, { recursive: true, force: true });
  mkdirSync(shardsDir, { recursive: true });
  const allRows: Row[] = [];
  for (let s = 0; s * PER_SHARD < chosen.length; s++) {
    const rows: Row[] = [];
    const entries: { name: string; data: Buffer }[] = [];
    for (const [k, c] of chosen.slice(s * PER_SHARD, (s + 1) * PER_SHARD).entries()) {
      const format = FORMATS[(s * PER_SHARD + k) % FORMATS.length];
      const e = await encodeDrawing(c.file, format);
      const key = `${String(s).padStart(5, '0')}${String(k).padStart(4, '0')}`;
      const caption = captionFromFile(c.file);
      const row: Row = {
        key,
        url: `https://data-samples.dbprune.invalid/openclipart/${relative(pngRoot, c.file).split('\\').join('/')}`,
        caption,
        status: 'success',
        error_message: null,
        width: e.w,
        height: e.h,
        original_width: e.ow,
        original_height: e.oh,
        sha256: createHash('sha256').update(e.bytes).digest('hex'),
        concept: c.category,
        format,
      };
      rows.push(row);
      const { format: _f, ...json } = row;
      entries.push({ name: `${key}.${format}`, data: e.bytes }, { name: `${key}.txt`, data: Buffer.from(caption) }, { name: `${key}.json`, data: Buffer.from(JSON.stringify(json)) });
    }
    const name = String(s).padStart(5, '0');
    writeFileSync(join(shardsDir, `${name}.tar`), await tarBytes(entries));
    writeFileSync(join(shardsDir, `${name}.parquet`), parquetBytes(rows));
    writeFileSync(join(shardsDir, `${name}_stats.json`), shardStatsJson(rows.length));
    allRows.push(...rows);
  }
  const urls = tableFromArrays({ url: allRows.map((r) => r.url), caption: allRows.map((r) => r.caption), concept: allRows.map((r) => r.concept) });
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).build();
  writeFileSync(join(out, 'urls.parquet'), parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(urls, 'stream')), props));
  return allRows.length;
}

/** `apt-get download openclipart-png` + `dpkg-deb -x` into a temp folder; returns the png root. */
function fetchOpenclipart(): { pngRoot: string; root: string } {
  const root = mkdtempSync(join(tmpdir(), 'dbprune-openclipart-'));
  execFileSync('apt-get', ['download', 'openclipart-png'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const deb = readdirSync(root).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download openclipart-png produced no .deb (run apt-get update first?)');
  execFileSync('dpkg-deb', ['-x', join(root, deb), join(root, 'x')]);
  return { pngRoot: join(root, 'x', 'usr', 'share', 'openclipart', 'png'), root };
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return n;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values } = parseArgs({ options: { 'png-root': { type: 'string' }, nsfwjs: { type: 'string' }, out: { type: 'string' } } });
  const out = values.out ?? join(import.meta.dirname, '..', 'data-samples', 'openclipart');
  const cleanup: string[] = [];
  try {
    let nsfwjs = values.nsfwjs;
    if (!nsfwjs) {
      const f = fetchNsfwjs();
      cleanup.push(f.root);
      nsfwjs = f.dir;
    }
    const m = writeRealModel(nsfwjs, join(out, 'model'));
    console.error(`model: ${m.onnxPath} (${(m.bytes / 1e6).toFixed(2)} MB, d=${m.dim})`);
    let pngRoot = values['png-root'];
    if (!pngRoot) {
      const f = fetchOpenclipart();
      cleanup.push(f.root);
      pngRoot = f.pngRoot;
    }
    const n = await writeOpenclipartShards(pngRoot, out);
    console.error(`shards: ${n} drawings from ${CATEGORIES.length} categories in ${join(out, 'shards')}`);
    const fitted = await fitFromImages({
      inputs: join(out, 'shards'),
      model: join(out, 'model'),
      k: CENTROID_K,
      sample: 100_000,
      iters: 50,
      seed: 0,
      out: join(out, 'centroids'),
      log: (l: string) => console.error(l),
    });
    console.error(JSON.stringify(fitted));
    console.error(`data-samples/openclipart: ${(dirBytes(out) / 1e6).toFixed(2)} MB`);
  } finally {
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  }
}
