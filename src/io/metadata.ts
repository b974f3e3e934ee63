/**
 * Sample metadata from Parquet (clip-retrieval `metadata/metadata_N.parquet`, img2dataset
 * `NNNNN.parquet`, LAION-style url/caption tables) read with hyparquet, one row group at a time,
 * re-cut into batches of `batchRows` {@link SampleRef}s.
 */
import { basename } from 'node:path';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { READ_BATCH_ROWS } from './keys.js';
import { openParquetBuffer } from './parquet-source.js';
import type { SampleRef } from '../core/sample.js';

/** Column names tried, in order (first match, case-insensitive), for each SampleRef field. */
export const METADATA_COLUMNS = {
  key: ['key'],
  uid: ['uid'],
  url: ['url'],
  caption: ['caption', 'text', 'title'],
} as const;

export interface MetadataColumns {
  key?: string;
  uid?: string;
  url?: string;
  caption?: string;
}

/** An opened Parquet metadata file: footer parsed, columns picked. */
export interface MetadataFile {
  path: string;
  rows: number;
  columns: MetadataColumns;
  /** Every top-level column name in the file. */
  allColumns: string[];
  /** @internal */
  file: AsyncBuffer;
  /** @internal */
  meta: FileMetaData;
}

function inputFormat(path: string, message: string, cause?: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: ${message}`, { file: path }, cause === undefined ? undefined : { cause });
}

/**
 * Opens a Parquet file and reads its footer: row count and which of key/uid/url/caption it has
 * (see {@link METADATA_COLUMNS}). `require` names fields that must be present.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file) when the file is missing, not Parquet, or lacks a
 *   required column.
 */
export async function openMetadata(path: string, options: { require?: (keyof MetadataColumns)[] } = {}): Promise<MetadataFile> {
  let file: AsyncBuffer;
  let meta: FileMetaData;
  try {
    file = await openParquetBuffer(path);
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw inputFormat(path, 'cannot open metadata file', e);
  }
  try {
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    throw inputFormat(path, `not a readable Parquet file (${(e as Error).message})`, e);
  }
  const allColumns = parquetSchema(meta).children.map((c) => c.element.name);
  const lower = new Map(allColumns.map((c) => [c.toLowerCase(), c] as const));
  const columns: MetadataColumns = {};
  for (const field of Object.keys(METADATA_COLUMNS) as (keyof MetadataColumns)[]) {
    for (const cand of METADATA_COLUMNS[field]) {
      const found = lower.get(cand);
      if (found !== undefined) {
        columns[field] = found;
        break;
      }
    }
  }
  for (const r of options.require ?? []) {
    if (!columns[r]) throw inputFormat(path, `lacks a ${r} column (has: ${allColumns.join(', ')})`);
  }
  return { path, rows: Number(meta.num_rows), columns, allColumns, file, meta };
}

/** Row count from the Parquet footer. @throws ERR_DBPRUNE_INPUT_FORMAT like {@link openMetadata}. */
export async function metadataRowCount(path: string): Promise<number> {
  return (await openMetadata(path)).rows;
}

export interface ReadMetadataOptions {
  /** SampleRefs per yielded batch. Default 8192; 1 … 2^24. */
  batchRows?: number;
  /** Added to the row index when a key must be made up (`%09d`). Default 0. */
  rowOffset?: number;
  /** Written to every SampleRef's `shard`. Default: the file name without `.parquet`. */
  shard?: string;
  /** Fields that must exist as columns. Default none. */
  require?: (keyof MetadataColumns)[];
  signal?: AbortSignal;
}

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) || v instanceof Date) return v.toString();
  // a struct/map value: its JSON (64-bit integers as digits), not "[object Object]" for every row
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** Formats a row index as a 9-digit key (`000000042`), as img2dataset numbers samples. */
export function indexKey(i: number): string {
  return String(i).padStart(9, '0');
}

/**
 * Yields the rows of a Parquet metadata file as SampleRef batches of exactly `batchRows` (the last
 * shorter). `key` comes from a `key` column, else `uid`, else the row index (plus `rowOffset`)
 * formatted `%09d`; `url`, `caption` (or `text`/`title`) and `uid` are copied when present.
 * Memory: one row group of the chosen columns at a time.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file) for an unreadable file, missing required column,
 *   or a decode failure (context.row = first row of the failing row group).
 * @throws ERR_DBPRUNE_ABORTED when `signal` fires.
 */
export async function* readMetadataBatches(source: string | MetadataFile, options: ReadMetadataOptions = {}): AsyncGenerator<SampleRef[]> {
  const batchRows = integerOption(options.batchRows, 'batchRows', READ_BATCH_ROWS);
  const rowOffset = integerOption(options.rowOffset, 'rowOffset', { default: 0, min: 0 });
  const { signal } = options;
  throwIfAborted(signal);
  const mf = typeof source === 'string' ? await openMetadata(source, { require: options.require }) : source;
  const path = mf.path;
  const shard = options.shard ?? basename(path).replace(/\.parquet$/i, '');
  const cols = mf.columns;
  const fields = (['key', 'uid', 'url', 'caption'] as const).filter((f) => cols[f] !== undefined);
  const names = fields.map((f) => cols[f] as string);

  let pending: SampleRef[] = [];
  let groupStart = 0;
  for (const rg of mf.meta.row_groups) {
    throwIfAborted(signal);
    const groupRows = Number(rg.num_rows);
    const groupEnd = groupStart + groupRows;
    let data: unknown[][] = [];
    if (names.length > 0 && groupRows > 0) {
      try {
        await parquetRead({
          file: mf.file,
          metadata: mf.meta,
          columns: names,
          rowStart: groupStart,
          rowEnd: groupEnd,
          onComplete: (rows: unknown[][]) => {
            data = rows;
          },
        });
      } catch (e) {
        throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: cannot decode rows ${groupStart}..${groupEnd} (${(e as Error).message})`, { file: path, row: groupStart }, { cause: e });
      }
      if (data.length !== groupRows) {
        throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: row group at row ${groupStart} decoded ${data.length} rows, footer says ${groupRows}`, { file: path, row: groupStart });
      }
    }
    const iKey = fields.indexOf('key');
    const iUid = fields.indexOf('uid');
    const iUrl = fields.indexOf('url');
    const iCap = fields.indexOf('caption');
    for (let r = 0; r < groupRows; r++) {
      const row = data[r];
      const uid = row && iUid >= 0 ? str(row[iUid]) : undefined;
      const ref: SampleRef = {
        key: (row && iKey >= 0 ? str(row[iKey]) : undefined) ?? uid ?? indexKey(rowOffset + groupStart + r),
        shard,
      };
      if (uid !== undefined) ref.uid = uid;
      if (row && iUrl >= 0) {
        const u = str(row[iUrl]);
        if (u !== undefined) ref.url = u;
      }
      if (row && iCap >= 0) {
        const c = str(row[iCap]);
        if (c !== undefined) ref.caption = c;
      }
      pending.push(ref);
      if (pending.length === batchRows) {
        const out = pending;
        pending = [];
        yield out;
        throwIfAborted(signal);
      }
    }
    groupStart = groupEnd;
  }
  if (pending.length > 0) yield pending;
}
