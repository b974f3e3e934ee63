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
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer } from 'hyparquet';
import { DbpruneError, ErrorCodes, checkOption, throwIfAborted } from '../core/errors.js';
import type { RowError, SampleRef } from '../core/sample.js';
import { expandInputs, naturalCompare } from './glob.js';
import { MAX_LINE_CHARS, textLines } from './lines.js';
import { isS3Uri, listLocation, openRead, statLocation } from './storage/index.js';
import { openParquetBuffer } from './parquet-source.js';

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

/** ⌈log10(n)⌉ as img2dataset computes it (`math.ceil(math.log10(n))`), exact for powers of ten. */
export function oomOf(n: number): number {
  let k = 0;
  let p = 1;
  while (p < n) {
    p *= 10;
    k++;
  }
  return k;
}

/** The shard name: `shardId` zero-padded to `oomShardCount` digits (`00003`). */
export function shardName(shardId: number, oomShardCount = 5): string {
  return String(shardId).padStart(oomShardCount, '0');
}

/**
 * img2dataset's key: `shardId · 10^⌈log10(samplesPerShard)⌉ + index`, zero-padded to
 * `⌈log10(samplesPerShard)⌉ + oomShardCount` digits. Exact for any shard id (string arithmetic).
 */
export function img2datasetKey(shardId: number, index: number, samplesPerShard = 10_000, oomShardCount = 5): string {
  const oom = oomOf(samplesPerShard);
  const low = oom === 0 ? '' : String(index).padStart(oom, '0');
  const raw = shardId === 0 ? String(index) : `${shardId}${low}`;
  return raw.padStart(oom + oomShardCount, '0');
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

interface Resolved {
  urlCol: string;
  captionCol: string;
  captionRequired: boolean;
  extraCols: readonly string[];
  samplesPerShard: number;
  oomShardCount: number;
  startShardId: number;
  batchRows: number;
  signal?: AbortSignal;
}

function resolve(o: UrlListOptions): Resolved {
  const urlCol = o.urlCol ?? 'url';
  checkOption(typeof urlCol === 'string' && urlCol.length > 0, 'urlCol', 'a non-empty string', urlCol);
  const captionCol = o.captionCol ?? 'caption';
  checkOption(typeof captionCol === 'string' && captionCol.length > 0, 'captionCol', 'a non-empty string', captionCol);
  const extraCols = o.saveAdditionalColumns ?? [];
  checkOption(
    Array.isArray(extraCols) && extraCols.every((c) => typeof c === 'string' && c.length > 0 && !RESERVED_COLUMNS.has(c)),
    'saveAdditionalColumns',
    `column names, none of ${[...RESERVED_COLUMNS].join(', ')}`,
    extraCols,
  );
  const samplesPerShard = o.samplesPerShard ?? 10_000;
  checkOption(Number.isInteger(samplesPerShard) && samplesPerShard >= 1 && samplesPerShard <= 1e9, 'samplesPerShard', 'an integer in 1..1e9', samplesPerShard);
  const oomShardCount = o.oomShardCount ?? 5;
  checkOption(Number.isInteger(oomShardCount) && oomShardCount >= 1 && oomShardCount <= 12, 'oomShardCount', 'an integer in 1..12', oomShardCount);
  const startShardId = o.startShardId ?? 0;
  checkOption(Number.isSafeInteger(startShardId) && startShardId >= 0, 'startShardId', 'a non-negative integer', startShardId);
  const batchRows = o.batchRows ?? 8192;
  checkOption(Number.isInteger(batchRows) && batchRows >= 1 && batchRows <= 2 ** 20, 'batchRows', 'an integer in 1..2^20', batchRows);
  checkOption(o.format === undefined || URL_LIST_FORMATS.includes(o.format), 'format', URL_LIST_FORMATS.join(' | '), o.format);
  return {
    urlCol,
    captionCol,
    captionRequired: o.captionCol !== undefined,
    extraCols,
    samplesPerShard,
    oomShardCount,
    startShardId,
    batchRows,
    signal: o.signal,
  };
}

function formatError(file: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.INPUT_FORMAT, `${file}: ${message}`, { file, ...extra }, cause === undefined ? undefined : { cause });
}

/** Converts a cell to a JSON-safe value. */
function jsonSafe(v: unknown): JsonValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, (x) => jsonSafe(x));
  if (typeof v === 'object') {
    const o: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = jsonSafe(x);
    return o;
  }
  return String(v);
}

function cellString(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** A record of one input row, by column name (values as the format gives them). */
type Rec = Record<string, unknown>;

/** Numbering state shared by all files of one read. */
class Numbering {
  shardId: number;
  private inShard = 0;
  private started = false;
  constructor(private readonly r: Resolved) {
    this.shardId = r.startShardId;
  }
  /** A new input file starts a new shard (img2dataset shards each file on its own). */
  newFile(): void {
    if (this.started && this.inShard > 0) {
      this.shardId++;
      this.inShard = 0;
    }
  }
  next(): { key: string; shard: string } {
    this.started = true;
    if (this.inShard === this.r.samplesPerShard) {
      this.shardId++;
      this.inShard = 0;
    }
    const key = img2datasetKey(this.shardId, this.inShard, this.r.samplesPerShard, this.r.oomShardCount);
    this.inShard++;
    return { key, shard: shardName(this.shardId, this.r.oomShardCount) };
  }
}

/** Builds the UrlRef of one row; `row` is the 0-based data row within its file. */
function makeRef(rec: Rec, r: Resolved, num: Numbering, file: string, row: number, hasCaption: boolean): UrlRef {
  const { key, shard } = num.next();
  const ref: UrlRef = { key, shard };
  const rawUrl = cellString(rec[r.urlCol]);
  const url = rawUrl?.trim();
  if (url) ref.url = url;
  if (hasCaption) {
    const c = cellString(rec[r.captionCol]);
    if (c !== undefined) ref.caption = c;
  }
  const uid = r.urlCol !== 'uid' ? cellString(rec.uid) : undefined;
  if (uid !== undefined) ref.uid = uid;
  if (r.extraCols.length > 0) {
    const extra: Record<string, JsonValue> = {};
    for (const c of r.extraCols) extra[c] = jsonSafe(rec[c]);
    ref.extra = extra;
  }
  if (!url) {
    ref.error = {
      reason: 'error:input',
      message: `${file} row ${row}: no url in column ${r.urlCol}${rawUrl === undefined ? '' : ` (got ${JSON.stringify(rawUrl)})`}`,
      code: ErrorCodes.INPUT_FORMAT,
    };
  }
  return ref;
}

function checkColumns(file: string, columns: readonly string[], r: Resolved): { hasCaption: boolean } {
  const have = new Set(columns);
  if (!have.has(r.urlCol)) throw formatError(file, `lacks the url column "${r.urlCol}" (has: ${columns.join(', ')})`);
  const hasCaption = have.has(r.captionCol);
  if (!hasCaption && r.captionRequired) throw formatError(file, `lacks the caption column "${r.captionCol}" (has: ${columns.join(', ')})`);
  const missing = r.extraCols.filter((c) => !have.has(c));
  if (missing.length > 0) throw formatError(file, `lacks additional column(s) ${missing.join(', ')} (has: ${columns.join(', ')})`);
  return { hasCaption };
}

// ---------------------------------------------------------------------------------------------
// text decoding: bytes (maybe gzipped) → lines

/** Yields the bytes of a stream, gunzipped when they start with the gzip magic. */
async function* maybeGunzip(src: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = typeof first.value === 'string' ? Buffer.from(first.value) : first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gz = createGunzip();
    const fed = Readable.from(all()).pipe(gz);
    // a failure of the source must surface through the gunzip stream
    yield* fed as AsyncIterable<Buffer>;
  } else {
    yield* all();
  }
}

/** A delimited record and the 1-based line it starts on. */
interface DelimitedRecord {
  fields: string[];
  line: number;
}

/**
 * TSV records: img2dataset's `text/tab-separated-values` has no quoting at all (CC3M/CC12M captions
 * hold bare `"`), so every line is one record and a quote is an ordinary character. Blank lines are
 * skipped (like pandas and pyarrow).
 */
async function* tsvRecords(bytes: AsyncIterable<Buffer>, file: string): AsyncGenerator<DelimitedRecord> {
  let line = 0;
  for await (const l of textLines(bytes, { file })) {
    line++;
    if (l === '') continue;
    yield { fields: l.split('\t'), line };
  }
}

/**
 * CSV records (RFC 4180: quotes, doubled quotes, delimiters and newlines inside quotes), from text
 * chunks; blank lines are skipped (like pandas and pyarrow). Strict where a lenient reader would
 * silently swallow rows: a quoted field that never closes, or whose closing quote is followed by
 * anything but the delimiter or a line end (a stray `"` pairing with a later quote), is an
 * `ERR_DBPRUNE_INPUT_FORMAT` error naming the line where the field opened — as img2dataset's
 * pyarrow reader fails on such a file rather than shifting every later row.
 */
async function* csvRecords(bytes: AsyncIterable<Buffer>, file: string): AsyncGenerator<DelimitedRecord> {
  const dec = new TextDecoder('utf-8');
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let quotePending = false; // saw a quote inside a quoted field: either "" or the closing quote
  let atFieldStart = true;
  let first = true;
  let line = 1; // current line (1-based)
  let recordLine = 1; // line the current record started on
  let quoteLine = 0; // line the open quoted field started on
  const strayQuote = (what: string): DbpruneError =>
    formatError(file, `line ${quoteLine}: the quoted field opened on this line ${what}; a stray " in an unquoted field? (quote the field and double its quotes, or use TSV, which has no quoting)`, {
      line: quoteLine,
    });
  const endRecord = function* (): Generator<DelimitedRecord> {
    fields.push(field);
    field = '';
    atFieldStart = true;
    const rec = fields;
    fields = [];
    if (!(rec.length === 1 && rec[0] === '')) yield { fields: rec, line: recordLine };
  };
  const feed = function* (s: string): Generator<DelimitedRecord> {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (inQuotes) {
        if (quotePending) {
          quotePending = false;
          if (c === 34) {
            field += '"';
            continue;
          }
          if (c !== 44 && c !== 10 && c !== 13) {
            throw strayQuote(`is closed on line ${line} by a quote followed by ${JSON.stringify(s[i])}`);
          }
          inQuotes = false; // the quote closed the field; fall through to unquoted handling
        } else if (c === 34) {
          quotePending = true;
          continue;
        } else {
          if (c === 10) line++;
          field += s[i];
          continue;
        }
      }
      if (c === 34 && atFieldStart) {
        inQuotes = true;
        atFieldStart = false;
        quoteLine = line;
      } else if (c === 44) {
        fields.push(field);
        field = '';
        atFieldStart = true;
      } else if (c === 10) {
        if (field.endsWith('\r')) field = field.slice(0, -1);
        yield* endRecord();
        line++;
        recordLine = line;
      } else {
        field += s[i];
        atFieldStart = false;
      }
    }
  };
  for await (const b of bytes) {
    let s = dec.decode(b, { stream: true });
    if (first && s.length > 0) {
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      first = false;
    }
    yield* feed(s);
    // The record being read is bounded like a line of a text list (checked once a chunk, so the
    // overshoot is at most one chunk): a quote that never closes cannot grow memory without end.
    let pending = field.length;
    for (const f of fields) pending += f.length;
    if (pending > MAX_LINE_CHARS) {
      throw formatError(file, `the record starting on line ${recordLine} is longer than ${MAX_LINE_CHARS} characters (a quoted field that never closes?)`, { line: recordLine });
    }
  }
  yield* feed(dec.decode());
  if (inQuotes && !quotePending) throw strayQuote('never closes (the file ends inside it)');
  quotePending = false;
  inQuotes = false;
  if (field.endsWith('\r')) field = field.slice(0, -1);
  if (field !== '' || fields.length > 0) yield* endRecord();
}

// ---------------------------------------------------------------------------------------------
// per-format row readers: yield records (column → value) for one input

/**
 * Rows of a CSV or TSV file. Every record must have as many fields as the header (pyarrow's rule,
 * which img2dataset reads with): a record with more or fewer is an `ERR_DBPRUNE_INPUT_FORMAT` error
 * naming its line, never a row whose columns shifted.
 */
async function* csvRows(bytes: AsyncIterable<Buffer>, delim: ',' | '\t', file: string, r: Resolved, state: { hasCaption: boolean }): AsyncGenerator<Rec> {
  let header: string[] | undefined;
  for await (const { fields: rec, line } of delim === '\t' ? tsvRecords(bytes, file) : csvRecords(bytes, file)) {
    if (!header) {
      header = rec.map((h) => h.trim());
      state.hasCaption = checkColumns(file, header, r).hasCaption;
      continue;
    }
    if (rec.length !== header.length) {
      const hint = delim === '\t' ? '' : ' (an unquoted comma, or a stray " that swallowed a line break?)';
      throw formatError(file, `line ${line} has ${rec.length} field(s), the header has ${header.length}${hint}`, { line });
    }
    const o: Rec = {};
    for (let i = 0; i < header.length; i++) o[header[i]] = rec[i] !== '' ? rec[i] : undefined;
    yield o;
  }
  if (!header) throw formatError(file, 'is empty (no header row)');
}

async function* jsonlRows(bytes: AsyncIterable<Buffer>, file: string, r: Resolved, state: { hasCaption: boolean }): AsyncGenerator<Rec> {
  let line = 0;
  let checked = false;
  state.hasCaption = true; // per record: a record without the caption key has no caption
  for await (const l of textLines(bytes, { file })) {
    line++;
    if (l.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      v = undefined;
    }
    if (!checked) {
      // the first record decides which optional columns exist
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        const keys = Object.keys(v as Rec);
        const missingExtra = r.extraCols.filter((c) => !keys.includes(c));
        if (missingExtra.length > 0) throw formatError(file, `lacks additional column(s) ${missingExtra.join(', ')} (line ${line})`);
        if (!keys.includes(r.captionCol) && r.captionRequired) throw formatError(file, `lacks the caption column "${r.captionCol}" (line ${line})`);
      }
      checked = true;
    }
    // A line that is not a JSON object is still a row: it gets error:input downstream (no url).
    yield v && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : {};
  }
}

async function* txtRows(bytes: AsyncIterable<Buffer>, file: string, r: Resolved): AsyncGenerator<Rec> {
  for await (const l of textLines(bytes, { file })) {
    if (l.trim() === '') continue; // pyarrow skips empty lines
    yield { [r.urlCol]: l.trim() };
  }
}

async function* jsonRows(bytes: AsyncIterable<Buffer>, file: string, r: Resolved, state: { hasCaption: boolean }): AsyncGenerator<Rec> {
  const chunks: Buffer[] = [];
  for await (const b of bytes) chunks.push(b);
  let text = Buffer.concat(chunks).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw formatError(file, `is not valid JSON (${(e as Error).message})`, {}, e);
  }
  let records: Rec[];
  if (Array.isArray(v)) {
    records = v.map((x) => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Rec) : {}));
  } else if (v && typeof v === 'object') {
    // pandas `to_json()` default orient="columns": { col: { "0": v, "1": v } } or { col: [v, v] }
    const cols = v as Record<string, unknown>;
    const names = Object.keys(cols);
    const index = new Set<string>();
    for (const n of names) {
      const c = cols[n];
      if (Array.isArray(c)) c.forEach((_, i) => index.add(String(i)));
      else if (c && typeof c === 'object') Object.keys(c).forEach((k) => index.add(k));
      else throw formatError(file, 'is neither an array of records nor an object of columns');
    }
    const order = [...index].sort((a, b) => Number(a) - Number(b) || naturalCompare(a, b));
    records = order.map((i) => {
      const o: Rec = {};
      for (const n of names) o[n] = (cols[n] as Record<string, unknown>)[i];
      return o;
    });
  } else {
    throw formatError(file, 'is neither an array of records nor an object of columns');
  }
  const columns = new Set<string>();
  for (const rec of records.slice(0, 1000)) for (const k of Object.keys(rec)) columns.add(k);
  if (records.length > 0) {
    const missing = r.extraCols.filter((c) => !columns.has(c));
    if (missing.length > 0) throw formatError(file, `lacks additional column(s) ${missing.join(', ')}`);
    if (!columns.has(r.captionCol) && r.captionRequired) throw formatError(file, `lacks the caption column "${r.captionCol}"`);
  }
  state.hasCaption = columns.has(r.captionCol);
  yield* records;
}

async function* parquetRows(file: AsyncBuffer, name: string, r: Resolved, state: { hasCaption: boolean }, signal?: AbortSignal): AsyncGenerator<Rec> {
  let meta;
  try {
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    throw formatError(name, `not a readable Parquet file (${(e as Error).message})`, {}, e);
  }
  const all = parquetSchema(meta).children.map((c) => c.element.name);
  state.hasCaption = checkColumns(name, all, r).hasCaption;
  const cols = [r.urlCol];
  if (state.hasCaption) cols.push(r.captionCol);
  for (const c of r.extraCols) if (!cols.includes(c)) cols.push(c);
  if (all.includes('uid') && !cols.includes('uid')) cols.push('uid');
  let start = 0;
  for (const rg of meta.row_groups) {
    throwIfAborted(signal);
    const n = Number(rg.num_rows);
    const end = start + n;
    let data: unknown[][] = [];
    if (n > 0) {
      try {
        await parquetRead({
          file,
          metadata: meta,
          columns: cols,
          rowStart: start,
          rowEnd: end,
          onComplete: (rows: unknown[][]) => {
            data = rows;
          },
        });
      } catch (e) {
        throw formatError(name, `cannot decode rows ${start}..${end} (${(e as Error).message})`, { row: start }, e);
      }
    }
    for (const row of data) {
      const o: Rec = {};
      for (let i = 0; i < cols.length; i++) o[cols[i]] = row[i];
      yield o;
    }
    start = end;
  }
}

async function* bytesOfStream(s: Readable): AsyncGenerator<Buffer> {
  for await (const c of s) yield typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
}

/** The bytes of a local file or an s3:// object, streamed. */
async function* bytesOfLocation(location: string): AsyncGenerator<Buffer> {
  yield* bytesOfStream(await openRead(location));
}

/** Records of one input (a path or a Readable) in the given format. */
function recordsOf(
  src: string | Readable,
  name: string,
  format: UrlListFormat,
  r: Resolved,
  state: { hasCaption: boolean },
): AsyncGenerator<Rec> {
  const bytes = (): AsyncGenerator<Buffer> => maybeGunzip(typeof src === 'string' ? bytesOfLocation(src) : bytesOfStream(src));
  switch (format) {
    case 'csv':
      return csvRows(bytes(), ',', name, r, state);
    case 'tsv':
      return csvRows(bytes(), '\t', name, r, state);
    case 'jsonl':
      return jsonlRows(bytes(), name, r, state);
    case 'txt':
      state.hasCaption = false;
      return txtRows(bytes(), name, r);
    case 'json':
      return jsonRows(bytes(), name, r, state);
    case 'parquet':
      return (async function* () {
        let file: AsyncBuffer;
        if (typeof src === 'string') {
          try {
            file = await openParquetBuffer(src);
          } catch (e) {
            if (e instanceof DbpruneError) throw e;
            throw formatError(name, 'cannot open Parquet file', {}, e);
          }
        } else {
          const chunks: Buffer[] = [];
          for await (const c of bytesOfStream(src)) chunks.push(c);
          const buf = Buffer.concat(chunks);
          const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
          file = { byteLength: ab.byteLength, slice: (s: number, e?: number) => ab.slice(s, e) };
        }
        yield* parquetRows(file, name, r, state, r.signal);
      })();
  }
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
