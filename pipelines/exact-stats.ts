/**
 * stats.json of an exact run: parameters, totals and the per-cluster plan. Written by exact prune
 * (pipelines/exact-prune.ts) and assembled by the distributed mode (src/cluster/assemble.ts).
 */
import type { DbpQuotaPlan } from '../src/core/dbp.js';
import type { RunStats } from '../src/io/stats.js';

/** stats.json of an exact run (also assembled by the distributed mode, src/cluster/assemble.ts). */
export function exactStats(
  plan: DbpQuotaPlan,
  keptPerCluster: Float64Array,
  t: { total: number; kept: number; invalid: number; renormalized: number; seconds: number; duplicates: number; keys: { duplicates: number; unwritable: number } },
): RunStats {
  const arr = (a: ArrayLike<number>): number[] => Array.from(a);
  return {
    version: 1,
    mode: 'exact',
    method: 'Density-Based Pruning (Abbas et al., ICLR 2024)',
    params: {
      keep_ratio: plan.params.keepRatio,
      temperature: plan.params.temperature,
      num_nns: plan.params.numNNs,
      balance: plan.params.balance,
      which: plan.params.which,
      seed: plan.params.seed,
    },
    totals: {
      samples: t.total,
      valid: plan.n,
      n_target: plan.nTarget,
      kept: t.kept,
      dropped: t.total - t.kept,
      keep_ratio: t.total > 0 ? t.kept / t.total : 0,
      errors: {
        ...(t.invalid > 0 ? { 'error:embedding': t.invalid } : {}),
        ...(t.keys.duplicates > 0 ? { 'error:duplicate-key': t.keys.duplicates } : {}),
        ...(t.keys.unwritable > 0 ? { 'error:invalid-key': t.keys.unwritable } : {}),
      },
      duplicates: t.duplicates,
      renormalized: t.renormalized,
      k: plan.k,
      min_samples: plan.quota.minSamples,
      lambda: plan.quota.lambda,
      seconds: t.seconds,
      samples_per_sec: t.total / Math.max(1e-9, t.seconds),
    },
    clusters: {
      n: arr(plan.size),
      d_intra: arr(plan.dIntra),
      d_inter: arr(plan.dInter),
      complexity: arr(plan.complexity),
      p: arr(plan.prob),
      quota: arr(plan.quota.quota),
      quota_real: arr(plan.quota.real),
      lb: arr(plan.quota.lb),
      ub: arr(plan.quota.ub),
      kept: arr(keptPerCluster),
    },
  };
}
