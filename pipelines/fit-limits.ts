/**
 * The limits and defaults of {@link fit}'s numeric options, stated once: the library validates with
 * them (resolveFitOptions) and the CLI's flag parsers are built from them. A module of its own, with
 * no heavy imports, so that `dbprune fit --help` loads no k-means or ONNX Runtime.
 */
import { DEFAULT_BINS } from '../src/core/sketch.js';
import type { NumberSpec } from '../src/core/validate.js';

export const FIT_LIMITS = {
  /** Clusters (ignored with given centroids). */
  k: { default: 500, min: 1, max: 1_000_000 },
  /** Reservoir sample size, in rows (or images embedded). */
  sample: { default: 100_000, min: 1, max: 100_000_000 },
  /** k-means iterations (or mini-batch epochs). */
  iters: { default: 25, min: 0, max: 10_000 },
  /** Seed of the sample and of k-means. */
  seed: { default: 0, min: 0, max: 0xffffffff },
  /** Histogram bins over δ ∈ [0, 2]. */
  bins: { default: DEFAULT_BINS, min: 2, max: 1 << 20 },
  /** d_inter neighbours. */
  numNNs: { default: 20, min: 1 },
} as const satisfies Record<string, NumberSpec & { default: number }>;
