/** The JSONL manifest encoder: one JSON object a line, keys in column order, built as text. */
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { statusOfReason, type ManifestRow } from '../../core/sample.js';
import type { ByteSink } from './byte-sink.js';
import type { ManifestWriter } from './types.js';

/** A JSON string value, or `null` for null/undefined. */
const jsonString = (v: string | null | undefined): string => (v === null || v === undefined ? 'null' : JSON.stringify(v));

/**
 * The JSON object of one manifest row, keys in {@link MANIFEST_COLUMNS} order. Built as text:
 * the same bytes as `JSON.stringify({ key, shard, … })` (each value goes through JSON.stringify),
 * without an object per row; JSON.stringify of the whole object was the main thread's largest
 * cost of `dbprune run > manifest.jsonl` (issue 16).
 */
export function jsonLine(r: ManifestRow): string {
  const d = r.distance;
  const distance = d === null || d === undefined || !Number.isFinite(d) ? 'null' : JSON.stringify(d);
  return (
    `{"key":${JSON.stringify(r.key)},"shard":${jsonString(r.shard)},"url":${jsonString(r.url)},"caption":${jsonString(r.caption)},` +
    `"uid":${jsonString(r.uid)},"decision":${JSON.stringify(r.decision)},"reason":${JSON.stringify(r.reason)},"cluster":${JSON.stringify(r.cluster)},` +
    `"distance":${distance},"duplicate_of":${jsonString(r.duplicate_of)},"error":${jsonString(r.error)},"status":${JSON.stringify(statusOfReason(r.reason))}}`
  );
}

/**
 * JSONL text is handed to the byte sink every this many rows at most (≈ 2 MB at ~250 B a row): a
 * 65,536-row flush held ~17 MB of line strings, their join and its UTF-8 copy at once (peak RSS of
 * `dbprune run > manifest.jsonl`); the bytes written are the same.
 */
export const JSONL_FLUSH_ROWS = 8192;

export class JsonlWriter implements ManifestWriter {
  private count = 0;
  private chain: Promise<void> = Promise.resolve();
  private closing: Promise<{ rows: number }> | undefined;
  private pending: string[] = [];
  private pendingRows = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly flushRows: number,
  ) {}

  get rows(): number {
    return this.count;
  }

  write(rows: readonly ManifestRow[]): Promise<void> {
    if (this.closing) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'manifest write after close'));
    const p = this.chain.then(async () => {
      const lines = new Array<string>(rows.length + 1);
      for (let i = 0; i < rows.length; i++) lines[i] = jsonLine(rows[i]);
      lines[rows.length] = '';
      const text = lines.join('\n');
      this.count += rows.length;
      this.pending.push(text);
      this.pendingRows += rows.length;
      if (this.pendingRows >= this.flushRows) await this.flush();
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingRows = 0;
    await this.sink.write(text);
  }

  close(): Promise<{ rows: number }> {
    this.closing ??= this.chain.then(async () => {
      await this.flush();
      await this.sink.end();
      return { rows: this.count };
    });
    return this.closing;
  }
}
