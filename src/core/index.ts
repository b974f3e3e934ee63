/** dbprune/core — pure math: vectors, nearest-centroid conventions, complexity, quotas, selection, sketches, k-means, SemDeDup, streaming DBP. No I/O and no native addon (the ORT-backed kernels are in src/kernels, exported by the package root); a test checks the built entry resolves nothing outside this folder. */
export * from './complexity.js';
export * from './dbp.js';
export * from './errors.js';
export * from './validate.js';
export * from './kmeans.js';
export * from './nearest.js';
export * from './quota.js';
export * from './reservoir.js';
export * from './rng.js';
export * from './sample.js';
export * from './select.js';
export * from './semdedup.js';
export * from './sketch.js';
export * from './streaming-dbp.js';
export * from './streaming-guard.js';
export * from './vector.js';
export * from './datacomp-filters.js';
