/**
 * Builds data-samples/datacomp/: a small synthetic pool laid out exactly as DataComp's metadata
 * (mlfoundations/datacomp): per shard `NNNNNNNN.parquet` with uid (32 hex chars), url, text,
 * original_width/height (int64), clip_b32/l14_similarity_score (float32), face_bboxes
 * (list<list<float64>>), sha256; and `NNNNNNNN.npz` with b32_img, b32_txt (512-d), l14_img, l14_txt
 * (768-d), float16, rows aligned. Shard 0's members are deflated, shard 1's stored, shard 2 mixes
 * both. Scores are rounded to 3 decimals so the threshold rule meets ties; a few rows are
 * near-duplicates (for SemDeDup), some captions are short or not English, some images small or
 * elongated (for the basic filter).
 *
 * Also writes test/fixtures/datacomp/columns.json (the filter columns as plain JSON) for the numpy
 * reference, scripts/datacomp-reference.py. Deterministic: `npx tsx scripts/make-datacomp-sample.ts`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, Float32, Float64, Int64, List, Schema, Table, Utf8, vectorFromArray, tableToIPC } from 'apache-arrow';
import { zipSync, type Zippable } from 'fflate';
import * as parquet from 'parquet-wasm/node';
import { Rng } from '../src/core/rng.js';
import { writeNpy } from '../src/io/npy.js';

const SHARDS = 3;
const ROWS = 120;
const CONCEPTS = 8;
const DIMS = { l14: 768, b32: 512 } as const;
const root = join(import.meta.dirname, '..');
const outDir = join(root, 'data-samples', 'datacomp');
const fixtureDir = join(root, 'test', 'fixtures', 'datacomp');

const rng = new Rng(20_231_015);
const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[rng.int(16)]).join('');

function unit(v: Float64Array): Float64Array {
  let s = 0;
  for (const x of v) s += x * x;
  const r = 1 / Math.sqrt(s);
  return v.map((x) => x * r);
}
function gauss(d: number): Float64Array {
  return Float64Array.from({ length: d }, () => rng.normal());
}
const centers = { l14: Array.from({ length: CONCEPTS }, () => unit(gauss(DIMS.l14))), b32: Array.from({ length: CONCEPTS }, () => unit(gauss(DIMS.b32))) };

const SUBJECTS = ['dog', 'cat', 'red car', 'mountain lake', 'wooden chair', 'city street', 'birthday cake', 'running shoes'];
const ENGLISH = ['a photo of a {s} on a sunny day', 'close up of the {s} in the garden', 'vintage poster showing a {s}', 'my favourite {s} at home'];
const OTHER = ['una foto de un perro en la playa', 'ein altes Foto von einem Auto', 'une photo de la montagne en hiver', 'una torta di compleanno fatta in casa'];
const SHORT = ['dog', 'IMG 0042', 'red car', 'hi there'];
const SIZES: [number, number][] = [[640, 480], [1024, 768], [500, 500], [800, 1200], [150, 300], [1200, 300], [256, 256], [199, 640], [900, 300]];

interface Row {
  uid: string;
  url: string;
  text: string;
  original_width: number;
  original_height: number;
  clip_b32_similarity_score: number;
  clip_l14_similarity_score: number;
  face_bboxes: number[][];
  sha256: string;
}

function toF16Array(v: Float64Array): Float32Array {
  return Float32Array.from(v);
}

function f32(x: number): number {
  return Math.fround(x);
}

function cos(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  for (let i = 0; i < a.length; i++) ab += a[i] * b[i];
  return ab;
}

/** One shard's rows and its four matrices. */
function makeShard(): { rows: Row[]; mats: Record<string, Float32Array> } {
  const rows: Row[] = [];
  const mats: Record<string, Float64Array[]> = { l14_img: [], l14_txt: [], b32_img: [], b32_txt: [] };
  for (let i = 0; i < ROWS; i++) {
    const c = rng.int(CONCEPTS);
    const dup = i > 0 && rng.next() < 0.06; // a near-duplicate of the previous row
    const align = 0.12 + 0.3 * rng.next();
    const scores: Record<string, number> = {};
    for (const tower of ['l14', 'b32'] as const) {
      const d = DIMS[tower];
      const prev = mats[`${tower}_img`][i - 1];
      const img = dup ? unit(prev.map((x) => x + 0.002 * rng.normal())) : unit(centers[tower][c].map((x) => x + (0.9 / Math.sqrt(d)) * rng.normal()));
      const noise = unit(gauss(d));
      const txt = unit(img.map((x, t) => align * x + Math.sqrt(1 - align * align) * noise[t]));
      mats[`${tower}_img`].push(img);
      mats[`${tower}_txt`].push(txt);
      scores[tower] = f32(Math.round(cos(img, txt) * 1000) / 1000);
    }
    const kind = rng.next();
    const subject = SUBJECTS[c];
    const text =
      kind < 0.72 ? ENGLISH[rng.int(ENGLISH.length)].replace('{s}', subject) : kind < 0.86 ? OTHER[rng.int(OTHER.length)] : SHORT[rng.int(SHORT.length)];
    const [w, h] = SIZES[rng.int(SIZES.length)];
    const uid = hex(32);
    rows.push({
      uid,
      url: `https://images.example.com/${uid.slice(0, 8)}/${i}.jpg`,
      text,
      original_width: w,
      original_height: h,
      clip_b32_similarity_score: scores.b32,
      clip_l14_similarity_score: scores.l14,
      face_bboxes: rng.next() < 0.2 ? [[0.1, 0.2, 0.3, 0.4]] : [],
      sha256: hex(64),
    });
  }
  const flat: Record<string, Float32Array> = {};
  for (const [name, list] of Object.entries(mats)) {
    const d = list[0].length;
    const m = new Float32Array(list.length * d);
    list.forEach((v, r) => m.set(toF16Array(v), r * d));
    flat[name] = m;
  }
  return { rows, mats: flat };
}

function parquetBytes(rows: Row[]): Uint8Array {
  const col = <K extends keyof Row>(k: K): Row[K][] => rows.map((r) => r[k]);
  const bboxType = new List(new Field('item', new List(new Field('item', new Float64(), true)), true));
  const schema = new Schema([
    new Field('uid', new Utf8(), true),
    new Field('url', new Utf8(), true),
    new Field('text', new Utf8(), true),
    new Field('original_width', new Int64(), true),
    new Field('original_height', new Int64(), true),
    new Field('clip_b32_similarity_score', new Float32(), true),
    new Field('clip_l14_similarity_score', new Float32(), true),
    new Field('face_bboxes', bboxType, true),
    new Field('sha256', new Utf8(), true),
  ]);
  const table = new Table(schema, {
    uid: vectorFromArray(col('uid'), new Utf8()),
    url: vectorFromArray(col('url'), new Utf8()),
    text: vectorFromArray(col('text'), new Utf8()),
    original_width: vectorFromArray(BigInt64Array.from(col('original_width'), BigInt)),
    original_height: vectorFromArray(BigInt64Array.from(col('original_height'), BigInt)),
    clip_b32_similarity_score: vectorFromArray(Float32Array.from(col('clip_b32_similarity_score'))),
    clip_l14_similarity_score: vectorFromArray(Float32Array.from(col('clip_l14_similarity_score'))),
    face_bboxes: vectorFromArray(col('face_bboxes'), bboxType),
    sha256: vectorFromArray(col('sha256'), new Utf8()),
  });
  const wasmTable = parquet.Table.fromIPCStream(tableToIPC(table, 'stream'));
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).build();
  return parquet.writeParquet(wasmTable, props);
}

async function npyBytes(tmp: string, data: Float32Array, rows: number): Promise<Uint8Array> {
  const p = join(tmp, 'm.npy');
  await writeNpy(p, data, [rows, data.length / rows], 'float16');
  return new Uint8Array(readFileSync(p));
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
mkdirSync(fixtureDir, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'dbprune-datacomp-'));
const columns: Record<string, unknown[]> = { shard: [], uid: [], text: [], original_width: [], original_height: [], clip_l14_similarity_score: [], clip_b32_similarity_score: [] };
try {
  for (let s = 0; s < SHARDS; s++) {
    const name = String(s).padStart(8, '0');
    const { rows, mats } = makeShard();
    writeFileSync(join(outDir, `${name}.parquet`), parquetBytes(rows));
    const files: Zippable = {};
    for (const member of ['b32_img', 'b32_txt', 'l14_img', 'l14_txt']) {
      const deflate = s === 0 || (s === 2 && member === 'l14_img');
      files[`${member}.npy`] = [await npyBytes(tmp, mats[member], ROWS), { level: deflate ? 6 : 0, mtime: new Date('1980-01-01T00:00:00Z') }];
    }
    writeFileSync(join(outDir, `${name}.npz`), zipSync(files));
    for (const r of rows) {
      columns.shard.push(name);
      for (const k of ['uid', 'text', 'original_width', 'original_height', 'clip_l14_similarity_score', 'clip_b32_similarity_score'] as const) columns[k].push(r[k]);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
writeFileSync(join(fixtureDir, 'columns.json'), `${JSON.stringify(columns)}\n`);
console.error(`wrote ${SHARDS} shards × ${ROWS} rows to ${outDir}`);
