/**
 * Per-cluster quotas (DBP, Abbas et al. 2024): the solution of
 *
 *     min ½‖x‖² − (p·N_target)ᵀx   s.t.  Σx = N_target,  lb ≤ x ≤ ub
 *
 * with ub_j = n_j and lb_j = max(0, min(m, n_j − 1)), m = ⌊N_target / k · balance⌋ (balance > 0)
 * or 1. The problem is the Euclidean projection of p·N_target onto a box-constrained simplex, so its
 * exact optimum is x_j = clip(p_j·N_target − λ, lb_j, ub_j) with the scalar λ found by water-filling
 * over the sorted breakpoints. No QP solver is needed. Pure math, no I/O.
 */
import { checkOption, DbpruneError, ErrorCodes } from './errors.js';

/** Input of {@link solveQuotas}: sampling proportions, cluster sizes, the number of samples to keep and the per-cluster bounds. */
export interface QuotaInput {
  /** Sampling proportions p (sum 1), one per cluster. */
  prob: Float64Array;
  /** Cluster sizes n_j (counts; may be fractional estimates in streaming mode). */
  size: Float64Array;
  /** N_target: the number of samples to keep in all. */
  nTarget: number;
  /** Class-balance ratio (the reference's cls_bal_ratio), default 0.5; 0 disables (m = 1). */
  balance?: number;
}

/** Result of {@link solveQuotas}: the real-valued optimum, integer quotas (largest remainder, summing to ⌊nTarget⌋) and the bounds used. */
export interface QuotaSolution {
  /** The exact real-valued QP optimum x. */
  real: Float64Array;
  /** Integer quotas: largest-remainder rounding of `real`, within bounds, summing to ⌊nTarget⌋. */
  quota: Int32Array;
  lb: Float64Array;
  ub: Float64Array;
  lambda: number;
  /** m, the per-cluster minimum before the n_j − 1 cap. */
  minSamples: number;
}

/** lb/ub exactly as the reference computes them. */
export function quotaBounds(size: Float64Array, nTarget: number, balance: number): { lb: Float64Array; ub: Float64Array; minSamples: number } {
  const k = size.length;
  const minSamples = balance > 0 ? Math.floor((nTarget / k) * balance) : 1;
  const lb = new Float64Array(k);
  const ub = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    ub[j] = size[j];
    lb[j] = Math.max(0, Math.min(minSamples, size[j] - 1));
  }
  return { lb, ub, minSamples };
}

/**
 * Projection of `a` onto { x : Σx = total, lb ≤ x ≤ ub }: x = clip(a − λ, lb, ub).
 * Exact: finds the breakpoint segment holding λ by binary search, then solves the linear piece.
 * Throws ERR_DBPRUNE_INTERNAL when Σlb > total or Σub < total (infeasible).
 */
export function projectBoxSimplex(a: Float64Array, lb: Float64Array, ub: Float64Array, total: number): { x: Float64Array; lambda: number } {
  const k = a.length;
  let sumLb = 0;
  let sumUb = 0;
  for (let j = 0; j < k; j++) {
    sumLb += lb[j];
    sumUb += ub[j];
  }
  const tol = 1e-9 * Math.max(1, total);
  if (sumLb > total + tol || sumUb < total - tol) {
    throw new DbpruneError(ErrorCodes.INTERNAL, `quota problem infeasible: Σlb=${sumLb}, Σub=${sumUb}, target=${total}`);
  }
  const f = (lambda: number): number => {
    let s = 0;
    for (let j = 0; j < k; j++) {
      const v = a[j] - lambda;
      s += v < lb[j] ? lb[j] : v > ub[j] ? ub[j] : v;
    }
    return s;
  };
  // f is non-increasing and piecewise linear with breakpoints a_j − ub_j and a_j − lb_j.
  const bp = new Float64Array(2 * k);
  for (let j = 0; j < k; j++) {
    bp[2 * j] = a[j] - ub[j];
    bp[2 * j + 1] = a[j] - lb[j];
  }
  bp.sort();
  // Largest breakpoint index lo with f(bp[lo]) ≥ total; λ lies in [bp[lo], bp[lo + 1]].
  let lo = 0;
  let hi = bp.length - 1;
  if (f(bp[0]) < total) lo = -1;
  else {
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f(bp[mid]) >= total) lo = mid;
      else hi = mid - 1;
    }
  }
  const left = lo < 0 ? bp[0] - 1 : bp[lo];
  const right = lo + 1 < bp.length ? bp[lo + 1] : bp[bp.length - 1] + 1;
  // On (left, right) the active set is fixed: solve Σ_free (a_j − λ) + Σ_clamped bound = total.
  const mid = (left + right) / 2;
  let freeSum = 0;
  let freeCount = 0;
  let clamped = 0;
  for (let j = 0; j < k; j++) {
    const v = a[j] - mid;
    if (v <= lb[j]) clamped += lb[j];
    else if (v >= ub[j]) clamped += ub[j];
    else {
      freeSum += a[j];
      freeCount++;
    }
  }
  let lambda: number;
  if (freeCount === 0) lambda = left; // f is flat here: any λ in the segment is optimal
  else lambda = (freeSum + clamped - total) / freeCount;
  const x = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const v = a[j] - lambda;
    x[j] = v < lb[j] ? lb[j] : v > ub[j] ? ub[j] : v;
  }
  return { x, lambda };
}

/**
 * Rounds `real` (within integer bounds lb ≤ real ≤ ub) to integers that sum to exactly `total`:
 * floor everything, then give +1 to the largest fractional parts (ties: lower cluster index).
 * For this separable convex QP it equals the integer optimum.
 */
export function largestRemainder(real: Float64Array, lb: Float64Array, ub: Float64Array, total: number): Int32Array {
  const k = real.length;
  const q = new Int32Array(k);
  let sum = 0;
  const frac = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let f = Math.floor(real[j] + 1e-9);
    if (f < lb[j]) f = lb[j];
    if (f > ub[j]) f = ub[j];
    q[j] = f;
    frac[j] = real[j] - f;
    sum += f;
  }
  let remaining = total - sum;
  if (remaining > 0) {
    const order = Array.from({ length: k }, (_, j) => j).filter((j) => q[j] < ub[j]);
    order.sort((x, y) => frac[y] - frac[x] || x - y);
    for (let t = 0; t < order.length && remaining > 0; t++, remaining--) q[order[t]]++;
  } else if (remaining < 0) {
    const order = Array.from({ length: k }, (_, j) => j).filter((j) => q[j] > lb[j]);
    order.sort((x, y) => frac[x] - frac[y] || y - x);
    for (let t = 0; t < order.length && remaining < 0; t++, remaining++) q[order[t]]--;
  }
  return q;
}

/** Solves the DBP quota problem exactly and rounds it (see module docs). */
export function solveQuotas(input: QuotaInput): QuotaSolution {
  const { prob, size } = input;
  const balance = input.balance ?? 0.5;
  checkOption(prob.length === size.length && prob.length > 0, 'prob', 'an array as long as size', prob.length);
  checkOption(balance >= 0 && balance <= 1, 'balance', 'a number in [0, 1] (above 1 the lower bounds can exceed the target)', balance);
  const nTarget = Math.floor(input.nTarget);
  let n = 0;
  for (let j = 0; j < size.length; j++) n += size[j];
  checkOption(nTarget >= 0 && nTarget <= n + 1e-9, 'nTarget', `an integer in [0, ${n}]`, input.nTarget);
  const { lb, ub, minSamples } = quotaBounds(size, nTarget, balance);
  const a = new Float64Array(prob.length);
  for (let j = 0; j < a.length; j++) a[j] = prob[j] * nTarget;
  const { x, lambda } = projectBoxSimplex(a, lb, ub, nTarget);
  const quota = largestRemainder(x, lb, ub, nTarget);
  return { real: x, quota, lb, ub, lambda, minSamples };
}
