/**
 * `normalize()`: L2-normalises the rows of each {@link EmbeddingBatch} in place. Rows holding
 * NaN/Inf or all zeros become row errors (`error:embedding`) instead of failing the stream; a
 * batch whose `dim` differs from `expectedDim` is a configuration error (ERR_DBPRUNE_DIM_MISMATCH).
 * Counts are exposed on the returned stream (`renormalized`, `invalid`).
 */
import { Transform } from 'node:stream';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { numberOption } from '../core/validate.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch } from '../core/sample.js';
import { normalizeRows } from '../core/vector.js';

/** Options of {@link normalize}: expected dimension (checked on every batch) and its source, unit-length tolerance (default 1e-4; in (0, 1)). */
export interface NormalizeOptions {
  /** Expected embedding dimension (e.g. the centroids'); checked on every batch. Optional. */
  expectedDim?: number;
  /** Name of what `expectedDim` came from, for the error message (e.g. the centroids file). */
  expectedFrom?: string;
  /** Rows within this of unit length are left untouched. Default 1e-4, in (0, 1). */
  tolerance?: number;
}

export type NormalizeStream = Transform & { readonly renormalized: number; readonly invalid: number };

/**
 * L2-normalises each EmbeddingBatch's rows in place; NaN/Inf/zero rows become `error:embedding` rows.
 * A batch of another `dim` than `expectedDim` throws ERR_DBPRUNE_DIM_MISMATCH.
 */
export function normalize(opts: NormalizeOptions = {}): NormalizeStream {
  const tolerance = numberOption(opts.tolerance, 'tolerance', { default: 1e-4, min: 0, exclusiveMin: true, max: 1, exclusiveMax: true });
  let renormalized = 0;
  let invalid = 0;
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      if (opts.expectedDim !== undefined && batch.dim !== opts.expectedDim) {
        cb(
          new DbpruneError(
            ErrorCodes.DIM_MISMATCH,
            `embedding dimension ${batch.dim} (${batch.rows[0]?.shard ?? 'input'}) differs from ${opts.expectedFrom ?? 'expected'} dimension ${opts.expectedDim}`,
            { shard: batch.rows[0]?.shard, expected: opts.expectedDim, got: batch.dim },
          ),
        );
        return;
      }
      const n = batch.rows.length;
      const r = normalizeRows(batch.embeddings, n, batch.dim, tolerance);
      renormalized += r.renormalized;
      if (r.invalid) {
        const errors = batch.errors ?? new Array(n).fill(undefined);
        for (let i = 0; i < n; i++) {
          if (r.invalid[i] && !errors[i]) {
            errors[i] = { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING };
            invalid++;
          }
        }
        batch.errors = errors;
      }
      batch.unit = true;
      cb(null, batch);
    },
  });
  Object.defineProperties(stream, {
    renormalized: { get: () => renormalized },
    invalid: { get: () => invalid },
  });
  return stream as NormalizeStream;
}
