/**
 * DataComp's pool layout (mlfoundations/datacomp): per shard `NNNNNNNN.parquet` (uid, url, text,
 * original_width, original_height, clip_b32_similarity_score, clip_l14_similarity_score,
 * face_bboxes, sha256) and `NNNNNNNN.npz` (b32_img, b32_txt, l14_img, l14_txt; float16, rows
 * aligned with the parquet's rows).
 *
 * This module finds the shards and streams the metadata columns the filters need (plus a CLIP
 * score computed from the npz when the score column is absent), in global row order. Shards may be
 * local or on `s3://` (a prefix is listed; the parquet footer and row groups and the npz directory
 * and members are ranged reads, never whole downloads).
 */
import { parquetRead } from 'hyparquet';
import { cosineRows } from '../core/datacomp-filters.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { expandInputs, naturalCompare } from './glob.js';
import { openMetadata, type MetadataFile } from './metadata.js';
import { NpzFile } from './npz.js';
import { joinLocation as join, locationBasename as basename, locationExists, parentLocation as dirname, statLocation } from './storage/index.js';

/** The embedding members of a DataComp `.npz`. */
export const DATACOMP_EMBEDDING_KEYS = ['l14_img', 'b32_img', 'l14_txt', 'b32_txt'] as const;
export type DataCompEmbeddingKey = (typeof DATACOMP_EMBEDDING_KEYS)[number];

/** DataComp's metadata columns used by the filters. */
export const DATACOMP_COLUMNS = {
  uid: 'uid',
  text: 'text',
  width: 'original_width',
  height: 'original_height',
  clipL14: 'clip_l14_similarity_score',
  clipB32: 'clip_b32_similarity_score',
} as const;

/** One shard: its name (`00000000`), parquet and npz paths. */
export interface DataCompShard {
  name: string;
  parquet: string;
  npz: string;
}

/**
 * Finds DataComp shards: a folder or `s3://` prefix (its `*.parquet`), or paths/globs of `.parquet`
 * or `.npz` files.
 * Every parquet must have its `.npz` beside it (and the other way round).
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND naming the shard whose partner is missing, or when nothing matches.
 */
export async function resolveDataCompShards(input: string | readonly string[]): Promise<DataCompShard[]> {
  const list = typeof input === 'string' ? [input] : [...input];
  const files: string[] = [];
  for (const p of list) {
    const isDir = (await statLocation(p).catch(() => undefined))?.kind === 'directory';
    if (isDir) {
      const found = await expandInputs(join(p, '*.parquet')).catch(() => [] as string[]);
      const npzs = found.length > 0 ? [] : await expandInputs(join(p, '*.npz')).catch(() => [] as string[]);
      if (found.length === 0 && npzs.length === 0) throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${p}: no DataComp shards (NNNNNNNN.parquet + NNNNNNNN.npz)`, { file: p });
      files.push(...found, ...npzs);
    } else {
      files.push(...(await expandInputs(p)));
    }
  }
  const byName = new Map<string, DataCompShard>();
  for (const f of files) {
    const m = /^(.*)\.(parquet|npz)$/i.exec(f);
    if (!m) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${f}: a DataComp input is a .parquet or .npz file (or their folder)`, { file: f });
    const stem = m[1];
    if (byName.has(stem)) continue;
    const shard: DataCompShard = { name: basename(stem), parquet: `${stem}.parquet`, npz: `${stem}.npz` };
    for (const [which, path] of [['parquet', shard.parquet], ['npz', shard.npz]] as const) {
      if (!(await locationExists(path))) {
        throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `DataComp shard ${shard.name} in ${dirname(stem)} has no ${which} file (${path})`, { shard: shard.name, file: path });
      }
    }
    byName.set(stem, shard);
  }
  return [...byName.values()].sort((a, b) => naturalCompare(a.parquet, b.parquet));
}

/** The row-count error of a shard whose parquet and npz disagree. */
export function misalignedShard(shard: DataCompShard, parquetRows: number, member: string, npzRows: number): DbpruneError {
  return new DbpruneError(
    ErrorCodes.ROW_COUNT_MISMATCH,
    `DataComp shard ${shard.name}: ${shard.parquet} has ${parquetRows} rows but ${shard.npz} member ${member} has ${npzRows}`,
    { shard: shard.name, file: shard.npz, metadata: shard.parquet, metadataRows: parquetRows, embeddingRows: npzRows, member },
  );
}

/** Where the CLIP score comes from: a metadata column, or cosine(img, txt) of an npz tower. */
export interface ClipScoreSource {
  /** Column to read, default `clip_l14_similarity_score`. Used when the shard has it. */
  column?: string;
  /** Tower whose `*_img`/`*_txt` cosine is the score when the column is absent (or always, when `force`). Default l14. */
  from?: 'l14' | 'b32';
  /** Compute from the npz even when the column exists (`--clip-score-from`). */
  force?: boolean;
}

/** Filter inputs of a run of rows (global order), columnar. */
export interface DataCompColumns {
  /** Global index of the first row. */
  start: number;
  rows: number;
  shard: string;
  text: (string | null)[];
  width: Float64Array;
  height: Float64Array;
  /** CLIP score per row (NaN when missing); only when a score source was asked for. text/width/height are empty when `basic: false`. */
  score?: Float64Array;
}

/** Reads `names` of row group by row group; `null` for absent columns. */
async function* parquetColumnGroups(mf: MetadataFile, names: string[], signal?: AbortSignal): AsyncGenerator<{ rows: number; cols: unknown[][] }> {
  const present = names.filter((n) => mf.allColumns.includes(n));
  let start = 0;
  for (const rg of mf.meta.row_groups) {
    throwIfAborted(signal);
    const n = Number(rg.num_rows);
    let data: unknown[][] = [];
    if (present.length > 0 && n > 0) {
      try {
        await parquetRead({ file: mf.file, metadata: mf.meta, columns: present, rowStart: start, rowEnd: start + n, onComplete: (rows: unknown[][]) => (data = rows) });
      } catch (e) {
        throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${mf.path}: cannot decode rows ${start}..${start + n} (${(e as Error).message})`, { file: mf.path, row: start }, { cause: e });
      }
    }
    const cols = names.map((name) => {
      const i = present.indexOf(name);
      return i < 0 ? new Array<unknown>(n).fill(null) : data.map((r) => r[i]);
    });
    yield { rows: n, cols };
    start += n;
  }
}

/** A caption cell as text (`null` stays null; bytes are UTF-8; other values in their JSON form). */
function textOf(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function num(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' ? v : Number(v);
}

/**
 * Streams the filter columns of every shard, in order: caption (`text`), original width/height, and
 * the CLIP score (column, or cosine of the npz's `<from>_img` and `<from>_txt` rows computed in
 * float64 from the stored float16 values). One parquet row group (and the matching npz rows) at a
 * time.
 *
 * @throws ERR_DBPRUNE_ROW_COUNT_MISMATCH naming the shard when the npz rows disagree with the parquet.
 */
export async function* dataCompColumnBatches(
  shards: readonly DataCompShard[],
  opts: { score?: ClipScoreSource; signal?: AbortSignal; /** Read text/width/height (default true; false leaves them empty). */ basic?: boolean },
): AsyncGenerator<DataCompColumns> {
  const { signal } = opts;
  let start = 0;
  for (const shard of shards) {
    const mf = await openMetadata(shard.parquet);
    const scoreCol = opts.score ? (opts.score.column ?? DATACOMP_COLUMNS.clipL14) : undefined;
    const compute = opts.score !== undefined && (opts.score.force === true || !mf.allColumns.includes(scoreCol as string));
    const basic = opts.basic ?? true;
    const names = [...(basic ? [DATACOMP_COLUMNS.text, DATACOMP_COLUMNS.width, DATACOMP_COLUMNS.height] : []), ...(scoreCol && !compute ? [scoreCol] : [])];
    let npz: NpzFile | undefined;
    let pairs: AsyncGenerator<Float64Array> | undefined;
    try {
      if (compute) {
        npz = await NpzFile.open(shard.npz, signal);
        pairs = cosineStream(npz, shard, mf.rows, opts.score?.from ?? 'l14', signal);
      }
      for await (const g of parquetColumnGroups(mf, names, signal)) {
        const width = basic ? Float64Array.from(g.cols[1], num) : new Float64Array(0);
        const height = basic ? Float64Array.from(g.cols[2], num) : new Float64Array(0);
        const text = basic ? g.cols[0].map(textOf) : [];
        let score: Float64Array | undefined;
        if (pairs) score = await takeScores(pairs, g.rows, shard);
        else if (scoreCol) score = Float64Array.from(g.cols[basic ? 3 : 0], num);
        yield { start, rows: g.rows, shard: shard.name, text, width, height, score };
        start += g.rows;
      }
    } finally {
      await pairs?.return(undefined);
      npz?.close();
    }
  }
}

/** Cosine(img, txt) per row of one npz tower, as chunks. */
async function* cosineStream(npz: NpzFile, shard: DataCompShard, parquetRows: number, from: 'l14' | 'b32', signal?: AbortSignal): AsyncGenerator<Float64Array> {
  const img = `${from}_img`;
  const txt = `${from}_txt`;
  const [hi, ht] = [await npz.header(img), await npz.header(txt)];
  if (hi.rows !== parquetRows) throw misalignedShard(shard, parquetRows, img, hi.rows);
  if (ht.rows !== parquetRows) throw misalignedShard(shard, parquetRows, txt, ht.rows);
  if (hi.cols !== ht.cols) throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `DataComp shard ${shard.name}: ${img} has dimension ${hi.cols} but ${txt} has ${ht.cols}`, { shard: shard.name, file: shard.npz });
  const a = npz.rows(img, { batchRows: 4096, signal });
  const b = npz.rows(txt, { batchRows: 4096, signal });
  try {
    for (;;) {
      const [x, y] = await Promise.all([a.next(), b.next()]);
      if (x.done || y.done) break;
      yield cosineRows(x.value.data, y.value.data, x.value.rows, hi.cols);
    }
  } finally {
    await a.return(undefined);
    await b.return(undefined);
  }
}

/** Pending cosine chunks, re-cut to the parquet's row groups. */
const leftovers = new WeakMap<AsyncGenerator<Float64Array>, Float64Array>();
async function takeScores(src: AsyncGenerator<Float64Array>, n: number, shard: DataCompShard): Promise<Float64Array> {
  const out = new Float64Array(n);
  let fill = 0;
  let rest = leftovers.get(src);
  while (fill < n) {
    if (!rest || rest.length === 0) {
      const r = await src.next();
      if (r.done) throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `DataComp shard ${shard.name}: ${shard.npz} ends before ${shard.parquet}`, { shard: shard.name, file: shard.npz });
      rest = r.value;
    }
    const k = Math.min(n - fill, rest.length);
    out.set(rest.subarray(0, k), fill);
    fill += k;
    rest = rest.subarray(k);
  }
  leftovers.set(src, rest as Float64Array);
  return out;
}
