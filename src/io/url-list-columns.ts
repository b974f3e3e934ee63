/**
 * URL-list rows → {@link UrlRef}s: the column checks every format shares, JSON-safe copies of the
 * additional columns, and the url / caption / uid / extra fields of one row.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { Numbering } from './url-list-keys.js';
import type { JsonValue, UrlRef } from './url-list.js';

/** The columns a read looks for (validated options). */
export interface ColumnSpec {
  urlCol: string;
  captionCol: string;
  /** The caption column was named explicitly, so it must exist. */
  captionRequired: boolean;
  extraCols: readonly string[];
  signal?: AbortSignal;
}

/** A record of one input row, by column name (values as the format gives them). */
export type Rec = Record<string, unknown>;

/** What a row reader learns of the file's columns (whether the caption column exists). */
export interface ColumnState {
  hasCaption: boolean;
}

export function formatError(file: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): DbpruneError {
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
  return typeof v === 'symbol' ? v.toString() : null; // a function: nothing a parser yields
}

function cellString(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Builds the UrlRef of one row; `row` is the 0-based data row within its file. */
export function makeRef(rec: Rec, r: ColumnSpec, num: Numbering, file: string, row: number, hasCaption: boolean): UrlRef {
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

export function checkColumns(file: string, columns: readonly string[], r: ColumnSpec): ColumnState {
  const have = new Set(columns);
  if (!have.has(r.urlCol)) throw formatError(file, `lacks the url column "${r.urlCol}" (has: ${columns.join(', ')})`);
  const hasCaption = have.has(r.captionCol);
  if (!hasCaption && r.captionRequired) throw formatError(file, `lacks the caption column "${r.captionCol}" (has: ${columns.join(', ')})`);
  const missing = r.extraCols.filter((c) => !have.has(c));
  if (missing.length > 0) throw formatError(file, `lacks additional column(s) ${missing.join(', ')} (has: ${columns.join(', ')})`);
  return { hasCaption };
}

