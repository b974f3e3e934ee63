/** dbprune/core — pure math: vectors, nearest centroid, complexity, quotas, selection, sketches, k-means, SemDeDup, streaming DBP. No I/O. */
export * from './complexity.js';
export * from './dbp.js';
export * from './errors.js';
export * from './kmeans.js';
export * from './matmul-ort.js';
export * from './nearest.js';
export * from './quota.js';
export * from './reservoir.js';
export * from './rng.js';
export * from './sample.js';
export * from './select.js';
export * from './semdedup.js';
export * from './sketch.js';
export * from './ssrf.js';
export * from './streaming-dbp.js';
export * from './streaming-guard.js';
export * from './vector.js';
