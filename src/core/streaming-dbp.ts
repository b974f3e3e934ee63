/**
 * Streaming Density-Based Pruning: irrevocable keep/drop decisions, one per sample in arrival
 * order, from running statistics seeded by calibration (design.md, "Streaming mode").
 *
 * Per cluster j the state holds the running count n_j, Σδ_j, a δ histogram (sketch), and the
 * number kept. Every `updateInterval` samples the plan is recomputed with the SAME math as exact
 * mode: complexity C_j = d_inter_j · d̂_intra_j, p = softmax(C/τ), quotas x = the water-filling
 * solution ({@link quotaBounds} + {@link projectBoxSimplex}) on estimated cluster sizes n̂_j = π̂_j·T
 * (T = samples seen, at least the calibration sample size). The keep fraction is f_j = x_j / n̂_j.
 * A sample of cluster j with distance δ is kept (policy `hard`) iff δ ≥ θ_j, the (1 − f'_j)
 * quantile of the cluster's sketch, where f'_j = clip(f_j + D_j / H_j, 0, 1) adds feedback: D_j =
 * f_j·seen_j − kept_j is the cluster's deficit (negative: surplus) and H_j = max(feedbackMin,
 * feedbackHorizon·seen_j) the number of future members over which it is corrected. `easy` uses the
 * f'_j quantile and keeps δ ≤ θ_j; `random` keeps with probability f'_j (seeded hash of the
 * sample's arrival index, so restored state decides identically).
 *
 * **Arrival order.** The cluster sizes are estimated so that concepts arriving in runs do not
 * bias the plan (shrinkage toward calibration by measured overdispersion; see streaming-plan.ts).
 *
 * Measured on dbp-small (20000×64, k = 50, keep 0.3, 5% calibration sample; 20 calibration seeds,
 * `npx tsx bench/streaming-fidelity.ts --seeds 20`), vs exact mode: shuffled keep 0.294–0.303,
 * per-cluster L1 ≤ 0.061, Jaccard ≥ 0.918 (mean 0.927); cluster-sorted keep 0.287–0.311, Jaccard
 * ≥ 0.830 (mean 0.848); reverse-sorted and random runs similar (keep 0.284–0.319, Jaccard ≥ 0.814).
 *
 * **Keep-rate guard.** A calibration fitted on another distribution makes n̂ wrong however the
 * stream arrives, and the keep ratio drifts (dbp-small, `--foreign` calibration, shuffled: 0.786
 * kept for 0.3 asked, 0.274 for 0.1). Every plan therefore also solves a global gain g on the
 * fractions so that the plan, applied to the stream's own mix, keeps the target rate (plus the
 * global deficit paid back over feedbackHorizon·t), trusted as far as the mix is stationary or the
 * running ratio is off by more than 20% (streaming-guard.ts). Measured (5 seeds): foreign
 * calibration, shuffled → 0.301 / 0.100; in runs of concepts 0.34–0.41 for 0.3 (was 0.73–0.80); a
 * good calibration's fidelity is unchanged within noise (shuffled Jaccard 0.930 vs 0.931, runs
 * 0.826–0.861 vs 0.836–0.864). {@link StreamingDbp.calibrationCheck} reports the disagreement.
 *
 * Pure math, no I/O. State (including the sketches) round-trips through {@link StreamingDbp.snapshot}
 * / {@link StreamingDbp.restore} as plain JSON-able data.
 */
import { resolveDbpParams, type ResolvedDbpParams } from './dbp.js';
import { checkOption, DbpruneError, ErrorCodes } from './errors.js';
import { rowHash, type SelectionPolicy } from './select.js';
import { ClusterSketches } from './sketch.js';
import { integerOption, numberOption } from './validate.js';
import { compareWithCalibration, keepRateGain, type CalibrationCheck } from './streaming-guard.js';
import {
  checkVector,
  resolveTuning,
  type ResolvedTuning,
  type StreamingDbpOptions,
  type StreamingDbpSnapshot,
  type StreamingDbpStats,
} from './streaming-options.js';
import { calibrationOverdispersion, planQuotas, windowOverdispersion } from './streaming-plan.js';

export type { StreamingCalibration, StreamingDbpOptions, StreamingDbpSnapshot, StreamingDbpStats, StreamingDbpTuning } from './streaming-options.js';

/**
 * Keep fractions at or above this keep all: keepRatio 1 plans f = 1 − 2e-16 after float sums, and a
 * threshold (cached, or the lower edge of a fine log bin) can then sit above a new cluster minimum.
 */
const ALL_KEPT = 1 - 1e-9;
/** Share of a cluster in θ_j's bin above which that bin's members are kept at random (keepInCoarseBin). */
const COARSE_BIN_SHARE = 0.05;
/** ...and at least this many values: in a sparse sketch one value is 5% without being a concentration. */
const COARSE_BIN_MIN_COUNT = 32;

/**
 * The streaming decider. Call {@link decide} (or {@link decideBatch}) once per valid sample, in
 * arrival order; decisions are final. Not thread-safe; one instance per stream.
 */
export class StreamingDbp {
  readonly k: number;
  readonly params: ResolvedDbpParams;
  readonly tuning: ResolvedTuning;
  private readonly policy: SelectionPolicy;
  private readonly dInter: Float64Array;
  private readonly calCounts: Float64Array;
  private readonly calDIntra: Float64Array;
  private readonly calSize: number;
  private readonly sketches: ClusterSketches;

  private t = 0;
  private keptTotal = 0;
  private readonly n: Float64Array;
  private readonly sum: Float64Array;
  private readonly kept: Float64Array;

  private nextUpdate: number;
  private plans = 0;
  private phi = 1;
  private phiStationary = Infinity;
  private phiWindowPrev = Infinity;
  private tAtPlan = 0;
  private readonly nAtPlan: Float64Array;
  private streamWeight = 0;
  /** Global keep-rate gain on every f_j (see {@link rateGain}); 1 = the plan as computed. */
  private gain = 1;
  private readonly fraction: Float64Array;
  private readonly quota: Float64Array;
  private readonly sizeEstimate: Float64Array;
  private readonly dIntraHat: Float64Array;
  private readonly complexity: Float64Array;
  private readonly prob: Float64Array;
  /** Cached threshold per cluster, the f' level it was computed for, and the plan it belongs to. */
  private readonly theta: Float64Array;
  private readonly thetaLevel: Float64Array;
  private readonly thetaEpoch: Float64Array;

  /**
   * Validates options once (ERR_DBPRUNE_INVALID_OPTION, or UsageError for DBP parameters as in
   * exact mode) and plans from the calibration prior.
   */
  constructor(options: StreamingDbpOptions) {
    const k = integerOption(options.k, 'k', { min: 1 });
    this.k = k;
    this.params = resolveDbpParams(options.params);
    this.policy = this.params.which;
    this.tuning = resolveTuning(k, options.tuning);
    const cal = options.calibration;
    const dInter = options.dInter ?? cal?.dInter;
    checkVector(dInter, k, 'dInter');
    this.dInter = Float64Array.from(dInter as Float64Array);
    this.calCounts = new Float64Array(k);
    this.calDIntra = new Float64Array(k);
    this.calSize = 0;
    if (cal) {
      checkVector(cal.counts, k, 'calibration.counts');
      checkVector(cal.dIntra, k, 'calibration.dIntra');
      numberOption(cal.sampleSize, 'calibration.sampleSize', { min: 0 });
      let s = 0;
      for (let j = 0; j < k; j++) {
        const c = cal.counts[j];
        numberOption(c, 'calibration.counts', { min: 0 });
        this.calCounts[j] = c;
        this.calDIntra[j] = c > 0 ? cal.dIntra[j] : 0;
        s += c;
      }
      this.calSize = cal.sampleSize > 0 ? s : 0;
      if (this.calSize === 0) this.calCounts.fill(0);
      if (cal.sketches) {
        checkOption(cal.sketches.k === k, 'calibration.sketches', `sketches for k = ${k} clusters`, cal.sketches.k);
      }
    }
    this.sketches = new ClusterSketches(k, cal?.sketches?.bins ?? this.tuning.bins, cal?.sketches?.scale ?? this.tuning.sketchScale);
    // The tuning records the layout in use (a calibration's, if any), so snapshots restore it.
    this.tuning = { ...this.tuning, bins: this.sketches.bins, sketchScale: this.sketches.scale };
    if (cal?.sketches && this.calSize > 0) this.sketches.merge(cal.sketches);
    this.n = new Float64Array(k);
    this.nAtPlan = new Float64Array(k);
    this.sum = new Float64Array(k);
    this.kept = new Float64Array(k);
    this.fraction = new Float64Array(k);
    this.quota = new Float64Array(k);
    this.sizeEstimate = new Float64Array(k);
    this.dIntraHat = new Float64Array(k);
    this.complexity = new Float64Array(k);
    this.prob = new Float64Array(k);
    this.theta = new Float64Array(k).fill(NaN);
    this.thetaLevel = new Float64Array(k).fill(NaN);
    this.thetaEpoch = new Float64Array(k).fill(-1);
    this.nextUpdate = this.tuning.updateInterval;
    this.replan();
  }

  /** Samples decided so far. */
  get seen(): number {
    return this.t;
  }

  /** Samples kept so far. */
  get keptCount(): number {
    return this.keptTotal;
  }

  /**
   * Decides one sample of cluster `cluster` (0..k−1) with cosine distance `distance` (finite):
   * true = keep. Irrevocable; updates the running statistics. Throws ERR_DBPRUNE_INTERNAL on a
   * cluster outside 0..k−1 or a non-finite distance (an `assign` bug: error rows never get here).
   */
  decide(cluster: number, distance: number): boolean {
    if (!(Number.isInteger(cluster) && cluster >= 0 && cluster < this.k) || !Number.isFinite(distance)) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `streaming DBP got cluster ${cluster}, distance ${distance}`, { cluster, distance });
    }
    return this.step(cluster, distance);
  }

  /**
   * Decides `n` samples in order: out[i] = 1 (keep) or 0 (drop). Rows with cluster −1 (not
   * assigned) get 0 and do not touch the statistics; other invalid rows throw as in {@link decide}.
   */
  decideBatch(cluster: Int32Array, distance: Float32Array | Float64Array, n: number, out: Uint8Array): void {
    checkOption(n >= 0 && n <= cluster.length && n <= distance.length && n <= out.length, 'n', 'at most the arrays\u2019 length', n);
    for (let i = 0; i < n; i++) {
      const c = cluster[i];
      out[i] = c === -1 ? 0 : this.decide(c, distance[i]) ? 1 : 0;
    }
  }

  private step(j: number, d: number): boolean {
    if (this.t >= this.nextUpdate) {
      this.replan();
      this.nextUpdate = this.t + this.tuning.updateInterval;
    }
    const idx = this.t;
    this.t++;
    const f = Math.min(1, this.fraction[j] * this.gain);
    const before = this.n[j];
    const deficit = f * before - this.kept[j];
    this.n[j] = before + 1;
    this.sum[j] += d;
    this.sketches.add(j, d);
    let keep: boolean;
    if (f >= ALL_KEPT) keep = true;
    else if (f <= 0) keep = false;
    else {
      const horizon = Math.max(this.tuning.feedbackMin, this.tuning.feedbackHorizon * (before + 1));
      const level = Math.min(1, Math.max(0, f + deficit / horizon));
      if (this.policy === 'random') keep = rowHash(idx, this.params.seed) / 4294967296 < level;
      else if (level >= ALL_KEPT) keep = true;
      else if (level <= 0) keep = false;
      else if (this.sketches.count(j) < this.tuning.minSketch) keep = deficit + f >= 0.5;
      else {
        const theta = this.thresholdFor(j, level);
        keep = this.policy === 'hard' ? d >= theta : d <= theta;
        const b = this.sketches.binIndex(theta);
        if (this.sketches.binIndex(d) === b) keep = this.keepInCoarseBin(j, b, level, idx, keep);
      }
    }
    if (keep) {
      this.kept[j]++;
      this.keptTotal++;
    }
    return keep;
  }

  /**
   * A sample in the bin that holds θ_j: when that bin holds more than {@link COARSE_BIN_SHARE} of
   * the cluster (and ≥ {@link COARSE_BIN_MIN_COUNT} values), the sketch cannot split its members (δ spread below the bin width, e.g. the
   * fixed-norm noise of bench/synth.ts: ±0.5% relative), and interpolating inside it misses the
   * level by up to the whole share. Keep it then with the probability that meets the level,
   * (level − share beyond the bin) / share inside (seeded hash of the row); else `keep` stands.
   */
  private keepInCoarseBin(j: number, b: number, level: number, idx: number, keep: boolean): boolean {
    const { inside, above } = this.sketches.binShares(j, b);
    if (!(inside > COARSE_BIN_SHARE && inside * this.sketches.count(j) >= COARSE_BIN_MIN_COUNT)) return keep;
    const beyond = this.policy === 'hard' ? above : 1 - above - inside;
    const p = (level - beyond) / inside;
    return rowHash(idx, this.params.seed) / 4294967296 < p;
  }

  private thresholdFor(j: number, level: number): number {
    if (this.thetaEpoch[j] === this.plans && Math.abs(this.thetaLevel[j] - level) <= this.tuning.thresholdTolerance) return this.theta[j];
    const th = this.sketches.quantile(j, this.policy === 'hard' ? 1 - level : level);
    this.theta[j] = th;
    this.thetaLevel[j] = level;
    this.thetaEpoch[j] = this.plans;
    return th;
  }

  /** Recomputes π̂, d̂_intra, complexity, p, quotas and keep fractions (streaming-plan.ts). */
  private replan(): void {
    const { k, t, calSize } = this;
    const { smoothing, priorStrength } = this.tuning;
    let phi = calibrationOverdispersion(this.n, t, this.calCounts, calSize, smoothing);
    // A stream that is stationary but disagrees with calibration means stale calibration: trust it.
    const phiWindow = windowOverdispersion(this.n, t, this.nAtPlan, this.tAtPlan, smoothing);
    this.phiStationary = Math.max(phiWindow, this.phiWindowPrev);
    this.phiWindowPrev = phiWindow;
    this.nAtPlan.set(this.n);
    this.tAtPlan = t;
    if (this.tuning.trustStationary) phi = Math.min(phi, this.phiStationary);
    this.phi = phi;
    this.streamWeight = planQuotas(
      { k, t, phi, n: this.n, sum: this.sum, calCounts: this.calCounts, calDIntra: this.calDIntra, calSize, dInter: this.dInter },
      { priorStrength, smoothing, keepRatio: this.params.keepRatio, temperature: this.params.temperature, balance: this.params.balance },
      { sizeEstimate: this.sizeEstimate, dIntraHat: this.dIntraHat, complexity: this.complexity, prob: this.prob, quota: this.quota, fraction: this.fraction },
    );
    this.gain = this.rateGain();
    this.plans++;
  }

  /** The keep-rate guard's gain for the current plan (see streaming-guard.ts). */
  private rateGain(): number {
    return keepRateGain({
      n: this.n,
      t: this.t,
      fraction: this.fraction,
      kept: this.keptTotal,
      keepRatio: this.params.keepRatio,
      phiStationary: this.phiStationary,
      horizon: Math.max(this.tuning.feedbackMin, this.tuning.feedbackHorizon * this.t),
    });
  }

  /** Compares the stream seen so far with the calibration (see {@link CalibrationCheck}). */
  calibrationCheck(): CalibrationCheck {
    return compareWithCalibration({
      n: this.n,
      t: this.t,
      sum: this.sum,
      calCounts: this.calCounts,
      calDIntra: this.calDIntra,
      calSize: this.calSize,
      smoothing: this.tuning.smoothing,
      gain: this.gain,
    });
  }

  /** Per-cluster statistics of the current state (copies). */
  stats(): StreamingDbpStats {
    const k = this.k;
    const target = new Float64Array(k);
    for (let j = 0; j < k; j++) target[j] = Math.min(1, this.fraction[j] * this.gain) * this.n[j];
    return {
      seen: this.t,
      kept: this.keptTotal,
      keepRatio: this.t > 0 ? this.keptTotal / this.t : NaN,
      phi: this.phi,
      streamWeight: this.streamWeight,
      gain: this.gain,
      plans: this.plans,
      clusters: {
        n: Float64Array.from(this.n),
        sizeEstimate: Float64Array.from(this.sizeEstimate),
        dIntra: Float64Array.from(this.dIntraHat),
        dInter: Float64Array.from(this.dInter),
        complexity: Float64Array.from(this.complexity),
        prob: Float64Array.from(this.prob),
        quota: Float64Array.from(this.quota),
        fraction: Float64Array.from(this.fraction),
        target,
        kept: Float64Array.from(this.kept),
        threshold: Float64Array.from(this.theta),
      },
    };
  }

  /** The whole state as plain JSON-able data (arrays and strings only). */
  snapshot(): StreamingDbpSnapshot {
    const arr = (a: Float64Array): number[] => Array.from(a, (v) => (Number.isNaN(v) ? -1 : v));
    return {
      version: 1,
      k: this.k,
      params: { ...this.params },
      tuning: { ...this.tuning },
      dInter: arr(this.dInter),
      calCounts: arr(this.calCounts),
      calDIntra: arr(this.calDIntra),
      calSize: this.calSize,
      t: this.t,
      keptTotal: this.keptTotal,
      n: arr(this.n),
      sum: arr(this.sum),
      kept: arr(this.kept),
      sketches: this.sketches.toJSON(),
      nextUpdate: this.nextUpdate,
      plans: this.plans,
      phi: this.phi,
      streamWeight: this.streamWeight,
      gain: this.gain,
      fraction: arr(this.fraction),
      quota: arr(this.quota),
      sizeEstimate: arr(this.sizeEstimate),
      dIntraHat: arr(this.dIntraHat),
      complexity: arr(this.complexity),
      prob: arr(this.prob),
      // NaN is not JSON: thresholds are ≥ 0 and levels in [0, 1], so −1 stands for "none".
      theta: arr(this.theta),
      thetaLevel: arr(this.thetaLevel),
      thetaEpoch: arr(this.thetaEpoch),
      tAtPlan: this.tAtPlan,
      nAtPlan: arr(this.nAtPlan),
      phiWindowPrev: Number.isFinite(this.phiWindowPrev) ? this.phiWindowPrev : -1,
      phiStationary: Number.isFinite(this.phiStationary) ? this.phiStationary : -1,
    };
  }

  /**
   * Rebuilds a decider from {@link snapshot} output (also after a JSON round trip); it decides the
   * rest of the stream exactly as the original would. Throws ERR_DBPRUNE_INVALID_OPTION on a
   * malformed snapshot.
   */
  static restore(s: StreamingDbpSnapshot): StreamingDbp {
    checkOption(s !== null && typeof s === 'object' && s.version === 1, 'snapshot', 'a version 1 StreamingDbp snapshot', s?.version);
    const k = s.k;
    const f64 = (a: number[], name: string): Float64Array => {
      checkVector(a, k, `snapshot.${name}`);
      return Float64Array.from(a);
    };
    const sketches = ClusterSketches.fromJSON(s.sketches);
    const d = new StreamingDbp({
      k,
      params: s.params,
      dInter: f64(s.dInter, 'dInter'),
      calibration: { counts: f64(s.calCounts, 'calCounts'), dIntra: f64(s.calDIntra, 'calDIntra'), dInter: f64(s.dInter, 'dInter'), sampleSize: s.calSize },
      tuning: { ...s.tuning, bins: sketches.bins, sketchScale: sketches.scale },
    });
    checkOption(sketches.k === k, 'snapshot.sketches', `sketches for k = ${k}`, sketches.k);
    d.sketches.counts.set(sketches.counts);
    d.sketches.recountTotals();
    d.t = s.t;
    d.keptTotal = s.keptTotal;
    d.n.set(f64(s.n, 'n'));
    d.sum.set(f64(s.sum, 'sum'));
    d.kept.set(f64(s.kept, 'kept'));
    d.nextUpdate = s.nextUpdate;
    d.plans = s.plans;
    d.phi = s.phi;
    d.streamWeight = s.streamWeight;
    d.gain = typeof s.gain === 'number' && Number.isFinite(s.gain) && s.gain > 0 ? s.gain : 1;
    d.fraction.set(f64(s.fraction, 'fraction'));
    d.quota.set(f64(s.quota, 'quota'));
    d.sizeEstimate.set(f64(s.sizeEstimate, 'sizeEstimate'));
    d.dIntraHat.set(f64(s.dIntraHat, 'dIntraHat'));
    d.complexity.set(f64(s.complexity, 'complexity'));
    d.prob.set(f64(s.prob, 'prob'));
    const unNaN = (a: number[], name: string): Float64Array => f64(a, name).map((v) => (v < 0 ? NaN : v));
    d.theta.set(unNaN(s.theta, 'theta'));
    d.thetaLevel.set(unNaN(s.thetaLevel, 'thetaLevel'));
    d.thetaEpoch.set(f64(s.thetaEpoch, 'thetaEpoch'));
    d.tAtPlan = s.tAtPlan;
    d.nAtPlan.set(f64(s.nAtPlan, 'nAtPlan'));
    d.phiWindowPrev = s.phiWindowPrev < 0 ? Infinity : s.phiWindowPrev;
    d.phiStationary = s.phiStationary < 0 ? Infinity : s.phiStationary;
    return d;
  }
}
