/**
 * The decider every streaming pipeline shares (`openDecisionTail` and `ingest`): the centroids, the
 * calibration found beside them (checked against the centroids' k and d), the inter-cluster
 * distances (from the calibration when it was fitted with the same `numNNs`, else computed from the
 * centroids), the {@link StreamingDbp} that makes the decisions (new, or restored from a snapshot),
 * and the assign → [dedup] → decide stages that drive it.
 */
import { interClusterDistance } from '../src/core/complexity.js';
import type { AssignMode } from '../src/core/nearest.js';
import { resolveDbpParams, type DbpParams, type ResolvedDbpParams } from '../src/core/dbp.js';
import { DbpruneError, ErrorCodes } from '../src/core/errors.js';
import { StreamingDbp, type StreamingDbpSnapshot, type StreamingDbpTuning } from '../src/core/streaming-dbp.js';
import { normalizedCopy } from '../src/core/vector.js';
import { CALIBRATION_FILE, loadCalibration, type Calibration } from '../src/io/calibration.js';
import { readNpyFloat32 } from '../src/io/npy.js';
import { joinLocation as join, locationExists, parentLocation as dirname } from '../src/io/storage/index.js';
import { assign, type AssignStream } from '../src/stages/assign.js';
import { decide, type DecideStream } from '../src/stages/decide.js';
import { dedup, type DedupStream } from '../src/stages/dedup.js';

export interface DeciderOptions extends DbpParams {
  /** Centroids `.npy` (k×d). */
  centroids: string;
  /** Folder holding `calibration.json`. Default: the centroids' folder when it holds one; without one decisions start cold (warned). */
  calibration?: string;
  tuning?: StreamingDbpTuning;
  /** Resume the decider from this snapshot (its k must match the centroids') instead of starting it afresh. */
  restore?: StreamingDbpSnapshot;
  warn?: (line: string) => void;
  signal?: AbortSignal;
}

export interface Decider {
  k: number;
  dim: number;
  /** The centroids, k × dim row-major. */
  centroids: Float32Array;
  params: ResolvedDbpParams;
  calibration?: Calibration;
  /** The folder the calibration was read from. */
  calDir?: string;
  dbp: StreamingDbp;
}

/** Options of the stages {@link decisionStages} builds (see the assign and dedup stages). */
export interface DecisionStagesOptions {
  assignMode?: AssignMode;
  ef?: number;
  threads?: number;
  assignWorkers?: number;
  normalize?: boolean;
  /** SemDeDup ε values before DBP (the first decides); off when absent or empty. */
  dedupEps?: number | string | readonly number[];
  /** Restore SemDeDup's index from this folder (a `DedupStream.snapshot()`). */
  dedupRestoreFrom?: string;
  /**
   * The assign stage's `releaseVectors` (each batch's vectors, handed over once assigned). Not
   * used with dedup, which reads the vectors after assign: the caller releases them after it.
   */
  releaseVectors?: (vectors: Float32Array) => void;
  signal?: AbortSignal;
}

/** The stages driving a {@link Decider}, to be piped in this order: assign → [dedup] → decide. */
export interface DecisionStages {
  assign: AssignStream;
  dedup?: DedupStream;
  /** Emits one `DecidedRows` per batch (a `ManifestRow[]`, thumbnails carried along). */
  decide: DecideStream;
}

/**
 * Loads the centroids and calibration and builds (or restores) the decider.
 * @throws ERR_DBPRUNE_CALIBRATION when the calibration is for another k or d (or unreadable); the
 *   npy reader's errors for bad centroids.
 */
export async function openDecider(opts: DeciderOptions): Promise<Decider> {
  const params = resolveDbpParams(opts);
  const c = await readNpyFloat32(opts.centroids, { signal: opts.signal });
  const k = c.rows;
  const dim = c.cols;
  const calDir = opts.calibration ?? ((await locationExists(join(dirname(opts.centroids), CALIBRATION_FILE))) ? dirname(opts.centroids) : undefined);
  let calibration: Calibration | undefined;
  if (calDir !== undefined) {
    calibration = await loadCalibration(calDir, opts.centroids);
    if (calibration.k !== k || calibration.dim !== dim) {
      throw new DbpruneError(ErrorCodes.CALIBRATION, `calibration in ${calDir} is for k=${calibration.k}, d=${calibration.dim}; centroids ${opts.centroids} are k=${k}, d=${dim}`, { file: calDir });
    }
    const coarse = coarseSketchWarning(calibration, calDir);
    if (coarse) opts.warn?.(coarse);
  } else {
    opts.warn?.(`dbprune: no ${CALIBRATION_FILE} beside ${opts.centroids}: streaming decisions start cold (run \`dbprune fit --centroids ${opts.centroids}\` to calibrate)`);
  }
  let dbp: StreamingDbp;
  if (opts.restore) {
    dbp = StreamingDbp.restore(opts.restore);
  } else {
    const dInter = calibration && calibration.numNNs === params.numNNs ? calibration.dInter : interClusterDistance(normalizedCopy(c.data, k, dim), k, dim, params.numNNs);
    dbp = new StreamingDbp({ k, params, dInter, calibration, tuning: opts.tuning });
  }
  return { k, dim, centroids: c.data, params, calibration, calDir, dbp };
}

/** The assign, dedup (when `dedupEps` is given) and decide stages of `d`. */
export function decisionStages(d: Decider, o: DecisionStagesOptions): DecisionStages {
  const eps = o.dedupEps;
  const withDedup = eps !== undefined && !(Array.isArray(eps) && eps.length === 0);
  return {
    assign: assign({
      centroids: d.centroids,
      k: d.k,
      dim: d.dim,
      mode: o.assignMode ?? 'auto',
      ef: o.ef,
      threads: o.threads,
      workers: o.assignWorkers,
      normalize: o.normalize,
      releaseVectors: withDedup ? undefined : o.releaseVectors,
      signal: o.signal,
    }),
    dedup: withDedup ? dedup({ eps, dim: d.dim, k: d.k, restoreFrom: o.dedupRestoreFrom, signal: o.signal }) : undefined,
    decide: decide({ dbp: d.dbp, signal: o.signal }),
  };
}

/**
 * A warning when a version-1 calibration's linear δ bins (width 2/bins) are too coarse for its
 * clusters: median d_intra under 8 bin widths, where thresholds cannot split the members and the
 * keep ratio falls short of the target (issue 11, item 14). Undefined otherwise.
 */
function coarseSketchWarning(c: Calibration, calDir: string): string | undefined {
  if (c.sketches.scale !== 'linear') return undefined;
  const d = Array.from(c.dIntra)
    .filter((_, j) => c.counts[j] > 0)
    .sort((a, b) => a - b);
  const median = d.length > 0 ? d[Math.floor(d.length / 2)] : Infinity;
  const width = 2 / c.sketches.bins;
  if (!(median < 8 * width)) return undefined;
  return (
    `dbprune: warning: the calibration in ${calDir} has linear δ bins of width ${width.toPrecision(2)} but a median cluster δ of ` +
    `${median.toPrecision(2)}: streaming thresholds cannot resolve such tight clusters; refit it with \`dbprune fit\` (log-spaced bins)`
  );
}
