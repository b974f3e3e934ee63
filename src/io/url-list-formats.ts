/**
 * Reading one URL-list input (a local file, an s3:// object or a Readable) in its format: the
 * bytes (gunzipped when they start with the gzip magic) and the records of JSONL, TXT, JSON,
 * Parquet, or CSV/TSV (url-list-csv.ts).
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parquetMetadataAsync, parquetRead, parquetSchema, type AsyncBuffer } from 'hyparquet';
import { DbpruneError, throwIfAborted } from '../core/errors.js';
import { naturalCompare } from './glob.js';
import { textLines } from './lines.js';
import { openParquetBuffer } from './parquet-source.js';
import { openRead } from './storage/index.js';
import { checkColumns, formatError, type ColumnSpec, type ColumnState, type Rec } from './url-list-columns.js';
import { csvRows } from './url-list-csv.js';
import type { UrlListFormat } from './url-list.js';

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

async function* jsonlRows(bytes: AsyncIterable<Buffer>, file: string, r: ColumnSpec, state: ColumnState): AsyncGenerator<Rec> {
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
        const keys = Object.keys(v);
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

async function* txtRows(bytes: AsyncIterable<Buffer>, file: string, r: ColumnSpec): AsyncGenerator<Rec> {
  for await (const l of textLines(bytes, { file })) {
    if (l.trim() === '') continue; // pyarrow skips empty lines
    yield { [r.urlCol]: l.trim() };
  }
}

async function* jsonRows(bytes: AsyncIterable<Buffer>, file: string, r: ColumnSpec, state: ColumnState): AsyncGenerator<Rec> {
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

async function* parquetRows(file: AsyncBuffer, name: string, r: ColumnSpec, state: ColumnState, signal?: AbortSignal): AsyncGenerator<Rec> {
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
export function recordsOf(
  src: string | Readable,
  name: string,
  format: UrlListFormat,
  r: ColumnSpec,
  state: ColumnState,
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
          const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
          file = { byteLength: ab.byteLength, slice: (s: number, e?: number) => ab.slice(s, e) };
        }
        yield* parquetRows(file, name, r, state, r.signal);
      })();
  }
}

