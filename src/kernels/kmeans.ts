/**
 * Spherical k-means with the ORT-backed assignment step: {@link sphericalKMeansWith} (the pure
 * algorithm in src/core/kmeans.ts) run on {@link NearestCentroid}. One Lloyd pass over
 * 100k × 512 rows at k = 500 takes ~0.4–0.6 s on 2 cores.
 */
import { sphericalKMeansWith, type KMeansOptions, type KMeansResult } from '../core/kmeans.js';
import { NearestCentroid } from './nearest-centroid.js';

/**
 * Spherical k-means of the `n` unit rows of `data` (n × dim float32) on the ORT backend (by
 * `opts.backend`, default 'auto'). Options, results and errors as {@link sphericalKMeansWith}.
 */
export function sphericalKMeans(data: Float32Array, n: number, dim: number, opts: KMeansOptions): Promise<KMeansResult> {
  return sphericalKMeansWith((c, k, d, o) => NearestCentroid.create(c, k, d, o), data, n, dim, opts);
}
