/**
 * The plan of streaming DBP ({@link StreamingDbp}, streaming-dbp.ts): from the running counts and
 * the calibration prior, the estimated cluster sizes n̂_j, the pooled d̂_intra_j, the complexity
 * C_j = d_inter_j · d̂_intra_j, p = softmax(C/τ), the water-filling quotas x_j and the keep
 * fractions f_j = x_j / n̂_j — the SAME math as exact mode, on estimated sizes.
 *
 * **Arrival order.** Running proportions π_run = n/t are unbiased only if the stream is
 * exchangeable; when concepts arrive in runs they are badly biased (a just-started cluster looks
 * tiny and keeps nearly everything). The size estimator therefore shrinks π_run toward the
 * calibration proportions π_cal with inverse-variance weights, where the variance of π_run is
 * *measured*: the two-sample statistic X² = Σ (π_run − π_calRaw)² / (π̄ (1/t + 1/S)) has mean
 * (k − 1) when the stream agrees with calibration; under runs it is inflated by an overdispersion
 * factor φ, estimated as φ = max(1, (X²/df)(1 + t/S) − t/S). Then
 *
 *     π̂ = (t/φ · π_run + S' · π_cal) / (t/φ + S'),   S' = priorStrength · S + smoothing · k
 *
 * On shuffled input φ ≈ 1 and the estimate pools calibration with the stream (running counts
 * dominate as t ≫ S); on cluster-sorted input φ is of the order of t and the plan stays on the
 * calibration proportions; in between (random runs) it moves smoothly. d̂_intra_j pools calibration
 * and stream per cluster, (Σδ_j + c_j·dcal_j)/(n_j + c_j), which is order-robust as long as the
 * members of one cluster arrive in no particular order of δ. A stream that disagrees with
 * calibration is thus planned on calibration for as long as it disagrees; `trustStationary` (off
 * by default) instead trusts a stream whose mix is stationary window to window (stale calibration).
 *
 * Pure math, no I/O.
 */
import { clusterComplexity, softmax } from './complexity.js';
import { projectBoxSimplex, quotaBounds } from './quota.js';

/**
 * Overdispersion φ of the running cluster mix (n over t samples) against the calibration mix
 * (calCounts over calSize): φ = max(1, (X²/df)(1 + t/S) − t/S); 1 without calibration or data.
 */
export function calibrationOverdispersion(n: Float64Array, t: number, calCounts: Float64Array, calSize: number, smoothing: number): number {
  const k = n.length;
  if (!(calSize > 0 && t > 0)) return 1;
  let x2 = 0;
  const pool = t + calSize + smoothing * k;
  for (let j = 0; j < k; j++) {
    const diff = n[j] / t - calCounts[j] / calSize;
    const pbar = (n[j] + calCounts[j] + smoothing) / pool;
    x2 += (diff * diff) / (pbar * (1 / t + 1 / calSize));
  }
  const df = Math.max(1, k - 1);
  return Math.max(1, (x2 / df) * (1 + t / calSize) - t / calSize);
}

/**
 * Overdispersion of the last window's mix (counts n − nAtPlan over t − tAtPlan samples) against
 * the history before it (nAtPlan over tAtPlan): ≫ 1 when concepts arrive in runs; +∞ before there
 * is both a window and a history.
 */
export function windowOverdispersion(n: Float64Array, t: number, nAtPlan: Float64Array, tAtPlan: number, smoothing: number): number {
  const k = n.length;
  const w = t - tAtPlan;
  const prev = tAtPlan;
  if (!(w > 0 && prev > 0)) return Infinity;
  let x2 = 0;
  const pool = t + smoothing * k;
  for (let j = 0; j < k; j++) {
    const a = n[j] - nAtPlan[j];
    const diff = a / w - nAtPlan[j] / prev;
    const pbar = (n[j] + smoothing) / pool;
    x2 += (diff * diff) / (pbar * (1 / w + 1 / prev));
  }
  return Math.max(1, x2 / Math.max(1, k - 1));
}

/** What the plan is computed from: the running statistics, the calibration prior and φ. */
export interface PlanInput {
  k: number;
  /** Samples seen. */
  t: number;
  /** Overdispersion to plan with (see {@link calibrationOverdispersion}). */
  phi: number;
  /** Per-cluster running counts and Σδ. */
  n: Float64Array;
  sum: Float64Array;
  /** Calibration counts, mean δ and sample size S (0: no prior). */
  calCounts: Float64Array;
  calDIntra: Float64Array;
  calSize: number;
  dInter: Float64Array;
}

/** The parameters the plan uses (tuning and DBP parameters). */
export interface PlanParams {
  priorStrength: number;
  smoothing: number;
  keepRatio: number;
  temperature: number;
  balance: number;
}

/** The plan's per-cluster outputs (length k each), written in place. */
export interface PlanOutput {
  readonly sizeEstimate: Float64Array;
  readonly dIntraHat: Float64Array;
  readonly complexity: Float64Array;
  readonly prob: Float64Array;
  readonly quota: Float64Array;
  readonly fraction: Float64Array;
}

/**
 * Plans quotas and keep fractions into `out`: π̂ shrinks the running proportions toward
 * calibration with weights t/φ and S' = priorStrength·S + smoothing·k, n̂ = π̂ · max(t, S, 1),
 * then complexity, softmax and water-filling as in exact mode. Returns the stream's weight
 * t/φ / (t/φ + S') in [0, 1].
 */
export function planQuotas(input: PlanInput, p: PlanParams, out: PlanOutput): number {
  const { k, t, phi, calSize, calCounts, calDIntra } = input;
  const { smoothing, priorStrength } = p;
  const wRun = t / phi;
  const wCal = priorStrength * calSize + smoothing * k;
  const calDen = calSize + smoothing * k;
  const scale = Math.max(t, calSize, 1);
  const hasData = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const piCal = (calCounts[j] + smoothing) / calDen;
    const piRun = t > 0 ? input.n[j] / t : 0;
    out.sizeEstimate[j] = ((wRun * piRun + wCal * piCal) / (wRun + wCal)) * scale;
    const m = input.n[j] + calCounts[j];
    hasData[j] = m;
    out.dIntraHat[j] = m > 0 ? (input.sum[j] + calCounts[j] * calDIntra[j]) / m : 0;
  }
  out.complexity.set(clusterComplexity(input.dInter, out.dIntraHat, hasData));
  out.prob.set(softmax(out.complexity, p.temperature));
  // Streaming plans keep fractions, not integer counts: no ⌊·⌋ here. (With it, a cold start —
  // no calibration, t = 0, scale 1 — planned ⌊keep · 1⌋ = 0 and kept nothing until the first re-plan.)
  const nTarget = p.keepRatio * scale;
  const { lb, ub } = quotaBounds(out.sizeEstimate, nTarget, p.balance);
  let sumLb = 0;
  for (let j = 0; j < k; j++) sumLb += lb[j];
  if (sumLb > nTarget) for (let j = 0; j < k; j++) lb[j] *= nTarget / sumLb; // balance > 1: keep it feasible
  const a = new Float64Array(k);
  for (let j = 0; j < k; j++) a[j] = out.prob[j] * nTarget;
  const { x } = projectBoxSimplex(a, lb, ub, nTarget);
  for (let j = 0; j < k; j++) {
    out.quota[j] = x[j];
    const s = out.sizeEstimate[j];
    out.fraction[j] = s > 0 ? Math.min(1, Math.max(0, x[j] / s)) : 1;
  }
  return wRun / (wRun + wCal);
}
