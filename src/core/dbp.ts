/**
 * Exact Density-Based Pruning over per-sample (cluster, δ) records: cluster statistics,
 * complexity, softmax proportions, quotas and selection thresholds. Pure math, no I/O.
 */
import { ClusterAccumulator, clusterComplexity, interClusterDistance, softmax, type ClusterStats } from './complexity.js';
import { UsageError } from './errors.js';
import { integerOption } from './validate.js';
import { solveQuotas, type QuotaSolution } from './quota.js';
import { selectionThresholds, SELECTION_POLICIES, ThresholdSelector, type ClusterRecords, type SelectionPolicy, type SelectionThresholds } from './select.js';

/** DBP parameters, named as the paper/reference does where it has names. */
export interface DbpParams {
  /** Fraction of the (deduplicated, valid) samples to keep, in (0, 1]. N_target = ⌊keepRatio·N⌋. */
  keepRatio: number;
  /** Softmax temperature τ, default 0.5 (> 0). */
  temperature?: number;
  /** numNNs for d_inter, default 20 (≥ 1). */
  numNNs?: number;
  /** Class-balance ratio (cls_bal_ratio), default 0.5, in [0, 1] (0 ⇒ m = 1; above 1 the lower bounds can exceed N_target). */
  balance?: number;
  /** Which members a cluster keeps: hard (largest δ, default), easy, random. */
  which?: SelectionPolicy;
  /** Seed for `random`, default 0. */
  seed?: number;
}

export type ResolvedDbpParams = Required<DbpParams>;

/** Validates and fills defaults once. Throws UsageError (exit 2 in the CLI) on bad values. */
export function resolveDbpParams(p: DbpParams): ResolvedDbpParams {
  const r: ResolvedDbpParams = {
    keepRatio: p.keepRatio,
    temperature: p.temperature ?? 0.5,
    numNNs: p.numNNs ?? 20,
    balance: p.balance ?? 0.5,
    which: p.which ?? 'hard',
    seed: p.seed ?? 0,
  };
  if (!(r.keepRatio > 0 && r.keepRatio <= 1)) throw new UsageError(`keep ratio must be in (0, 1], got ${p.keepRatio}`, { option: 'keep' });
  if (!(r.temperature > 0 && Number.isFinite(r.temperature))) throw new UsageError(`temperature must be > 0, got ${p.temperature}`, { option: 'temperature' });
  if (!(Number.isInteger(r.numNNs) && r.numNNs >= 1)) throw new UsageError(`num-nns must be an integer ≥ 1, got ${p.numNNs}`, { option: 'num-nns' });
  // Σ lb_j ≤ k·⌊N_target/k·balance⌋ ≤ N_target holds for every input only when balance ≤ 1; above it
  // the quota problem is infeasible on some inputs, which is knowable here, before any work.
  if (!(r.balance >= 0 && r.balance <= 1)) throw new UsageError(`balance must be in [0, 1], got ${p.balance}`, { option: 'balance' });
  if (!SELECTION_POLICIES.includes(r.which)) throw new UsageError(`which must be hard, easy or random, got ${p.which}`, { option: 'which' });
  integerOption(r.seed, 'seed');
  return r;
}

/** Everything exact mode decides, per cluster, before the decision pass. */
export interface DbpPlan {
  params: ResolvedDbpParams;
  k: number;
  /** Valid samples (assigned to a cluster). */
  n: number;
  nTarget: number;
  size: Float64Array;
  dIntra: Float64Array;
  dInter: Float64Array;
  complexity: Float64Array;
  prob: Float64Array;
  quota: QuotaSolution;
  thresholds: SelectionThresholds;
}

/** Everything {@link planDbp} decides except the selection thresholds (they need the records). */
export type DbpQuotaPlan = Omit<DbpPlan, 'thresholds'>;

/**
 * The per-cluster part of the plan from cluster statistics alone: complexity, softmax, quotas.
 * `dInter` from {@link interClusterDistance} (or calibration). Used by {@link planDbp} and by the
 * distributed mode, which merges the statistics of many parts.
 */
export function planQuotas(stats: ClusterStats, dInter: Float64Array, params: DbpParams): DbpQuotaPlan {
  const p = resolveDbpParams(params);
  const { size, dIntra } = stats;
  const k = size.length;
  let n = 0;
  for (let j = 0; j < k; j++) n += size[j];
  const complexity = clusterComplexity(dInter, dIntra, size);
  const prob = softmax(complexity, p.temperature);
  const nTarget = Math.floor(p.keepRatio * n);
  const quota = solveQuotas({ prob, size, nTarget, balance: p.balance });
  return { params: p, k, n, nTarget, size, dIntra, dInter, complexity, prob, quota };
}

/**
 * Plans exact DBP. `centroids` must be unit rows (k×dim); `dInter` may be given (e.g. from
 * calibration) to skip the O(k²·dim) computation.
 */
export function planDbp(
  records: ClusterRecords,
  centroids: Float32Array,
  k: number,
  dim: number,
  params: DbpParams,
  dInter?: Float64Array,
): DbpPlan {
  const p = resolveDbpParams(params);
  const acc = new ClusterAccumulator(k);
  acc.add(records.cluster, records.distance, records.n);
  const inter = dInter ?? interClusterDistance(centroids, k, dim, p.numNNs);
  const plan = planQuotas(acc.stats(), inter, p);
  const thresholds = selectionThresholds(records, plan.size, plan.quota.quota, p.which, p.seed);
  return { ...plan, thresholds };
}

/** The decision pass: call `keep` for every valid record in ascending row order. */
export function createDecider(plan: DbpPlan): ThresholdSelector {
  return new ThresholdSelector(plan.thresholds);
}
