/**
 * The decide job: one part's manifest rows, decided with the run's exact thresholds and the part's
 * tie offset (equal-key rows earlier parts took), built exactly as single-machine pass 2 builds
 * them; written as JSONL with a summary and a checksum marker last. A part whose map job failed for
 * good becomes `error:worker` rows (its keys from the metadata when readable, else row numbers), so
 * no part is ever missing from the output.
 */
import { basename } from 'node:path';
import { ErrorCodes } from '../core/errors.js';
import { denseTies, radixThresholds } from '../core/radix-select.js';
import { decisionRow, errorRow, type ManifestRow, type RowError, type SampleRef } from '../core/sample.js';
import { ThresholdSelector } from '../core/select.js';
import { partRefBatches, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { indexKey } from '../io/metadata.js';
import { keyProblemRow } from '../io/key-problems.js';
import { readDedupedPart } from './dedup-records.js';
import type { RefLine } from './map-shard-job.js';
import type { RunContext } from './run-context.js';
import { DECIDE_BATCH_ROWS, layout, readPartFiles, readRunJson, writePartFiles } from './run-spec.js';
import type { PlanFile, SelectFile } from './select-job.js';

/** A decided part's counts. */
export interface DecideSummary {
  part: number;
  rows: number;
  kept: number;
  /** Rows with an `error:*` reason, by reason. */
  errors: Record<string, number>;
  /** Kept rows per cluster (sparse). */
  keptPerCluster: Record<number, number>;
}

/** A row's ref and, for a sample that failed before assign, its error. */
type RefItem = { ref: SampleRef; error?: RowError };

/** The refs of an embeddings part; when the inputs cannot be read, refs named by global row number. */
async function* embeddingRefs(ctx: RunContext, p: number, fallback: boolean): AsyncGenerator<RefItem[]> {
  const part = ctx.spec.parts[p];
  const source = ctx.source as EmbeddingSourcePlan;
  let done = 0;
  try {
    for await (const refs of partRefBatches(source, p, { batchRows: DECIDE_BATCH_ROWS })) {
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

/** The refs of a shard part, in shard order, from its map output. */
async function* shardRefs(ctx: RunContext, p: number): AsyncGenerator<RefItem[]> {
  const files = await readPartFiles(ctx.store, layout.mapDone(ctx.spec.runId, p), [layout.mapRefs(ctx.spec.runId, p)]);
  if (!files) throw new Error(`map output of part ${p} (${ctx.spec.parts[p].input}) vanished or is corrupt`);
  const text = (files.get(layout.mapRefs(ctx.spec.runId, p)) as Buffer).toString('utf8');
  const lines = text.length > 0 ? text.slice(0, -1).split('\n') : [];
  for (let start = 0; start < lines.length; start += DECIDE_BATCH_ROWS) {
    yield lines.slice(start, start + DECIDE_BATCH_ROWS).map((l) => {
      const { error, ...ref } = JSON.parse(l) as RefLine;
      return { ref, error };
    });
  }
}

/** Runs (or skips, when already done) the decide job of part `p`. */
export async function decidePart(ctx: RunContext, p: number): Promise<boolean> {
  const { spec, store } = ctx;
  if (await readPartFiles(store, layout.decideDone(spec.runId, p))) return false; // done and every checksum verifies
  const plan = await readRunJson<PlanFile>(store, layout.plan(spec.runId));
  const failure = plan.failed[p];
  const summary: DecideSummary = { part: p, rows: 0, kept: 0, errors: {}, keptPerCluster: {} };
  const lines: string[] = [];
  const push = (row: ManifestRow): void => {
    lines.push(JSON.stringify(row));
    summary.rows++;
    if (row.reason.startsWith('error:')) summary.errors[row.reason] = (summary.errors[row.reason] ?? 0) + 1;
  };
  if (failure !== undefined) {
    const worker: RowError = { reason: 'error:worker', message: `map job failed: ${failure}`, code: ErrorCodes.CLUSTER_JOB };
    if (spec.kind === 'run') push(errorRow({ key: basename(spec.parts[p].input).replace(/\.tar$/i, ''), shard: spec.parts[p].input }, worker));
    else for await (const items of embeddingRefs(ctx, p, true)) for (const { ref } of items) push(errorRow(ref, worker));
  } else {
    const sel = plan.rounds === 0 ? { state: plan.state, ties: [] } : await readRunJson<SelectFile>(store, layout.selectState(spec.runId, plan.rounds));
    const selector = new ThresholdSelector(radixThresholds(sel.state), denseTies(spec.k, sel.ties?.[p]));
    const part = await readDedupedPart(ctx, p);
    if (!part) throw new Error(`map output of part ${p} (${spec.parts[p].input}) vanished or is corrupt`);
    const { cluster, distance } = part.records;
    const offset = plan.offsets[p];
    const keyFlags = new Map(part.summary.keyFlags ?? []);
    let r = 0;
    for await (const items of spec.kind === 'run' ? shardRefs(ctx, p) : embeddingRefs(ctx, p, false)) {
      for (const { ref, error } of items) {
        if (error) {
          push(errorRow(ref, error));
          continue;
        }
        const j = cluster[r];
        const flag = keyFlags.get(r);
        if (flag !== undefined) {
          push(keyProblemRow(ref, flag));
        } else if (j === -1) {
          push(errorRow(ref, { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING }));
        } else if (j < -1) {
          push(decisionRow(ref, 'drop', 'duplicate', -2 - j, distance[r], part.duplicateOf.get(r) ?? null));
        } else {
          const keep = selector.keep(j, distance[r], offset + r);
          if (keep) {
            summary.kept++;
            summary.keptPerCluster[j] = (summary.keptPerCluster[j] ?? 0) + 1;
          }
          push(decisionRow(ref, keep ? 'keep' : 'drop', 'dbp', j, distance[r]));
        }
        r++;
      }
    }
    if (r !== part.records.n) throw new Error(`part ${p} (${spec.parts[p].input}): ${r} rows with embeddings, ${part.records.n} records`);
  }
  if (summary.rows !== plan.rows[p]) throw new Error(`part ${p} (${spec.parts[p].input}): decided ${summary.rows} rows, expected ${plan.rows[p]}`);
  await writePartFiles(
    store,
    { [layout.decideRows(spec.runId, p)]: lines.length > 0 ? `${lines.join('\n')}\n` : '', [layout.decideSummary(spec.runId, p)]: JSON.stringify(summary) },
    layout.decideDone(spec.runId, p),
  );
  return true;
}
