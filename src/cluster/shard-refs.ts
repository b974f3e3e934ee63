/**
 * The row metadata of an image-shard map part (`run <shards> --cluster`), columnar: one Arrow IPC
 * stream with a column per field (key, shard, url, caption, uid, and the error of a sample that
 * failed before assign), in shard order. Written by the map job, read by the submitter's assembly.
 */
import { tableFromIPC, tableToIPC, Table, Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { RowError, SampleRef } from '../core/sample.js';
import type { RefItem } from './part-rows.js';
import type { RunContext } from './run-context.js';
import { layout, readPartFiles } from './run-spec.js';

const FIELDS = ['key', 'shard', 'url', 'caption', 'uid', 'error_reason', 'error_message', 'error_code'] as const;

/** Encodes a shard part's refs (and errors) as an Arrow IPC stream. */
export function encodeShardRefs(items: readonly RefItem[]): Uint8Array {
  const column = (get: (x: RefItem) => string | undefined): Vector<Utf8> => vectorFromArray(items.map((x) => get(x) ?? null), new Utf8());
  const table = new Table({
    key: column((x) => x.ref.key),
    shard: column((x) => x.ref.shard),
    url: column((x) => x.ref.url),
    caption: column((x) => x.ref.caption),
    uid: column((x) => x.ref.uid),
    error_reason: column((x) => x.error?.reason),
    error_message: column((x) => x.error?.message),
    error_code: column((x) => x.error?.code),
  });
  return tableToIPC(table, 'stream');
}

/** Decodes {@link encodeShardRefs}' bytes in batches of `batchRows` items. */
export function* decodeShardRefs(bytes: Uint8Array, batchRows: number, where: string): Generator<RefItem[]> {
  const table = tableFromIPC(bytes);
  const cols = FIELDS.map((f) => {
    const c = table.getChild(f);
    if (!c) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${where}: refs lack column ${f}`, { file: where });
    return c;
  });
  const text = (c: number, i: number): string | undefined => (cols[c].get(i) as string | null) ?? undefined;
  for (let start = 0; start < table.numRows; start += batchRows) {
    const end = Math.min(table.numRows, start + batchRows);
    const out: RefItem[] = [];
    for (let i = start; i < end; i++) {
      const ref: SampleRef = { key: text(0, i) as string };
      for (const [c, name] of [[1, 'shard'], [2, 'url'], [3, 'caption'], [4, 'uid']] as const) {
        const v = text(c, i);
        if (v !== undefined) ref[name] = v;
      }
      const reason = text(5, i);
      const error: RowError | undefined = reason === undefined ? undefined : { reason: reason as RowError['reason'], message: text(6, i) ?? '', code: text(7, i) };
      out.push(error ? { ref, error } : { ref });
    }
    yield out;
  }
}

/** The refs of shard part `p`, in shard order, from its map output (checksum verified). */
export async function* readShardRefs(ctx: Pick<RunContext, 'store' | 'spec'>, p: number, batchRows: number): AsyncGenerator<RefItem[]> {
  const path = layout.mapRefs(ctx.spec.runId, p);
  const files = await readPartFiles(ctx.store, layout.mapDone(ctx.spec.runId, p), [path]);
  const bytes = files?.get(path);
  if (!bytes) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `map output of part ${p} (${ctx.spec.parts[p].input}) vanished or is corrupt`, { part: p });
  yield* decodeShardRefs(bytes, batchRows, `${ctx.store.root}/${path}`);
}
