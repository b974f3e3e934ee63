/**
 * A map part's records as the select and decide jobs see them in a run with SemDeDup: the rows the
 * dedup merge removed carry cluster −2 − c (negative, so the selection skips them, as exact mode
 * marks them), with the key of the row each one duplicates. Without `--dedup-eps`: the map records.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { ClusterRecords } from '../core/select.js';
import { readMapPart, type MapSummary } from './map-job.js';
import type { RunContext } from './run-context.js';
import { layout } from './run-spec.js';

/** `<runId>/dedup/part-P.json`: the part's removed record rows, their clusters and the keys they duplicate. */
export interface DedupPartFile {
  /** Record rows of the part (ascending). */
  rows: number[];
  /** Key of the kept-or-earlier row each one duplicates (null when it could not be read). */
  of: (string | null)[];
}

/** A part's records with SemDeDup applied, and the duplicate targets' keys by record row. */
export interface DedupedPart {
  records: ClusterRecords;
  summary: MapSummary;
  duplicateOf: Map<number, string | null>;
}

/** Reads part `p`'s map output (checksums verified) and applies the dedup merge's removals; undefined when not done. */
export async function readDedupedPart(ctx: Pick<RunContext, 'store' | 'spec'>, p: number): Promise<DedupedPart | undefined> {
  const part = await readMapPart(ctx, p);
  if (!part) return undefined;
  const duplicateOf = new Map<number, string | null>();
  if (!ctx.spec.dedup) return { ...part, duplicateOf };
  const path = layout.dedupPart(ctx.spec.runId, p);
  const text = await ctx.store.readTextIfExists(path);
  if (text === undefined) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${ctx.store.root}/${path} is missing (the dedup phase has not finished?)`, { file: `${ctx.store.root}/${path}`, part: p });
  const file = JSON.parse(text) as DedupPartFile;
  const { cluster } = part.records;
  file.rows.forEach((r, i) => {
    if (cluster[r] < 0) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `dedup of part ${p} removes record row ${r}, which has no cluster`, { part: p, row: r });
    cluster[r] = -2 - cluster[r];
    duplicateOf.set(r, file.of[i]);
  });
  return { ...part, duplicateOf };
}
