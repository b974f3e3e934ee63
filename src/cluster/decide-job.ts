/**
 * The decide job: one part's manifest rows, decided with the run's exact thresholds and the part's
 * tie offset (equal-key rows earlier parts took), built exactly as single-machine pass 2 builds
 * them; written as JSONL with a summary and a checksum marker last. A part whose map job failed for
 * good becomes `error:worker` rows (its keys from the metadata when readable, else row numbers), so
 * no part is ever missing from the output.
 */
import { ErrorCodes } from '../core/errors.js';
import { denseTies, radixThresholds } from '../core/radix-select.js';
import { decisionRow, errorRow, type ManifestRow, type SampleRef } from '../core/sample.js';
import { ThresholdSelector } from '../core/select.js';
import { partRefBatches } from '../io/embeddings-source.js';
import { indexKey } from '../io/metadata.js';
import { readMapPart } from './map-job.js';
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

/** The row refs of part `p`; when the inputs cannot be read, refs named by global row number. */
async function* refsOrRowNumbers(ctx: RunContext, p: number): AsyncGenerator<SampleRef[]> {
  const part = ctx.spec.parts[p];
  let done = 0;
  try {
    for await (const refs of partRefBatches(ctx.source, p, { batchRows: DECIDE_BATCH_ROWS })) {
      done += refs.length;
      yield refs;
    }
  } catch {
    if (done > 0) throw new Error(`the keys/metadata of ${part.npy} failed after ${done} rows`);
    for (let start = 0; start < part.rows; start += DECIDE_BATCH_ROWS) {
      const n = Math.min(DECIDE_BATCH_ROWS, part.rows - start);
      yield Array.from({ length: n }, (_, i) => ({ key: indexKey(part.offset + start + i) }));
    }
  }
}

/** Runs (or skips, when already done) the decide job of part `p`. */
export async function decidePart(ctx: RunContext, p: number): Promise<boolean> {
  const { spec, store } = ctx;
  if (await readPartFiles(store, layout.decideDone(spec.runId, p), [])) return false;
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
    for await (const refs of refsOrRowNumbers(ctx, p)) {
      for (const ref of refs) push(errorRow(ref, { reason: 'error:worker', message: `map job failed: ${failure}`, code: ErrorCodes.CLUSTER_JOB }));
    }
  } else {
    const sel = plan.rounds === 0 ? { state: plan.state, ties: [] } : await readRunJson<SelectFile>(store, layout.selectState(spec.runId, plan.rounds));
    const selector = new ThresholdSelector(radixThresholds(sel.state), denseTies(spec.k, sel.ties?.[p]));
    const part = await readMapPart(ctx, p);
    if (!part) throw new Error(`map output of part ${p} (${spec.parts[p].npy}) vanished or is corrupt`);
    const { cluster, distance } = part.records;
    const offset = spec.parts[p].offset;
    let i = 0;
    for await (const refs of partRefBatches(ctx.source, p, { batchRows: DECIDE_BATCH_ROWS })) {
      for (const ref of refs) {
        const j = cluster[i];
        if (j === -1) {
          push(errorRow(ref, { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING }));
        } else {
          const keep = selector.keep(j, distance[i], offset + i);
          if (keep) {
            summary.kept++;
            summary.keptPerCluster[j] = (summary.keptPerCluster[j] ?? 0) + 1;
          }
          push(decisionRow(ref, keep ? 'keep' : 'drop', 'dbp', j, distance[i]));
        }
        i++;
      }
    }
  }
  if (summary.rows !== spec.parts[p].rows) throw new Error(`part ${p} (${spec.parts[p].npy}): decided ${summary.rows} rows, expected ${spec.parts[p].rows}`);
  await writePartFiles(
    store,
    { [layout.decideRows(spec.runId, p)]: lines.length > 0 ? `${lines.join('\n')}\n` : '', [layout.decideSummary(spec.runId, p)]: JSON.stringify(summary) },
    layout.decideDone(spec.runId, p),
  );
  return true;
}
