/**
 * Between map and decide: the plan (merge the part summaries in part order: counts and exact Σδ →
 * d_intra; d_inter from the centroids; complexity, softmax and quotas by the single-machine code)
 * and the rounds of the distributed radix select (each part histograms the next key bits of its
 * records; the merge advances the state; the last merge also derives every part's tie offsets).
 */
import { ClusterAccumulator, interClusterDistance } from '../core/complexity.js';
import { planQuotas, type DbpQuotaPlan } from '../core/dbp.js';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { advanceRadixSelect, partRoundHistogram, radixSelectOpen, startRadixSelect, tiesBefore, type RadixSelectState, type SparseHistogram } from '../core/radix-select.js';
import { normalizedCopy } from '../core/vector.js';
import { readNpyFloat32 } from '../io/npy.js';
import { readDedupedPart } from './dedup-records.js';
import { addSummary, readMapSummary } from './map-job.js';
import type { RunContext } from './run-context.js';
import { layout, readRunJson } from './run-spec.js';

/** The plan as stored in `<runId>/plan.json`. */
export interface PlanFile {
  quota: {
    k: number;
    n: number;
    nTarget: number;
    params: DbpQuotaPlan['params'];
    size: number[];
    dIntra: number[];
    dInter: number[];
    complexity: number[];
    prob: number[];
    real: number[];
    quota: number[];
    lb: number[];
    ub: number[];
    lambda: number;
    minSamples: number;
  };
  /** The radix select before its first round. */
  state: RadixSelectState;
  /** Select rounds to run (0 when every cluster keeps all or none). */
  rounds: number;
  /** Parts whose map job failed for good → their rows become error rows. */
  failed: Record<string, string>;
  /** Manifest rows of each part (a failed shard: 1, its error row). */
  rows: number[];
  /** Global record row (the row number exact mode selects by) of each part's first record. */
  offsets: number[];
  invalid: number;
  renormalized: number;
  /** Repeated (shard, key) pairs and unwritable keys (error rows, outside the statistics). */
  keys: { duplicates: number; unwritable: number };
  /** SemDeDup's figures (runs with `--dedup-eps`). */
  dedup?: DedupStats;
}

/** What SemDeDup removed, for stats.json (as exact mode reports it). */
export interface DedupStats {
  eps: number[];
  /** Per ε: rows removed. */
  removed: number[];
  keptFraction: number[];
  /** Rows that took part (assigned to a cluster). */
  members: number;
  largestCluster: number;
  /** Dedup jobs run (exact mode reports its embedding passes here). */
  tasks: number;
}

/** `<runId>/select-R.json`: the state after round R; the last round adds each part's tie offsets. */
export interface SelectFile {
  state: RadixSelectState;
  ties?: Record<number, number>[];
}

export function quotaPlanOf(f: PlanFile): DbpQuotaPlan {
  const q = f.quota;
  const f64 = (a: number[]): Float64Array => Float64Array.from(a);
  return {
    params: q.params,
    k: q.k,
    n: q.n,
    nTarget: q.nTarget,
    size: f64(q.size),
    dIntra: f64(q.dIntra),
    dInter: f64(q.dInter),
    complexity: f64(q.complexity),
    prob: f64(q.prob),
    quota: { real: f64(q.real), quota: Int32Array.from(q.quota), lb: f64(q.lb), ub: f64(q.ub), lambda: q.lambda, minSamples: q.minSamples },
  };
}

/** What the map merge gathers besides the statistics (carried into plan.json). */
export type MapTotals = Pick<PlanFile, 'failed' | 'rows' | 'offsets' | 'invalid' | 'renormalized' | 'keys'>;

/** Reads the part summaries in part order: the merged statistics and the per-part totals. */
export async function collectMap(ctx: RunContext, failures: Map<number, string>): Promise<{ acc: ClusterAccumulator; totals: MapTotals }> {
  const { spec } = ctx;
  const acc = new ClusterAccumulator(spec.k);
  const totals: MapTotals = { failed: {}, rows: [], offsets: [], invalid: 0, renormalized: 0, keys: { duplicates: 0, unwritable: 0 } };
  let records = 0;
  for (let p = 0; p < spec.parts.length; p++) {
    totals.offsets.push(records);
    const s = await readMapSummary(ctx, p);
    if (!s) {
      totals.failed[p] = failures.get(p) ?? 'the map job left no output';
      totals.rows.push(spec.parts[p].rows >= 0 ? spec.parts[p].rows : 1);
      continue;
    }
    totals.rows.push(s.rows);
    records += s.recordRows;
    addSummary(acc, s);
    totals.invalid += s.invalid;
    totals.renormalized += s.renormalized;
    totals.keys.duplicates += s.keyDuplicates ?? 0;
    totals.keys.unwritable += s.keyUnwritable ?? 0;
  }
  return { acc, totals };
}

/** The map merge of a run without SemDeDup: plans the run from the part summaries and writes plan.json. */
export async function mergeMap(ctx: RunContext, failures: Map<number, string>): Promise<PlanFile> {
  const { acc, totals } = await collectMap(ctx, failures);
  return writePlan(ctx, acc, totals);
}

/** Plans quotas and the radix select from the merged statistics and writes plan.json (the phase's output, last). */
export async function writePlan(ctx: RunContext, acc: ClusterAccumulator, totals: MapTotals, dedup?: DedupStats): Promise<PlanFile> {
  const { spec, store } = ctx;
  const c = await readNpyFloat32(spec.centroids);
  const centroids = normalizedCopy(c.data, spec.k, spec.dim);
  const plan = planQuotas(acc.stats(), interClusterDistance(centroids, spec.k, spec.dim, spec.params.numNNs), spec.params);
  if (plan.n === 0) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, 'no valid embedding rows: every row holds NaN/Inf or zeros, or every part failed');
  const state = startRadixSelect(plan.size, plan.quota.quota, spec.params.which, spec.params.seed);
  const arr = (a: ArrayLike<number>): number[] => Array.from(a);
  const file: PlanFile = {
    quota: {
      k: plan.k,
      n: plan.n,
      nTarget: plan.nTarget,
      params: plan.params,
      size: arr(plan.size),
      dIntra: arr(plan.dIntra),
      dInter: arr(plan.dInter),
      complexity: arr(plan.complexity),
      prob: arr(plan.prob),
      real: arr(plan.quota.real),
      quota: arr(plan.quota.quota),
      lb: arr(plan.quota.lb),
      ub: arr(plan.quota.ub),
      lambda: plan.quota.lambda,
      minSamples: plan.quota.minSamples,
    },
    state,
    rounds: radixSelectOpen(state) ? Math.ceil(32 / state.bitsPerRound) : 0,
    ...totals,
    ...(dedup ? { dedup } : {}),
  };
  await store.write(layout.plan(spec.runId), JSON.stringify(file));
  return file;
}

/** The select state before round `round` (1-based). */
async function stateBefore(ctx: RunContext, round: number): Promise<RadixSelectState> {
  if (round === 1) return (await readRunJson<PlanFile>(ctx.store, layout.plan(ctx.spec.runId))).state;
  return (await readRunJson<SelectFile>(ctx.store, layout.selectState(ctx.spec.runId, round - 1))).state;
}

/** One part's histogram for round `round`; a failed part contributes nothing. */
export async function selectPart(ctx: RunContext, round: number, p: number): Promise<void> {
  const { spec, store } = ctx;
  const plan = await readRunJson<PlanFile>(store, layout.plan(spec.runId));
  let hist: SparseHistogram = { index: [], count: [] };
  if (plan.failed[p] === undefined) {
    const part = await readDedupedPart(ctx, p);
    if (!part) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `map output of part ${p} (${spec.parts[p].input}) vanished or is corrupt`, { part: p, runId: spec.runId });
    hist = partRoundHistogram(await stateBefore(ctx, round), part.records, plan.offsets[p]);
  }
  await store.write(layout.selectPart(spec.runId, round, p), JSON.stringify(hist));
}

/** Merges round `round`'s histograms in part order and writes the next state (and, last, the ties). */
export async function mergeSelect(ctx: RunContext, round: number): Promise<SelectFile> {
  const { spec, store } = ctx;
  const before = await stateBefore(ctx, round);
  const hists: SparseHistogram[] = [];
  for (let p = 0; p < spec.parts.length; p++) hists.push(await readRunJson<SparseHistogram>(store, layout.selectPart(spec.runId, round, p)));
  const state = advanceRadixSelect(before, hists);
  const file: SelectFile = { state };
  if (!radixSelectOpen(state)) file.ties = tiesBefore(before, state, hists);
  await store.write(layout.selectState(spec.runId, round), JSON.stringify(file));
  return file;
}
