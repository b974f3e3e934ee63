/**
 * Writes the bundled sample shards: deterministic synthetic images of 12 concepts of very
 * different diversity (near-identical red squares … random confetti and noise), captions per
 * concept, as img2dataset-style webdataset shards.
 *
 *   npx tsx scripts/make-samples.ts [outDir]      (default data-samples/shards)
 *
 * Output per shard N (5 digits): `0000N.tar` holding `KEY.jpg|png|webp`, `KEY.txt` (caption),
 * `KEY.json` (url, key, status, caption, width, height, sha256, concept, …); `0000N.parquet` with
 * the same fields per row; `0000N_stats.json` like img2dataset's. Keys are `<shard:5><index:4>`
 * (`000010012`). URLs are under `https://data-samples.dbprune.invalid/` (never resolvable). The
 * `concept` field is ground truth for checking clusters; real img2dataset output lacks it.
 * Same bytes on every run (seeded `Rng`, fixed tar mtimes).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm/node';
import sharp from 'sharp';
import { pack as tarPack } from 'tar-stream';
import { Rng } from '../src/core/rng.js';

type Rgb = [number, number, number];

interface Canvas {
  w: number;
  h: number;
  /** RGBA, 8 bits. */
  px: Uint8ClampedArray;
}

function canvas(w: number, h: number, bg: Rgb, alpha = 255): Canvas {
  const px = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) px.set([bg[0], bg[1], bg[2], alpha], i * 4);
  return { w, h, px };
}

function set(c: Canvas, x: number, y: number, col: Rgb, alpha = 255): void {
  if (x < 0 || y < 0 || x >= c.w || y >= c.h) return;
  c.px.set([col[0], col[1], col[2], alpha], (y * c.w + x) * 4);
}

function rect(c: Canvas, x0: number, y0: number, w: number, h: number, col: Rgb, alpha = 255): void {
  for (let y = Math.round(y0); y < Math.round(y0 + h); y++) for (let x = Math.round(x0); x < Math.round(x0 + w); x++) set(c, x, y, col, alpha);
}

function disc(c: Canvas, cx: number, cy: number, r: number, col: Rgb, alpha = 255): void {
  for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++)
    for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) set(c, x, y, col, alpha);
}

function fill(c: Canvas, f: (x: number, y: number) => Rgb): void {
  for (let y = 0; y < c.h; y++) for (let x = 0; x < c.w; x++) set(c, x, y, f(x, y));
}

const lerp = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
const jitter = (rng: Rng, col: Rgb, amount: number): Rgb => col.map((v) => v + (rng.next() * 2 - 1) * amount) as Rgb;
const randColour = (rng: Rng): Rgb => [rng.int(256), rng.int(256), rng.int(256)];

interface Concept {
  name: string;
  count: number;
  captions: string[];
  draw: (rng: Rng, i: number) => { canvas: Canvas; format: 'jpg' | 'png' | 'webp' };
}

const CONCEPTS: Concept[] = [
  {
    name: 'red-square',
    count: 150,
    captions: ['a red square on a white background', 'red square, white backdrop', 'simple red square icon'],
    draw: (rng) => {
      const c = canvas(64, 64, [250, 250, 250]);
      rect(c, 16 + rng.int(3) - 1, 16 + rng.int(3) - 1, 32, 32, jitter(rng, [220, 20, 30], 6));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'blue-circle',
    count: 120,
    captions: ['a blue circle', 'blue dot on grey', 'a round blue disc'],
    draw: (rng, i) => {
      const alpha = i % 3 === 0;
      const c = canvas(64, 64, [200, 200, 205], alpha ? 0 : 255);
      disc(c, 32 + rng.int(13) - 6, 32 + rng.int(13) - 6, 14 + rng.int(7), jitter(rng, [30, 60, 200], 15));
      return { canvas: c, format: alpha ? 'png' : 'jpg' };
    },
  },
  {
    name: 'green-stripes',
    count: 100,
    captions: ['green striped pattern', 'diagonal green stripes', 'stripes in shades of green'],
    draw: (rng) => {
      const c = canvas(64, 64, [0, 0, 0]);
      const angle = rng.next() * Math.PI;
      const freq = 0.15 + rng.next() * 0.35;
      const phase = rng.next() * 6.28;
      const [a, b] = [jitter(rng, [20, 120, 40], 20), jitter(rng, [170, 230, 150], 20)];
      fill(c, (x, y) => lerp(a, b, Math.sin((x * Math.cos(angle) + y * Math.sin(angle)) * freq + phase) > 0 ? 1 : 0));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'yellow-gradient',
    count: 90,
    captions: ['a smooth yellow to orange gradient', 'warm gradient background', 'yellow orange blend'],
    draw: (rng) => {
      const c = canvas(80, 60, [0, 0, 0]);
      const ang = rng.next() * 2 * Math.PI;
      const [a, b] = [jitter(rng, [250, 230, 60], 10), jitter(rng, [240, 140, 30], 10)];
      fill(c, (x, y) => lerp(a, b, Math.min(1, Math.max(0, 0.5 + ((x - 40) * Math.cos(ang) + (y - 30) * Math.sin(ang)) / 70))));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'checkerboard',
    count: 100,
    captions: ['a black and white checkerboard', 'chess board pattern', 'checkered tiles'],
    draw: (rng) => {
      const c = canvas(64, 64, [0, 0, 0]);
      const cell = 4 + rng.int(13);
      const ox = rng.int(cell);
      const oy = rng.int(cell);
      const dark = jitter(rng, [20, 20, 20], 15);
      const light = jitter(rng, [235, 235, 235], 15);
      fill(c, (x, y) => ((Math.floor((x + ox) / cell) + Math.floor((y + oy) / cell)) % 2 === 0 ? dark : light));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'noise',
    count: 80,
    captions: ['random colour noise texture', 'static noise', 'grainy abstract texture'],
    draw: (rng) => {
      const c = canvas(64, 64, [0, 0, 0]);
      const base = randColour(rng);
      const amp = 40 + rng.int(200);
      const grain = 1 + rng.int(4);
      const cells: Rgb[] = [];
      const gw = Math.ceil(64 / grain);
      for (let i = 0; i < gw * gw; i++) cells.push(jitter(rng, base, amp));
      fill(c, (x, y) => cells[Math.floor(y / grain) * gw + Math.floor(x / grain)]);
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'sunset',
    count: 100,
    captions: ['a sunset over the horizon', 'orange and purple evening sky with the sun', 'sun setting, warm colours'],
    draw: (rng, i) => {
      const c = canvas(64, 64, [0, 0, 0]);
      const top = jitter(rng, [70, 40, 120], 20);
      const bottom = jitter(rng, [250, 130, 50], 20);
      const horizon = 40 + rng.int(14);
      fill(c, (_x, y) => (y >= horizon ? jitter(rng, [30, 20, 40], 4) : lerp(top, bottom, y / horizon)));
      disc(c, 10 + rng.int(44), horizon - 4 - rng.int(10), 5 + rng.int(5), [255, 220, 120]);
      return { canvas: c, format: i % 20 === 7 ? 'webp' : 'jpg' };
    },
  },
  {
    name: 'night-sky',
    count: 100,
    captions: ['stars in the night sky', 'a dark sky full of stars', 'starry night'],
    draw: (rng) => {
      const c = canvas(64, 64, jitter(rng, [10, 12, 35], 8));
      const n = 20 + rng.int(60);
      for (let k = 0; k < n; k++) set(c, rng.int(64), rng.int(64), jitter(rng, [240, 240, 220], 15));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'waves',
    count: 100,
    captions: ['blue ocean waves', 'wavy water pattern', 'sea waves, shades of blue'],
    draw: (rng) => {
      const c = canvas(64, 64, [0, 0, 0]);
      const f = 0.1 + rng.next() * 0.25;
      const amp = 2 + rng.next() * 8;
      const period = 6 + rng.int(10);
      const [deep, foam] = [jitter(rng, [10, 60, 130], 15), jitter(rng, [120, 190, 230], 15)];
      fill(c, (x, y) => lerp(deep, foam, 0.5 + 0.5 * Math.sin(((y + amp * Math.sin(x * f)) / period) * 2 * Math.PI)));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'forest',
    count: 100,
    captions: ['a dense green forest seen from above', 'tree canopy', 'green foliage'],
    draw: (rng) => {
      const c = canvas(60, 80, jitter(rng, [20, 50, 20], 10));
      const n = 15 + rng.int(25);
      for (let k = 0; k < n; k++) disc(c, rng.int(60), rng.int(80), 3 + rng.int(9), jitter(rng, [40, 120, 40], 40));
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'document',
    count: 80,
    captions: ['a scanned page of text', 'a printed document', 'page with lines of text'],
    draw: (rng) => {
      const c = canvas(96, 64, jitter(rng, [245, 245, 240], 6));
      const lh = 5 + rng.int(3);
      for (let y = 4; y + 3 < 60; y += lh) {
        let x = 4;
        while (x < 88) {
          const w = 3 + rng.int(12);
          if (x + w > 92) break;
          rect(c, x, y, w, 3, [30, 30, 30]);
          x += w + 2;
        }
      }
      return { canvas: c, format: 'jpg' };
    },
  },
  {
    name: 'confetti',
    count: 80,
    captions: ['colourful confetti', 'random coloured shapes', 'abstract art with many colours'],
    draw: (rng, i) => {
      const c = canvas(64, 64, randColour(rng));
      const n = 5 + rng.int(30);
      for (let k = 0; k < n; k++) {
        if (rng.next() < 0.5) disc(c, rng.int(64), rng.int(64), 2 + rng.int(10), randColour(rng));
        else rect(c, rng.int(60), rng.int(60), 2 + rng.int(20), 2 + rng.int(20), randColour(rng));
      }
      return { canvas: c, format: i % 10 === 0 ? 'png' : 'jpg' };
    },
  },
];

/** Number of shards written. */
export const SHARDS = 6;
/** Fixed timestamp in tar headers, parquet-free metadata and stats, for reproducible bytes. */
export const EPOCH = new Date('2024-05-01T00:00:00Z');

/** One row of a shard's parquet (and, less `format`, its `.json` sidecar). */
export interface Row {
  key: string;
  url: string;
  caption: string;
  status: string;
  error_message: string | null;
  width: number;
  height: number;
  original_width: number;
  original_height: number;
  sha256: string;
  concept: string;
  format: string;
}

async function encode(cv: Canvas, format: 'jpg' | 'png' | 'webp'): Promise<Buffer> {
  const withAlpha = format === 'png' && cv.px.some((v, i) => i % 4 === 3 && v < 255);
  const img = sharp(Buffer.from(cv.px.buffer), { raw: { width: cv.w, height: cv.h, channels: 4 } });
  if (format === 'png') return (withAlpha ? img : img.removeAlpha()).png({ compressionLevel: 9 }).toBuffer();
  if (format === 'webp') return img.removeAlpha().webp({ quality: 80 }).toBuffer();
  return img.removeAlpha().jpeg({ quality: 80 }).toBuffer();
}

/** A tar of `entries` with fixed mtimes/owners (reproducible bytes). */
export function tarBytes(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  return new Promise((resolveP, reject) => {
    const p = tarPack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolveP(Buffer.concat(chunks)));
    p.on('error', reject);
    for (const e of entries) p.entry({ name: e.name, size: e.data.length, mtime: EPOCH, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' }, e.data);
    p.finalize();
  });
}

/** img2dataset's per-shard parquet (snappy) of `rows`. */
export function parquetBytes(rows: Row[]): Uint8Array {
  const col = <K extends keyof Row>(k: K): Row[K][] => rows.map((r) => r[k]);
  const table = tableFromArrays({
    key: col('key'),
    url: col('url'),
    caption: col('caption'),
    status: col('status'),
    error_message: col('error_message').map((v) => v ?? ''),
    width: Int32Array.from(col('width')),
    height: Int32Array.from(col('height')),
    original_width: Int32Array.from(col('original_width')),
    original_height: Int32Array.from(col('original_height')),
    sha256: col('sha256'),
    concept: col('concept'),
  });
  const wasmTable = parquet.Table.fromIPCStream(tableToIPC(table, 'stream'));
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).build();
  return parquet.writeParquet(wasmTable, props);
}

/** img2dataset's `NNNNN_stats.json` for a shard of `count` successful samples. */
export function shardStatsJson(count: number): string {
  const stats = {
    count,
    successes: count,
    failed_to_download: 0,
    failed_to_resize: 0,
    duration: 0,
    start_time: EPOCH.getTime() / 1000,
    end_time: EPOCH.getTime() / 1000,
    status_dict: { success: count },
  };
  return JSON.stringify(stats, null, 2) + '\n';
}

/** Writes all shards under `outDir`; returns the number of samples. */
export async function writeSamples(outDir: string, seed = 7): Promise<number> {
  mkdirSync(outDir, { recursive: true });
  const rng = new Rng(seed);
  // Draw every concept's images (one rng stream per concept so concepts do not shift each other).
  const all: { concept: Concept; index: number; bytes: Buffer; format: string; w: number; h: number }[] = [];
  for (const [ci, concept] of CONCEPTS.entries()) {
    const crng = new Rng(seed * 1000 + ci);
    for (let i = 0; i < concept.count; i++) {
      const { canvas: cv, format } = concept.draw(crng, i);
      all.push({ concept, index: i, bytes: await encode(cv, format), format, w: cv.w, h: cv.h });
    }
  }
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const perShard = Math.ceil(all.length / SHARDS);
  for (let s = 0; s < SHARDS; s++) {
    const items = all.slice(s * perShard, (s + 1) * perShard);
    const rows: Row[] = [];
    const entries: { name: string; data: Buffer }[] = [];
    items.forEach((it, k) => {
      const key = `${String(s).padStart(5, '0')}${String(k).padStart(4, '0')}`;
      const caption = it.concept.captions[it.index % it.concept.captions.length];
      const row: Row = {
        key,
        url: `https://data-samples.dbprune.invalid/${it.concept.name}/${String(it.index).padStart(4, '0')}.${it.format}`,
        caption,
        status: 'success',
        error_message: null,
        width: it.w,
        height: it.h,
        original_width: it.w,
        original_height: it.h,
        sha256: createHash('sha256').update(it.bytes).digest('hex'),
        concept: it.concept.name,
        format: it.format,
      };
      rows.push(row);
      const { format: _f, ...json } = row;
      entries.push({ name: `${key}.${it.format}`, data: it.bytes });
      entries.push({ name: `${key}.txt`, data: Buffer.from(caption) });
      entries.push({ name: `${key}.json`, data: Buffer.from(JSON.stringify({ ...json, exif: '{}' })) });
    });
    const name = String(s).padStart(5, '0');
    writeFileSync(join(outDir, `${name}.tar`), await tarBytes(entries));
    writeFileSync(join(outDir, `${name}.parquet`), parquetBytes(rows));
    writeFileSync(join(outDir, `${name}_stats.json`), shardStatsJson(rows.length));
  }
  return all.length;
}

/** Concept names and sample counts (for tests and docs). */
export const SAMPLE_CONCEPTS: readonly { name: string; count: number }[] = CONCEPTS.map((c) => ({ name: c.name, count: c.count }));

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = process.argv[2] ?? 'data-samples/shards';
  const n = await writeSamples(out);
  console.log(`wrote ${n} samples in ${SHARDS} shards to ${out}`);
}
