/** Reading a whole manifest back (small manifests: tests, reports). */
import { readFileSync } from 'node:fs';
import { tableFromIPC, type Table } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import type { Decision, DecisionReason, DownloadStatus } from '../../core/sample.js';
import { MANIFEST_COLUMNS, manifestFormatFromPath, type ManifestRecord } from './types.js';

function rowsFromArrow(table: Table): ManifestRecord[] {
  const cols = new Map<string, { get(i: number): unknown } | null>();
  for (const c of MANIFEST_COLUMNS) cols.set(c, table.getChild(c));
  const get = (c: string, i: number): unknown => cols.get(c)?.get(i) ?? null;
  const str = (c: string, i: number): string | null => {
    const v = get(c, i);
    // Utf8 columns give strings; anything else (a foreign file) is shown as JSON
    return v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  };
  const out: ManifestRecord[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const dist = get('distance', i);
    out.push({
      key: String(get('key', i)),
      shard: str('shard', i),
      url: str('url', i),
      caption: str('caption', i),
      uid: str('uid', i),
      decision: String(get('decision', i)) as Decision,
      reason: String(get('reason', i)) as DecisionReason,
      cluster: Number(get('cluster', i) ?? -1),
      distance: dist === null ? null : Number(dist),
      duplicate_of: str('duplicate_of', i),
      error: str('error', i),
      status: String(get('status', i)) as DownloadStatus,
    });
  }
  return out;
}

/**
 * Reads a whole manifest written by {@link createManifestWriter} (format from the extension;
 * `.arrow` accepts the IPC file and stream formats). For tests and reports: loads everything.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file) for an unknown extension or unreadable file.
 */
export function readManifest(path: string): ManifestRecord[] {
  const format = manifestFormatFromPath(path);
  if (!format) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: unknown manifest extension`, { file: path });
  try {
    const bytes = readFileSync(path);
    if (format === 'jsonl') {
      const out: ManifestRecord[] = [];
      for (const line of bytes.toString('utf8').split('\n')) {
        if (line.trim()) out.push(JSON.parse(line) as ManifestRecord);
      }
      return out;
    }
    if (format === 'arrow') return rowsFromArrow(tableFromIPC(bytes));
    const wt = parquet.readParquet(bytes);
    return rowsFromArrow(tableFromIPC(wt.intoIPCStream()));
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: cannot read manifest (${(e as Error).message})`, { file: path }, { cause: e });
  }
}
