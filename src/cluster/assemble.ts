/**
 * The last step of a distributed exact run, in the submitting process: build each part's rows in
 * part order (part-rows.ts: row metadata + records + keep flags) and write what single-machine
 * `prune` writes (manifest, kept.txt, kept_uids.npy, stats.json, report.html) through the same
 * writers, then check rows in = rows out and kept = N_target.
 */
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import type { SelectionThresholds } from '../core/select.js';
import type { EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { createKeptKeysWriter, createManifestWriter, createUidSubsetWriter, OUTPUT_ROW_GROUP_ROWS, type ManifestFormat } from '../io/manifest.js';
import { ReportCollector } from '../report/report-data.js';
import { writeReport } from '../report/report-html.js';
import { OutputSet, prepareOutputDir } from '../io/output-set.js';
import { joinLocation } from '../io/storage/index.js';
import { RUN_OUTPUT_FILES, writeJsonAtomic } from '../io/stats.js';
import { exactStats, type ExactPruneResult } from '../../pipelines/exact-prune.js';
import { partManifestRows } from './part-rows.js';
import { ShardOutput, type ShardOutputOptions } from './shard-output.js';
import type { PruneRunSpec } from './run-spec.js';
import { quotaPlanOf, type PlanFile } from './select-job.js';
import type { WorkStore } from './work-store.js';


/** What a distributed run returns: exact mode's result, plus the shards of `--write-shards`. */
export type ClusterPruneResult = ExactPruneResult & { files: ExactPruneResult['files'] & { shards?: string[] } };

export interface AssembleInput {
  store: WorkStore;
  spec: PruneRunSpec;
  /** The embeddings source (`prune`); undefined for image shards. */
  source?: EmbeddingSourcePlan;
  plan: PlanFile;
  thresholds: SelectionThresholds;
  /** Parts whose decide job failed for good → error rows. */
  decideFailed: Record<string, string>;
  out: string;
  format: ManifestFormat;
  report: boolean;
  started: number;
  timings: Record<string, number>;
  /** `--write-shards` of an image-shard run. */
  writeShards?: ShardOutputOptions;
  signal?: AbortSignal;
}

/**
 * Writes the run's outputs to `out` as single-machine `prune` does: every file to a temporary name,
 * renamed into place together only when all succeeded (src/io/output-set.ts).
 */
export async function assembleOutputs(a: AssembleInput): Promise<ClusterPruneResult> {
  await prepareOutputDir(a.out);
  const outputs = new OutputSet();
  try {
    const result = await writeOutputs(a, outputs);
    await outputs.commit();
    return result;
  } catch (e) {
    await outputs.abort();
    throw e;
  }
}

async function writeOutputs(a: AssembleInput, outputs: OutputSet): Promise<ClusterPruneResult> {
  const { spec, plan } = a;
  const quotaPlan = quotaPlanOf(plan);
  for (const name of RUN_OUTPUT_FILES) outputs.replaces(joinLocation(a.out, name));
  const files: ClusterPruneResult['files'] = {
    manifest: joinLocation(a.out, `manifest.${a.format === 'arrow' ? 'arrow' : a.format}`),
    kept: joinLocation(a.out, 'kept.txt'),
    stats: joinLocation(a.out, 'stats.json'),
  };
  const manifest = createManifestWriter(outputs.file(files.manifest), a.format, { rowGroupRows: OUTPUT_ROW_GROUP_ROWS });
  const keptWriter = createKeptKeysWriter(outputs.file(files.kept));
  const total = plan.rows.reduce((x, y) => x + y, 0);
  const uidWriter = a.source?.parts.some((p) => p.metadata?.columns.uid) ? createUidSubsetWriter(outputs.file(joinLocation(a.out, 'kept_uids.npy'))) : undefined;
  const collector = a.report ? new ReportCollector({ k: spec.k, seed: spec.params.seed }) : undefined;
  const shards = a.writeShards ? new ShardOutput(spec, { ...a.writeShards, tempPath: (p) => outputs.file(p), signal: a.signal }) : undefined;
  const keptPerCluster = new Float64Array(spec.k);
  const errors: Record<string, number> = {};
  let kept = 0;
  let duplicates = 0;
  let written = 0;
  const assembleStart = performance.now();
  try {
    for (let p = 0; p < spec.parts.length; p++) {
      const shardPart = shards?.part(p, a.signal);
      for await (const rows of partManifestRows({ store: a.store, spec, source: a.source }, plan, p, a.decideFailed[p], a.signal)) {
        throwIfAborted(a.signal);
        const keptKeys: string[] = [];
        const keptUids: string[] = [];
        for (const row of rows) {
          if (row.decision === 'keep') {
            kept++;
            keptPerCluster[row.cluster]++;
            keptKeys.push(row.key);
            if (row.uid) keptUids.push(row.uid);
          } else if (row.reason === 'duplicate') duplicates++;
          else if (row.reason.startsWith('error:')) errors[row.reason] = (errors[row.reason] ?? 0) + 1;
        }
        written += rows.length;
        await manifest.write(rows);
        await keptWriter.write(keptKeys);
        collector?.observe(rows);
        collector?.tick((performance.now() - a.started) / 1000);
        if (uidWriter && keptUids.length > 0) await uidWriter.write(keptUids);
        await shardPart?.write(rows);
      }
      await shardPart?.end();
    }
    if (shards) files.shards = (await shards.close()).map((s) => s.tar);
  } finally {
    await manifest.close();
    await keptWriter.close();
    if (uidWriter) {
      await uidWriter.close();
      files.uids = joinLocation(a.out, 'kept_uids.npy');
    }
  }
  if (written !== total || (spec.totalRows >= 0 && total !== spec.totalRows)) throw new DbpruneError(ErrorCodes.INTERNAL, `assembled ${written} rows, expected ${spec.totalRows >= 0 ? spec.totalRows : total}`);
  const decideFailures = Object.keys(a.decideFailed).length;
  if (decideFailures === 0 && kept !== quotaPlan.nTarget) throw new DbpruneError(ErrorCodes.INTERNAL, `kept ${kept} samples, planned ${quotaPlan.nTarget}`);
  const seconds = (performance.now() - a.started) / 1000;
  const stats = exactStats(quotaPlan, keptPerCluster, { total, kept, invalid: plan.invalid, renormalized: plan.renormalized, seconds, duplicates, keys: plan.keys ?? { duplicates: 0, unwritable: 0 } });
  // Exact mode counts these itself; add the rows only the distributed run has (failed parts, shard errors).
  for (const [reason, n] of Object.entries(errors)) if (!['error:embedding', 'error:duplicate-key', 'error:invalid-key'].includes(reason)) stats.totals.errors[reason] = n;
  if (plan.dedup) {
    const d = plan.dedup;
    stats.params.dedup_eps = d.eps;
    stats.dedup = { mode: 'exact', eps: d.eps, deciding_eps: d.eps[0], removed: d.removed, kept_fraction: d.keptFraction, members: d.members, passes: d.tasks, largest_cluster: d.largestCluster };
  }
  stats.timings = { ...a.timings, assemble_s: (performance.now() - assembleStart) / 1000 };
  if (collector) {
    collector.setThroughput({ 'map (read+assign, all workers)': total / Math.max(1e-9, a.timings.map_s ?? 0), 'end to end': total / Math.max(1e-9, seconds) });
    stats.report = collector.toJSON().report;
  }
  await writeJsonAtomic(files.stats, stats, outputs);
  if (collector) files.report = await writeReport(a.out, { statsPath: outputs.file(files.stats), thumbnailsPath: null, outputs, signal: a.signal });
  return { stats, plan: { ...quotaPlan, thresholds: a.thresholds }, files };
}
