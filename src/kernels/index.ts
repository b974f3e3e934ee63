/**
 * dbprune kernels — compute backed by native runtimes (onnxruntime-node, worker threads): the ORT
 * nearest-centroid scorer and the assign worker pool. Kept out of `dbprune/core` so that importing
 * the pure math loads no native addon. Re-exported by the package root (`dbprune`).
 */
export * from './matmul-ort.js';
export * from './nearest-centroid.js';
export * from './kmeans.js';
