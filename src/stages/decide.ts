/**
 * `decide`: the streaming DBP decision stage. Columnar {@link EmbeddingBatch}es in (with `cluster`
 * and `distance` set by `assign`, `duplicateOf` optionally set by `dedup`), one array of
 * {@link ManifestRow}s out per batch, rows in the same order.
 */
import { Transform } from 'node:stream';
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { BATCH_HIGH_WATER_MARK, decisionRow, errorRow, type EmbeddingBatch, type ManifestRow } from '../core/sample.js';
import { StreamingDbp, type StreamingDbpOptions } from '../core/streaming-dbp.js';
import { destroyOnAbort } from './generator-stage.js';
import type { DecidedRows } from './manifest-sink.js';

/** Options of {@link decide}: the StreamingDbp decider (or the options to build one; required), and a signal. */
export interface DecideOptions {
  /**
   * The decider: a {@link StreamingDbp} (e.g. restored from a checkpoint, or shared with whoever
   * reads its `stats()` at the end), or the options to build one (k, params, dInter, calibration,
   * tuning; validated here, see streaming-dbp.ts for defaults and limits). Required.
   */
  dbp: StreamingDbp | StreamingDbpOptions;
  signal?: AbortSignal;
}

/** The stage's stream, with the decider it drives (read `dbp.stats()` / `dbp.snapshot()` after the end). */
export type DecideStream = Transform & { readonly dbp: StreamingDbp };


/**
 * Stage: consumes {@link EmbeddingBatch}es and emits one `ManifestRow[]` per batch (same length,
 * same order; an empty batch gives an empty array), a {@link DecidedRows} carrying the batch's
 * `thumbnails` when it has them. Per row:
 * - `errors[i]` set → the error row (`errorRow`: drop, its `error:*`/`filter:*` reason);
 * - `duplicateOf[i]` set → drop, reason `duplicate`, not counted in the DBP statistics;
 * - otherwise the streaming DBP decision (irrevocable, in arrival order): keep or drop, reason `dbp`.
 * Decisions are deterministic for the same input and decider state.
 *
 * Errors: `ERR_DBPRUNE_INVALID_OPTION` for bad options (at construction); `ERR_DBPRUNE_INTERNAL`
 * when a batch lacks `cluster`/`distance`, their length is short, or a non-error row has cluster
 * −1 / a non-finite distance (an upstream bug; context names the key); `ERR_DBPRUNE_ABORTED` on `signal`.
 */
export function decide(opts: DecideOptions): DecideStream {
  checkOption(opts !== null && typeof opts === 'object' && opts.dbp !== null && typeof opts.dbp === 'object', 'dbp', 'a StreamingDbp or its options', opts?.dbp);
  const dbp = opts.dbp instanceof StreamingDbp ? opts.dbp : new StreamingDbp(opts.dbp);
  const { signal } = opts;
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      try {
        throwIfAborted(signal);
        const rows: DecidedRows = decideBatchRows(dbp, batch);
        if (batch.thumbnails) rows.thumbnails = batch.thumbnails; // the report's thumbnails travel with their rows
        cb(null, rows);
      } catch (e) {
        cb(e as Error);
      }
    },
  }) as Transform & { dbp: StreamingDbp };
  Object.defineProperty(stream, 'dbp', { value: dbp, enumerable: true });
  return destroyOnAbort(stream, signal);
}

/** Decides one batch (the stage's body, exported for callers that drive batches themselves). */
export function decideBatchRows(dbp: StreamingDbp, batch: EmbeddingBatch): ManifestRow[] {
  const { rows, errors, duplicateOf, cluster, distance } = batch;
  const n = rows.length;
  const out: ManifestRow[] = new Array<ManifestRow>(n);
  let needsDecision = false;
  for (let i = 0; i < n && !needsDecision; i++) needsDecision = !errors?.[i];
  if (needsDecision && (!cluster || !distance || cluster.length < n || distance.length < n)) {
    throw new DbpruneError(ErrorCodes.INTERNAL, 'decide got a batch without cluster/distance for every row (is assign before decide?)', {
      key: rows[0]?.key,
      rows: n,
    });
  }
  for (let i = 0; i < n; i++) {
    const ref = rows[i];
    const err = errors?.[i];
    if (err) {
      out[i] = errorRow(ref, err);
      continue;
    }
    const c = (cluster as Int32Array)[i];
    const d = (distance as Float32Array)[i];
    if (!(c >= 0 && c < dbp.k) || !Number.isFinite(d)) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `row ${ref.key} reached decide with cluster ${c} and distance ${d}`, { key: ref.key, shard: ref.shard, row: i });
    }
    const dup = duplicateOf?.[i];
    if (dup !== undefined) {
      out[i] = decisionRow(ref, 'drop', 'duplicate', c, d, dup);
      continue;
    }
    out[i] = decisionRow(ref, dbp.decide(c, d) ? 'keep' : 'drop', 'dbp', c, d, null);
  }
  return out;
}
