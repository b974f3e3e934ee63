/**
 * The manifest rows of one part, built in the submitting process as single-machine pass 2 builds
 * them: the row metadata (an embeddings part's keys/metadata from the source, an image shard's refs
 * from its map output), the map records (cluster, δ) with SemDeDup applied, the key flags, and the
 * part's keep flags from its decide job (1 byte a record row). A part whose map job failed for good
 * becomes `error:worker` rows (its keys from the metadata when readable, else row numbers); a part
 * whose decide job failed, `error:worker` rows named by row number. No part is ever missing.
 */
import { basename } from 'node:path';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { decisionRow, errorRow, type ManifestRow, type RowError, type SampleRef } from '../core/sample.js';
import { partRefBatches, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { keyProblemRow } from '../io/key-problems.js';
import { indexKey } from '../io/metadata.js';
import { readDedupedPart } from './dedup-records.js';
import { readUrlChunk } from './map-shard-job.js';
import { readShardRefs } from './shard-refs.js';
import type { RunContext } from './run-context.js';
import { DECIDE_BATCH_ROWS, layout, readPartFiles } from './run-spec.js';
import type { PlanFile } from './select-job.js';

/** A row's ref and, for a sample that failed before assign, its error. */
export type RefItem = { ref: SampleRef; error?: RowError };

type PartContext = Pick<RunContext, 'store' | 'spec' | 'source'>;

/** The refs of an embeddings part; when the inputs cannot be read, refs named by global row number. */
async function* embeddingRefs(ctx: PartContext, p: number, fallback: boolean, signal?: AbortSignal): AsyncGenerator<RefItem[]> {
  const part = ctx.spec.parts[p];
  const source = ctx.source as EmbeddingSourcePlan;
  let done = 0;
  try {
    for await (const refs of partRefBatches(source, p, { batchRows: DECIDE_BATCH_ROWS, signal })) {
      done += refs.length;
      yield refs.map((ref) => ({ ref }));
    }
  } catch (e) {
    if (!fallback || done > 0) throw e;
    for (let start = 0; start < part.rows; start += DECIDE_BATCH_ROWS) {
      const n = Math.min(DECIDE_BATCH_ROWS, part.rows - start);
      yield Array.from({ length: n }, (_, i) => ({ ref: { key: indexKey(part.offset + start + i) } }));
    }
  }
}

/** The rows of a part whose map job failed for good. */
async function* failedMapRows(ctx: PartContext, p: number, failure: string, signal?: AbortSignal): AsyncGenerator<ManifestRow[]> {
  const worker: RowError = { reason: 'error:worker', message: `map job failed: ${failure}`, code: ErrorCodes.CLUSTER_JOB };
  const { spec } = ctx;
  if (spec.images?.download) {
    yield (await readUrlChunk(ctx, p)).map((ref) => errorRow({ key: ref.key, shard: ref.shard, url: ref.url, caption: ref.caption, uid: ref.uid }, worker));
    return;
  }
  if (spec.kind === 'run') {
    yield [errorRow({ key: basename(spec.parts[p].input).replace(/\.tar$/i, ''), shard: spec.parts[p].input }, worker)];
    return;
  }
  for await (const items of embeddingRefs(ctx, p, true, signal)) yield items.map(({ ref }) => errorRow(ref, worker));
}

/** The rows of a part whose decide job failed for good: named by global manifest row. */
function* failedDecideRows(ctx: PartContext, plan: PlanFile, p: number, failure: string | undefined): Generator<ManifestRow[]> {
  const message = `decide job failed: ${failure ?? 'no verified output'}`;
  const first = plan.rows.slice(0, p).reduce((x, y) => x + y, 0);
  for (let start = 0; start < plan.rows[p]; start += DECIDE_BATCH_ROWS) {
    const n = Math.min(DECIDE_BATCH_ROWS, plan.rows[p] - start);
    yield Array.from({ length: n }, (_, i) => errorRow({ key: indexKey(first + start + i), shard: ctx.spec.parts[p].input }, { reason: 'error:worker', message, code: ErrorCodes.CLUSTER_JOB }));
  }
}

/** Every manifest row of part `p`, in part order, in batches of at most {@link DECIDE_BATCH_ROWS}. */
export async function* partManifestRows(ctx: PartContext, plan: PlanFile, p: number, decideFailure: string | undefined, signal?: AbortSignal): AsyncGenerator<ManifestRow[]> {
  const { spec, store } = ctx;
  const mapFailure = plan.failed[p];
  if (mapFailure !== undefined) {
    yield* failedMapRows(ctx, p, mapFailure, signal);
    return;
  }
  const files = decideFailure === undefined ? await readPartFiles(store, layout.decideDone(spec.runId, p), [layout.decideKeep(spec.runId, p)]) : undefined;
  const keep = files?.get(layout.decideKeep(spec.runId, p));
  if (!keep) {
    yield* failedDecideRows(ctx, plan, p, decideFailure);
    return;
  }
  const part = await readDedupedPart(ctx, p);
  if (!part) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `map output of part ${p} (${spec.parts[p].input}) vanished or is corrupt`, { part: p, runId: spec.runId });
  const { cluster, distance } = part.records;
  if (keep.length !== part.records.n) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `decide output of part ${p} holds ${keep.length} flags for ${part.records.n} records`, { part: p, runId: spec.runId });
  const keyFlags = new Map(part.summary.keyFlags ?? []);
  let r = 0;
  let rows = 0;
  for await (const items of spec.kind === 'run' ? readShardRefs(ctx, p, DECIDE_BATCH_ROWS) : embeddingRefs(ctx, p, false, signal)) {
    const out = new Array<ManifestRow>(items.length);
    items.forEach(({ ref, error }, t) => {
      if (error) {
        out[t] = errorRow(ref, error);
        return;
      }
      const j = cluster[r];
      const flag = keyFlags.get(r);
      if (flag !== undefined) out[t] = keyProblemRow(ref, flag);
      else if (j === -1) out[t] = errorRow(ref, { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING });
      else if (j < -1) out[t] = decisionRow(ref, 'drop', 'duplicate', -2 - j, distance[r], part.duplicateOf.get(r) ?? null);
      else out[t] = decisionRow(ref, keep[r] === 1 ? 'keep' : 'drop', 'dbp', j, distance[r]);
      r++;
    });
    rows += out.length;
    yield out;
  }
  if (r !== part.records.n) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `part ${p} (${spec.parts[p].input}): ${r} rows with embeddings, ${part.records.n} records`, { part: p });
  if (rows !== plan.rows[p]) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `part ${p} (${spec.parts[p].input}): ${rows} rows, expected ${plan.rows[p]}`, { part: p });
}
