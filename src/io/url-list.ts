/**
 * URL lists as img2dataset reads them: parquet, csv, tsv, json (an array of records), jsonl and txt
 * (one URL a line), each text format optionally gzipped; a file, a folder of them, a glob, or a
 * Readable (stdin). Rows come out as {@link UrlRef}s with img2dataset's keys and shard names, so
 * every output (manifest, shards) lines up with what img2dataset would have written.
 *
 * Key numbering (img2dataset's `compute_key`): each input file is cut into shards of
 * `samplesPerShard` rows (a new file starts a new shard; shard ids continue across files); the
 * key of row `i` of shard `s` is `s · 10^⌈log10(samplesPerShard)⌉ + i`, zero-padded to
 * `⌈log10(samplesPerShard)⌉ + oomShardCount` digits, and the shard name is `s` zero-padded to
 * `oomShardCount` digits. With the defaults (10,000 and 5): row 12 of shard 1 is `000010012`,
 * shard `00001`.
 *
 * This file is the public face (types, options, {@link urlListBatches}, {@link urlListSource});
 * the parts: url-list-keys.ts (numbering), url-list-columns.ts (row → UrlRef), url-list-csv.ts
 * (CSV/TSV), url-list-formats.ts (bytes, JSONL/TXT/JSON/Parquet, dispatch per format).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { checkOption, choiceOption, integerOption, signalOption, stringOption } from '../core/validate.js';
import type { RowError, SampleRef } from '../core/sample.js';
import { expandInputs, naturalCompare } from './glob.js';
import { isS3Uri, listLocation, statLocation } from './storage/index.js';
import { formatError, makeRef, type ColumnSpec } from './url-list-columns.js';
import { recordsOf } from './url-list-formats.js';
import { Numbering, type NumberingOptions } from './url-list-keys.js';

export { img2datasetKey, oomOf, shardName } from './url-list-keys.js';

/** URL list formats. Text formats may be gzipped (detected from the bytes, whatever the name). */
export type UrlListFormat = 'parquet' | 'csv' | 'tsv' | 'json' | 'jsonl' | 'txt';

export const URL_LIST_FORMATS: readonly UrlListFormat[] = ['parquet', 'csv', 'tsv', 'json', 'jsonl', 'txt'];

/** A JSON-safe value, as additional columns are carried into the `KEY.json` sidecar. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** One row of a URL list: a sample to download. */
export interface UrlRef extends SampleRef {
  /** The columns named in `saveAdditionalColumns`, JSON-safe (bigint → number or string, bytes → utf-8). */
  extra?: Record<string, JsonValue>;
  /** Set on rows that cannot be downloaded at all (`error:input`: no url). The row is still emitted. */
  error?: RowError;
}

/** Columns img2dataset reserves; `saveAdditionalColumns` may not name them. */
export const RESERVED_COLUMNS: ReadonlySet<string> = new Set([
  'key',
  'caption',
  'url',
  'width',
  'height',
  'original_width',
  'original_height',
  'status',
  'error_message',
  'exif',
  'md5',
  'sha256',
  'sha512',
]);

/** Options of {@link urlListSource} / {@link urlListBatches}: input (file, folder, glob, list or Readable), format (from the extension by default), columns and samples per shard. */
export interface UrlListOptions {
  /** A file, a folder (its files of the format, natural order), a glob / brace pattern, a list of
   *  those, or a Readable (then `format` is required; `parquet` is read whole into memory). */
  input: string | readonly string[] | Readable;
  /** Format; default from each file's extension (`.csv`, `.tsv.gz`, `.jsonl`, `.ndjson`, `.parquet`,
   *  `.json`, `.txt`). Required for a Readable. For a folder, only files of this format are read. */
  format?: UrlListFormat;
  /** URL column. Default `url`. Must exist (`ERR_DBPRUNE_INPUT_FORMAT` otherwise). */
  urlCol?: string;
  /** Caption column. Default `caption`; when left at the default and absent, rows have no caption;
   *  when given explicitly and absent, `ERR_DBPRUNE_INPUT_FORMAT`. */
  captionCol?: string;
  /** Extra columns copied into each row's `extra` (and the `KEY.json` sidecar). Default none. Must
   *  exist; may not be one of {@link RESERVED_COLUMNS}. */
  saveAdditionalColumns?: readonly string[];
  /** Rows per shard, as img2dataset's `number_sample_per_shard`. Default 10,000; 1 … 10^9. */
  samplesPerShard?: number;
  /** Digits of the shard number, img2dataset's `oom_shard_count`. Default 5; 1 … 12. */
  oomShardCount?: number;
  /** First shard id (img2dataset's `extend` mode). Default 0; ≥ 0. */
  startShardId?: number;
  /** UrlRefs per yielded batch. Default 8192; 1 … 2^20. A batch never spans two input files. */
  batchRows?: number;
  signal?: AbortSignal;
}

/** Format from a file name (`.gz` stripped first), or undefined. */
export function urlListFormatFromPath(path: string): UrlListFormat | undefined {
  let p = basename(path).toLowerCase();
  if (p.endsWith('.gz')) p = p.slice(0, -3);
  const ext = p.slice(p.lastIndexOf('.') + 1);
  if (ext === 'ndjson') return 'jsonl';
  if (ext === 'text' || ext === 'lst') return 'txt';
  return (URL_LIST_FORMATS as readonly string[]).includes(ext) ? (ext as UrlListFormat) : undefined;
}

interface Resolved extends ColumnSpec, NumberingOptions {
  batchRows: number;
}

/** Validates the options once (ERR_DBPRUNE_INVALID_OPTION); defaults and limits as in {@link UrlListOptions}. */
function resolve(o: UrlListOptions): Resolved {
  const extraCols = o.saveAdditionalColumns ?? [];
  checkOption(
    Array.isArray(extraCols) && extraCols.every((c) => typeof c === 'string' && c.length > 0 && !RESERVED_COLUMNS.has(c)),
    'saveAdditionalColumns',
    `column names, none of ${[...RESERVED_COLUMNS].join(', ')}`,
    extraCols,
  );
  if (o.format !== undefined) choiceOption(o.format, 'format', URL_LIST_FORMATS);
  return {
    urlCol: stringOption(o.urlCol, 'urlCol', { default: 'url' }),
    captionCol: stringOption(o.captionCol, 'captionCol', { default: 'caption' }),
    captionRequired: o.captionCol !== undefined,
    extraCols,
    samplesPerShard: integerOption(o.samplesPerShard, 'samplesPerShard', { default: 10_000, min: 1, max: 1e9 }),
    oomShardCount: integerOption(o.oomShardCount, 'oomShardCount', { default: 5, min: 1, max: 12 }),
    startShardId: integerOption(o.startShardId, 'startShardId', { default: 0, min: 0 }),
    batchRows: integerOption(o.batchRows, 'batchRows', { default: 8192, min: 1, max: 2 ** 20 }),
    signal: signalOption(o.signal),
  };
}

/** `[location, name]` of the files directly inside a folder or s3:// prefix (no hidden ones), naturally sorted. */
async function filesDirectlyIn(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  if (isS3Uri(dir)) {
    const prefix = `${dir.replace(/\/+$/, '')}/`;
    for await (const e of listLocation(prefix)) {
      const name = e.location.slice(prefix.length);
      if (!name.includes('/') && !name.startsWith('.')) out.push([e.location, name]);
    }
  } else {
    for (const n of await readdir(dir)) {
      const full = join(dir, n);
      if (!n.startsWith('.') && (await stat(full)).isFile()) out.push([full, n]);
    }
  }
  return out.sort((a, b) => naturalCompare(a[1], b[1]));
}

/** Expands the input to `[path, format]` pairs: folders list their files (natural order). */
async function listInputs(input: string | readonly string[], format: UrlListFormat | undefined): Promise<[string, UrlListFormat][]> {
  const paths = await expandInputs(typeof input === 'string' ? [input] : input);
  const out: [string, UrlListFormat][] = [];
  for (const p of paths) {
    if ((await statLocation(p))?.kind === 'directory') {
      const found: [string, UrlListFormat][] = [];
      for (const [full, n] of await filesDirectlyIn(p)) {
        const f = urlListFormatFromPath(n);
        if (f === undefined || (format !== undefined && f !== format)) continue;
        found.push([full, f]);
      }
      if (found.length === 0) {
        throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${p}: folder holds no ${format ?? 'URL list'} files`, { file: p });
      }
      out.push(...found);
      continue;
    }
    const f = format ?? urlListFormatFromPath(p);
    if (f === undefined) {
      throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${p}: cannot tell the URL list format from the name; give format (${URL_LIST_FORMATS.join(', ')})`, { file: p });
    }
    out.push([p, f]);
  }
  return out;
}

/**
 * Reads URL lists and yields batches of {@link UrlRef}s (at most `batchRows`, never spanning two
 * files), every row exactly once and in input order, with img2dataset's `key` and `shard` (see
 * the module comment). `url` (trimmed), `caption`, `uid` (when a `uid` column exists) and
 * `extra` (the `saveAdditionalColumns`) are filled in. A row without a usable url is still
 * yielded, with `error` = `error:input` (code `ERR_DBPRUNE_INPUT_FORMAT`) naming file and row.
 *
 * Memory: text formats stream (one batch at a time); parquet one row group of the chosen columns;
 * `json` (a single array) and a parquet Readable are read whole.
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for bad options (see {@link UrlListOptions} for defaults and limits).
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when a path, glob or folder matches nothing.
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file) for an unreadable file, a missing url / caption /
 *   additional column, or an unknown format.
 * @throws ERR_DBPRUNE_ABORTED when `signal` fires.
 */
export async function* urlListBatches(opts: UrlListOptions): AsyncGenerator<UrlRef[]> {
  const r = resolve(opts);
  const { input, format } = opts;
  throwIfAborted(r.signal);
  let sources: [string | Readable, string, UrlListFormat][];
  if (input instanceof Readable) {
    checkOption(format !== undefined, 'format', `given for a Readable input (${URL_LIST_FORMATS.join(', ')})`, format);
    sources = [[input, 'stdin', format as UrlListFormat]];
  } else {
    checkOption(
      typeof input === 'string' || (Array.isArray(input) && input.every((x) => typeof x === 'string')),
      'input',
      'a path, a list of paths, or a Readable',
      typeof input,
    );
    sources = (await listInputs(input, format)).map(([p, f]) => [p, p, f]);
  }
  const num = new Numbering(r);
  for (const [src, name, f] of sources) {
    throwIfAborted(r.signal);
    num.newFile();
    const state = { hasCaption: false };
    let batch: UrlRef[] = [];
    let row = 0;
    try {
      for await (const rec of recordsOf(src, name, f, r, state)) {
        batch.push(makeRef(rec, r, num, name, row++, state.hasCaption));
        if (batch.length === r.batchRows) {
          const out = batch;
          batch = [];
          yield out;
          throwIfAborted(r.signal);
        }
      }
    } catch (e) {
      if (e instanceof DbpruneError) throw e;
      throw formatError(name, `cannot read (${(e as Error)?.message ?? String(e)})`, { row }, e);
    }
    if (batch.length > 0) yield batch;
  }
}

/**
 * The same rows as {@link urlListBatches}, one {@link UrlRef} per chunk, as an objectMode
 * Readable: the source stage of a URLs pipeline (`urlListSource(o).pipe(download(...))`).
 * Errors: as {@link urlListBatches}, emitted as the stream's error.
 */
export function urlListSource(opts: UrlListOptions): Readable {
  // validate now, not at first read
  resolve(opts);
  return Readable.from(
    (async function* () {
      for await (const b of urlListBatches(opts)) yield* b;
    })(),
    { objectMode: true, highWaterMark: 1024 },
  );
}
