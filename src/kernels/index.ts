/**
 * dbprune kernels — compute backed by native runtimes (onnxruntime-node, worker threads): the ORT
 * nearest-centroid scorer and the assign worker pool. Kept out of `dbprune/core` so that importing
 * the pure math loads no native addon. Re-exported by the package root (`dbprune`).
 */
export { OrtScorer, buildNearestModel, top2FromOutputs, type OrtHead, type OrtScorerOptions } from './matmul-ort.js';
export { NearestCentroid, ORT_MIN_WORK, type Int8Stats, type NearestOptions } from './nearest-centroid.js';
export { sphericalKMeans } from './kmeans.js';
