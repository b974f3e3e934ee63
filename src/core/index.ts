/** dbprune/core — pure math: vectors, nearest-centroid conventions, complexity, quotas, selection, sketches, k-means, SemDeDup, streaming DBP. No I/O and no native addon (the ORT-backed kernels are in src/kernels, exported by the package root); a test checks the built entry resolves nothing outside this folder. */
export {
  ClusterAccumulator, clusterComplexity, interClusterDistance, interClusterDistanceByRows, softmax,
  type ClusterStats
} from './complexity.js';
export {
  createDecider, planDbp, planQuotas, resolveDbpParams, type DbpParams, type DbpPlan, type DbpQuotaPlan,
  type ResolvedDbpParams
} from './dbp.js';
export {
  DbpruneError, ErrorCodes, UsageError, isDbpruneError, throwIfAborted, type ErrorCode,
  type ErrorContext
} from './errors.js';
export {
  booleanOption, checkOption, choiceOption, describeRange, inRange, integerOption, numberListOption, numberOption,
  optionalOption, signalOption, stringListOption, stringOption, type NumberRange, type NumberSpec
} from './validate.js';
export {
  KMEANSPP_MAX_WORK, KMEANS_INITS, kmeansPlusPlus, randomRows, sphericalKMeansWith, type KMeansOptions,
  type KMeansResult
} from './kmeans.js';
export {
  ASSIGN_MODES, NEAREST_BACKENDS, NEAR_TIE, assignJs, checkCentroids, createJsNearest, nearestBruteForceJs,
  resolveTop2, type AssignMode, type NearestAssigner, type NearestAssignerFactory, type NearestBackend, type NearestResult, type Top2
} from './nearest.js';
export {
  largestRemainder, projectBoxSimplex, quotaBounds, solveQuotas, type QuotaInput, type QuotaSolution
} from './quota.js';
export { RowReservoir } from './reservoir.js';
export { Rng } from './rng.js';
export {
  BATCH_HIGH_WATER_MARK, decisionRow, errorRow, statusOfReason, type BatchFields, type Decision,
  type DecisionReason, type DecodedSample, type DownloadStatus, type EmbeddingBatch, type ImageSample,
  type ManifestRow, type RowError, type SampleRef
} from './sample.js';
export {
  SELECTION_POLICIES, ThresholdSelector, rowHash, selectionKey, selectionThresholds, type ClusterRecords,
  type SelectionPolicy, type SelectionThresholds
} from './select.js';
export {
  DEDUP_ORDERS, MAX_EPS_VALUES, exactSemDedup, exactSemDedupByPasses, nearestByDot, parseEpsList,
  planDedupPasses, semDedupCluster, semDedupReferenceMatrix, sortClusterMembers, streamingDedupBruteForce,
  type ClusterDedupScores, type ClusterMembers, type DedupOrder, type ExactSemDedupOptions,
  type ExactSemDedupPassesOptions, type RowChunk, type SemDedupResult
} from './semdedup.js';
export {
  ClusterSketches, DEFAULT_BINS, DEFAULT_SKETCH_SCALE, DistanceHistogram, SKETCH_MAX, SKETCH_MIN, SKETCH_SCALES,
  binEdges, scaleFromJSON, sketchScaleFor, type ClusterSketchesJSON, type DistanceHistogramJSON,
  type SketchScale
} from './sketch.js';
export {
  StreamingDbp, type StreamingCalibration, type StreamingDbpOptions, type StreamingDbpSnapshot,
  type StreamingDbpStats, type StreamingDbpTuning
} from './streaming-dbp.js';
export {
  CALIBRATION_MISMATCH, compareWithCalibration, keepRateGain, type CalibrationCheck,
  type CalibrationCompareInput, type KeepRateInput
} from './streaming-guard.js';
export { argmaxDot, dotRows, normalizeRows, normalizedCopy, type ArgmaxDot, type NormalizeResult } from './vector.js';
export {
  RunningTopThreshold, TOP_FRACTION, basicFilterFailure, clipScoreTopThreshold, cosineRows, passesScore, pythonCharCount,
  pythonWordCount, type BasicFilterFailure
} from './datacomp-filters.js';
