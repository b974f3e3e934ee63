/**
 * The decide job: one part's keep flags (1 byte a record row), decided with the run's exact
 * thresholds and the part's tie offset (equal-key rows earlier parts took), written with a summary
 * and a checksum marker last. The manifest rows themselves are built once, by the submitter, from
 * these flags, the map records and the row metadata (part-rows.ts): the work dir holds no rows.
 * A part whose map job failed for good has no records: its flags are empty.
 */
import { denseTies, radixThresholds } from '../core/radix-select.js';
import { ThresholdSelector } from '../core/select.js';
import { readDedupedPart } from './dedup-records.js';
import type { RunContext } from './run-context.js';
import { layout, readPartFiles, readRunJson, writePartFiles } from './run-spec.js';
import type { PlanFile, SelectFile } from './select-job.js';

/** A decided part's counts. */
export interface DecideSummary {
  part: number;
  /** Record rows (the flags). */
  records: number;
  kept: number;
  /** Kept rows per cluster (sparse). */
  keptPerCluster: Record<number, number>;
}

/** Runs (or skips, when already done) the decide job of part `p`. */
export async function decidePart(ctx: RunContext, p: number): Promise<boolean> {
  const { spec, store } = ctx;
  if (await readPartFiles(store, layout.decideDone(spec.runId, p))) return false; // done and every checksum verifies
  const plan = await readRunJson<PlanFile>(store, layout.plan(spec.runId));
  const summary: DecideSummary = { part: p, records: 0, kept: 0, keptPerCluster: {} };
  let keep = new Uint8Array(0);
  if (plan.failed[p] === undefined) {
    const sel = plan.rounds === 0 ? { state: plan.state, ties: [] } : await readRunJson<SelectFile>(store, layout.selectState(spec.runId, plan.rounds));
    const selector = new ThresholdSelector(radixThresholds(sel.state), denseTies(spec.k, sel.ties?.[p]));
    const part = await readDedupedPart(ctx, p);
    if (!part) throw new Error(`map output of part ${p} (${spec.parts[p].input}) vanished or is corrupt`);
    const { cluster, distance, n } = part.records;
    const offset = plan.offsets[p];
    keep = new Uint8Array(n);
    summary.records = n;
    // Rows with cluster < 0 (invalid embedding, key problem, SemDeDup duplicate) are never kept.
    for (let r = 0; r < n; r++) {
      const j = cluster[r];
      if (j < 0 || !selector.keep(j, distance[r], offset + r)) continue;
      keep[r] = 1;
      summary.kept++;
      summary.keptPerCluster[j] = (summary.keptPerCluster[j] ?? 0) + 1;
    }
  }
  await writePartFiles(store, { [layout.decideKeep(spec.runId, p)]: keep, [layout.decideSummary(spec.runId, p)]: JSON.stringify(summary) }, layout.decideDone(spec.runId, p));
  return true;
}
