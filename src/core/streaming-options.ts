/**
 * Options, tuning, statistics and snapshot types of {@link StreamingDbp} (streaming-dbp.ts), and
 * the tuning's validation. Pure; no I/O.
 */
import type { DbpParams, ResolvedDbpParams } from './dbp.js';
import { checkOption } from './errors.js';
import { DEFAULT_BINS, DEFAULT_SKETCH_SCALE, SKETCH_SCALES, type ClusterSketches, type ClusterSketchesJSON, type SketchScale } from './sketch.js';
import { booleanOption, choiceOption, integerOption, numberOption } from './validate.js';

/** Calibration statistics that seed the state (from `fit`, or any sample of the stream). */
export interface StreamingCalibration {
  /** Per-cluster member counts in the calibration sample (length k). */
  counts: Float64Array;
  /** Per-cluster mean δ in the calibration sample (length k; ignored where counts is 0). */
  dIntra: Float64Array;
  /** d_inter_j from the centroids (length k); used unless `dInter` is given to the constructor. */
  dInter: Float64Array;
  /** Per-cluster δ histograms of the calibration sample; copied, never mutated. */
  sketches?: ClusterSketches;
  /** Number of calibration samples (normally Σ counts). 0 means no prior. */
  sampleSize: number;
}

/** Tuning knobs; the defaults are the measured single setting for all arrival orders. */
export interface StreamingDbpTuning {
  /** Samples between re-plans (cost O(k log k) each). Default max(256, 2k); integer ≥ 1. */
  updateInterval?: number;
  /** Weight of the calibration proportions, in stream samples per calibration sample. Default 0.5; ≥ 0. */
  priorStrength?: number;
  /**
   * Pseudo-count per cluster added to calibration counts: unseen clusters stay plannable, and it
   * offsets the Jensen bias of f_j = x_j / n̂_j (E[1/(c+1)] ≈ 1/E[c] for Poisson counts), which
   * otherwise over-keeps when the plan rests on calibration (runs). Default 2; > 0.
   */
  smoothing?: number;
  /** Feedback horizon as a multiple of the cluster's seen count. Default 2; > 0. */
  feedbackHorizon?: number;
  /** Minimum feedback horizon in samples. Default 64; ≥ 1. */
  feedbackMin?: number;
  /** Below this many values in a cluster's sketch, decide by error diffusion instead of a threshold. Default 8; ≥ 1. */
  minSketch?: number;
  /** Change of f'_j that forces a fresh quantile (thresholds are cached otherwise). Default 0.002; in (0, 1). */
  thresholdTolerance?: number;
  /**
   * Also trust a stream whose mix is stationary (last window vs its history) where it disagrees
   * with calibration, i.e. treat disagreement as stale calibration rather than runs. Helps when
   * calibration is stale (dbp-small, 3:1 biased calibration, shuffled: Jaccard 0.74 → 0.92, keep
   * 0.318 → 0.298) but hurts when the mix shifts in long blocks (the two halves of the clusters
   * one after the other, good calibration: Jaccard 0.87 → 0.77). Default false.
   */
  trustStationary?: boolean;
  /** Sketch bins when calibration brings none. Default 2048 (see sketch.ts limits). */
  bins?: number;
  /**
   * Sketch bin layout when calibration brings none (a calibration's sketches impose theirs).
   * Default `log`: relative accuracy at every δ scale; `linear` cannot resolve tight clusters.
   */
  sketchScale?: SketchScale;
}

/** Options of {@link StreamingDbp}: k (integer ≥ 1), DBP parameters, d_inter or a calibration (one of the two is required), and tuning. Invalid values throw ERR_DBPRUNE_INVALID_OPTION. */
export interface StreamingDbpOptions {
  /** Number of clusters (integer ≥ 1). */
  k: number;
  /** DBP parameters as in exact mode (keepRatio, temperature, balance, which, seed; numNNs unused here). */
  params: DbpParams;
  /** d_inter per cluster (length k). Default: `calibration.dInter`; one of the two is required. */
  dInter?: Float64Array;
  /** Calibration prior. Without it the state starts cold (uniform proportions, empty sketches). */
  calibration?: StreamingCalibration;
  tuning?: StreamingDbpTuning;
}

/** Tuning with every default filled in (as validated by {@link resolveTuning}). */
export type ResolvedTuning = Required<StreamingDbpTuning>;

/** Per-cluster statistics of the current state (columnar, length k each). */
export interface StreamingDbpStats {
  /** Samples decided so far. */
  seen: number;
  kept: number;
  /** kept / seen (NaN before the first sample). */
  keepRatio: number;
  /** Measured overdispersion of the running cluster mix vs calibration (1 = consistent). */
  phi: number;
  /** Weight of the running proportions in the size estimate, in [0, 1]. */
  streamWeight: number;
  /** Keep-rate gain applied to every planned fraction (1 = none; see the keep-rate guard). */
  gain: number;
  /** Re-plans so far. */
  plans: number;
  clusters: {
    /** Members seen in the stream. */
    n: Float64Array;
    /** Estimated cluster size at the current scale (π̂_j · T). */
    sizeEstimate: Float64Array;
    dIntra: Float64Array;
    dInter: Float64Array;
    complexity: Float64Array;
    prob: Float64Array;
    /** Real-valued quota x_j of the last plan (scale T). */
    quota: Float64Array;
    /** Planned keep fraction f_j = x_j / n̂_j. */
    fraction: Float64Array;
    /** f_j · n_j: what cluster j should have kept of the members seen. */
    target: Float64Array;
    kept: Float64Array;
    /** Current δ threshold (NaN where none is cached yet). */
    threshold: Float64Array;
  };
}

/** The JSON-able state, as written by {@link StreamingDbp.snapshot}. */
export interface StreamingDbpSnapshot {
  version: 1;
  k: number;
  params: ResolvedDbpParams;
  tuning: ResolvedTuning;
  dInter: number[];
  calCounts: number[];
  calDIntra: number[];
  calSize: number;
  t: number;
  keptTotal: number;
  n: number[];
  sum: number[];
  kept: number[];
  sketches: ClusterSketchesJSON;
  nextUpdate: number;
  plans: number;
  phi: number;
  streamWeight: number;
  /** Keep-rate gain (absent in snapshots from before it existed: 1). */
  gain?: number;
  fraction: number[];
  quota: number[];
  sizeEstimate: number[];
  dIntraHat: number[];
  complexity: number[];
  prob: number[];
  theta: number[];
  thetaLevel: number[];
  thetaEpoch: number[];
  /** Window state of the stationarity test (−1 stands for +∞). */
  tAtPlan: number;
  nAtPlan: number[];
  phiWindowPrev: number;
  phiStationary: number;
}

/**
 * Fills in and validates the tuning for k clusters (ERR_DBPRUNE_INVALID_OPTION naming the knob).
 * `bins` is checked where the sketches are built (sketch.ts).
 */
export function resolveTuning(k: number, t: StreamingDbpTuning = {}): ResolvedTuning {
  // Order of checks as before the split: sketchScale first.
  const sketchScale = choiceOption(t.sketchScale, 'sketchScale', SKETCH_SCALES, DEFAULT_SKETCH_SCALE);
  return {
    updateInterval: integerOption(t.updateInterval, 'updateInterval', { default: Math.max(256, 2 * k), min: 1 }),
    priorStrength: numberOption(t.priorStrength, 'priorStrength', { default: 0.5, min: 0 }),
    smoothing: numberOption(t.smoothing, 'smoothing', { default: 2, min: 0, exclusiveMin: true }),
    feedbackHorizon: numberOption(t.feedbackHorizon, 'feedbackHorizon', { default: 2, min: 0, exclusiveMin: true }),
    feedbackMin: numberOption(t.feedbackMin, 'feedbackMin', { default: 64, min: 1 }),
    minSketch: integerOption(t.minSketch, 'minSketch', { default: 8, min: 1 }),
    thresholdTolerance: numberOption(t.thresholdTolerance, 'thresholdTolerance', { default: 0.002, min: 0, max: 1, exclusiveMin: true, exclusiveMax: true }),
    trustStationary: booleanOption(t.trustStationary, 'trustStationary', false),
    bins: t.bins ?? DEFAULT_BINS,
    sketchScale,
  };
}

/** @internal Throws ERR_DBPRUNE_INVALID_OPTION unless `v` has length k. */
export function checkVector(v: ArrayLike<number> | undefined, k: number, name: string): void {
  checkOption(v !== undefined && v.length === k, name, `an array of length k = ${k}`, v === undefined ? undefined : v.length);
}
