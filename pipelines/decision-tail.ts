/**
 * The shared end of every streaming pipeline, built only from public stages:
 *
 *     … → normalize? → assign → [dedup] → decide → manifestSink
 *
 * plus what a run needs around it: centroids and calibration loading, output files, counters
 * (rows in = rows out is checked at the end), progress, stats.json and the report.
 */
import { joinLocation as join } from '../src/io/storage/index.js';
import type { AssignMode } from '../src/core/nearest.js';
import type { Duplex, Writable } from 'node:stream';
import { resolveDbpParams, type DbpParams } from '../src/core/dbp.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../src/core/errors.js';
import { booleanOption } from '../src/core/validate.js';
import { BATCH_HIGH_WATER_MARK, takeVectors, type EmbeddingBatch, type ManifestRow } from '../src/core/sample.js';
import { ReportCollector, writeReportThumbnails } from '../src/report/report-data.js';
import { writeReport } from '../src/report/report-html.js';
import { keyGuard } from '../src/stages/key-guard.js';
import { createShardWriter } from '../src/io/shard-writer.js';
import { tap } from '../src/stages/tap.js';
import type { StreamingDbp, StreamingDbpTuning } from '../src/core/streaming-dbp.js';
import { CALIBRATION_MISMATCH } from '../src/core/streaming-guard.js';
import type { Calibration } from '../src/io/calibration.js';
import { createKeptKeysWriter, createManifestWriter, OUTPUT_ROW_GROUP_ROWS, writeManifestStream, type KeyListWriter, type ManifestFormat, type ManifestWriter } from '../src/io/manifest.js';
import { RUN_OUTPUT_FILES, writeJsonAtomic, type RunStats } from '../src/io/stats.js';
import { OutputSet, prepareOutputDir } from '../src/io/output-set.js';
import { shardFilesIn } from '../src/io/shard-writer.js';
import type { ModelLocation } from '../src/io/model-config.js';
import type { AssignStream } from '../src/stages/assign.js';
import { decode, type DecodeOptions } from '../src/stages/decode.js';
import { embed } from '../src/stages/embed.js';
import { clipScore } from '../src/stages/clip-score.js';
import { clipScoreFilter } from '../src/stages/clip-score-filter.js';
import { manifestSink, type ManifestSink } from '../src/stages/manifest-sink.js';
import { decisionStages, openDecider } from './decider.js';
import { HeldImages } from './held-images.js';

/** Side of the JPEG thumbnails collected for the report (a bounded reservoir; see ReportCollector). */
export const REPORT_THUMBNAIL_PX = 40;

/** The image encoder of an image pipeline: the model and how images are decoded and batched. */
export interface ImageEncoderOptions {
  /** ONNX image encoder: an `.onnx` file or a transformers.js/optimum folder. */
  model: string;
  /** Decode overrides; the defaults come from the model's preprocessor_config.json. */
  decode?: Omit<DecodeOptions, 'signal'>;
  /**
   * Embedding micro-batch size (default 64), rows per inference call (`rowsPerRun`, see embed), ORT
   * threads (default 2), the model's input/output names when not the defaults, and the execution
   * provider (`device`: cpu | cuda | cuda:1 | …, see embed).
   */
  embed?: { batchSize?: number; rowsPerRun?: number; maxDelayMs?: number; threads?: number; inputName?: string; outputName?: string; device?: string };
  /**
   * Image–text alignment from the images: a CLIP text tower scores cosine(image, caption) per sample
   * (`clipScore`), then `clipScoreFilter` drops `score < min` (or outside the running top fraction).
   */
  alignment?: { textModel: string; min?: number; top?: number };
}

/**
 * The stages between `ImageSample`s and the tail: hold images (for --write-shards), decode (with
 * report thumbnails when a report is written), embed. `model` is `resolveModel(opts.model)`.
 */
export function encoderStages(model: ModelLocation, tail: DecisionTail, opts: ImageEncoderOptions & { signal?: AbortSignal }): Duplex[] {
  const pre = model.preprocessing;
  const { signal } = opts;
  const embedder = embed({ model: model.onnxPath, ...opts.embed, batchSize: opts.embed?.batchSize ?? 64, imageSize: opts.decode?.size ?? pre?.size, signal });
  return [
    tail.holdImages(),
    // decoding waits for the model: a size the model cannot take fails before anything is decoded
    decode({ ...pre, ...(tail.wantsThumbnails ? { thumbnail: REPORT_THUMBNAIL_PX } : {}), ...opts.decode, startAfter: embedder.ready, signal }),
    embedder,
    ...(opts.alignment
      ? [clipScore({ textModel: opts.alignment.textModel, signal }), clipScoreFilter({ min: opts.alignment.min, top: opts.alignment.top, signal })]
      : []),
  ];
}

/** Options of {@link openDecisionTail} and of every streaming pipeline: DBP parameters, centroids, calibration, outputs (manifest, kept keys, stats, report, shards), assign and dedup settings. */
export interface DecisionTailOptions extends DbpParams {
  /** Centroids `.npy` (k×d). */
  centroids: string;
  /**
   * Folder holding `calibration.json` from `dbprune fit`. Default: the centroids' folder when it
   * holds one. Without calibration, streaming decisions start cold (a warning is printed).
   */
  calibration?: string;
  /** Output folder: manifest.<fmt>, kept.txt, stats.json, report.html. Without it: JSONL rows on `stdout`. */
  out?: string;
  /** Where JSONL rows go when `out` is not given. Default process.stdout. */
  stdout?: NodeJS.WritableStream;
  /** Manifest format in `out`. Default parquet. */
  format?: ManifestFormat;
  /** Assignment: exact (ORT matmul) or HNSW; default auto. */
  assignMode?: AssignMode;
  ef?: number;
  threads?: number;
  /** Assign on this many worker threads (the assign stage's `workers`); default 0 (in-thread). */
  assignWorkers?: number;
  /** L2-normalise rows in the assign stage (its `normalize`), on the workers when there are any. */
  normalize?: boolean;
  tuning?: StreamingDbpTuning;
  signal?: AbortSignal;
  /** Non-fatal notes for the user (stderr in the CLI). */
  warn?: (line: string) => void;
  /**
   * Re-pack kept samples as webdataset shards in img2dataset's layout (tar + parquet of every row +
   * stats) in this folder. Needs image bytes: put `tail.holdImages()` right after the stage that
   * produces `ImageSample`s.
   */
  writeShards?: { dir: string; samplesPerShard?: number; additionalColumns?: readonly string[] };
  /** SemDeDup ε values before DBP (the first decides; the others are reported). Off when absent. */
  dedupEps?: readonly number[];
  /**
   * Flag repeated keys and keys holding line breaks as error rows (the keyGuard stage; README
   * "Keys"). Default true; off where keys are distinct by construction (row indices).
   */
  checkKeys?: boolean;
  /** Write report.html (and thumbnails.json) into `out` at the end. Default true when `out` is set. */
  report?: boolean;
  /**
   * Called with each batch's vectors once nothing reads them any more (past assign and dedup),
   * exactly once per batch: the source's buffer pool takes them back (embeddings-to-manifest.ts).
   */
  releaseVectors?: (vectors: Float32Array) => void;
}

export interface RunCounters {
  samples: number;
  kept: number;
  errors: number;
  duplicates: number;
  errorsByReason: Record<string, number>;
}

/** What a streaming pipeline returns: the run statistics (stats.json) and the paths of the files it wrote. */
export interface StreamingResult {
  stats: RunStats;
  files: { manifest?: string; kept?: string; stats?: string; report?: string; shards?: string[]; uids?: string };
}

/** The opened decision tail: centroids (k×dim), the StreamingDbp decider, its calibration, the assign → decide stages and the sink that writes the outputs. */
export interface DecisionTail {
  k: number;
  dim: number;
  dbp: StreamingDbp;
  calibration?: Calibration;
  /** assign → decide stages, in order. */
  stages: Duplex[];
  /** The assign stage (one of `stages`), for its counters. */
  assign: AssignStream;
  sink: ManifestSink;
  counters: RunCounters;
  /**
   * A pass-through stage that holds each `ImageSample` until its manifest row is written, so the
   * shard writer can re-pack kept images. Bounded by the samples in flight. Identity when
   * `writeShards` is off.
   */
  holdImages(): Duplex;
  /** Adds a listener for every written batch (progress, report collector). */
  onRows(fn: (rows: ManifestRow[]) => void): void;
  /** Where to write one more output file `path` (in `out`): its temporary name, renamed into place with the rest by `finish`. */
  outputFile(path: string): string;
  /**
   * Checks rows in = rows out, writes stats.json (and the report), renames the run's files into
   * place as one set, returns the result.
   */
  finish(
    rowsIn: number,
    extra?: { renormalized?: number; params?: Record<string, unknown>; sections?: Record<string, unknown>; throughput?: Record<string, number> },
  ): Promise<StreamingResult>;
  /** Whether thumbnails are worth producing (a report will be written). */
  readonly wantsThumbnails: boolean;
  /**
   * For a failed run: deletes the temporary files (the previous outputs stay as they were) and
   * throws `e`, or, when the run's signal fired, ERR_DBPRUNE_ABORTED saying what was (not) written.
   */
  fail(e: unknown): Promise<never>;
}

/** Where a tail's rows go: the run's output files (in `out`, replaced as one set) or JSONL on stdout. */
interface TailOutputs {
  outputs?: OutputSet;
  manifest: ManifestWriter;
  kept?: KeyListWriter;
  files: StreamingResult['files'];
}

async function openTailOutputs(opts: DecisionTailOptions): Promise<TailOutputs> {
  const format = opts.format ?? 'parquet';
  const files: StreamingResult['files'] = {};
  // Every file goes to a temporary name and is renamed into place at finish() (src/io/output-set.ts).
  const outputs = opts.out !== undefined || opts.writeShards ? new OutputSet() : undefined;
  if (opts.out !== undefined && outputs) {
    await prepareOutputDir(opts.out);
    files.manifest = join(opts.out, `manifest.${format}`);
    files.kept = join(opts.out, 'kept.txt');
    files.stats = join(opts.out, 'stats.json');
    for (const name of RUN_OUTPUT_FILES) outputs.replaces(join(opts.out, name));
    return { outputs, files, manifest: createManifestWriter(outputs.file(files.manifest), format, { rowGroupRows: OUTPUT_ROW_GROUP_ROWS }), kept: createKeptKeysWriter(outputs.file(files.kept)) };
  }
  // Rows go out batch by batch as they are decided (a reader like `head` or `jq` sees them at once,
  // and a stopped run has written exactly the rows it counts), not at the end.
  const manifest = writeManifestStream('jsonl', (opts.stdout ?? process.stdout) as NodeJS.WritableStream & Writable, { rowGroupRows: 1 });
  return { outputs, files, manifest };
}

/** Adds one batch of written rows to the run's counters. */
function countRows(counters: RunCounters, rows: readonly ManifestRow[]): void {
  counters.samples += rows.length;
  for (const r of rows) {
    if (r.decision === 'keep') counters.kept++;
    else if (r.reason === 'duplicate') counters.duplicates++;
    else if (r.reason.startsWith('error:') || r.reason.startsWith('filter:')) {
      counters.errors++;
      counters.errorsByReason[r.reason] = (counters.errorsByReason[r.reason] ?? 0) + 1;
    }
  }
}

/**
 * Opens the shared end of every streaming pipeline (normalize? → assign → [dedup] → decide → manifestSink) with its outputs.
 * Throws ERR_DBPRUNE_INVALID_OPTION / ERR_DBPRUNE_USAGE on bad options, ERR_DBPRUNE_DIM_MISMATCH / ERR_DBPRUNE_INPUT_FORMAT on bad centroids.
 */
export async function openDecisionTail(opts: DecisionTailOptions): Promise<DecisionTail> {
  const started = performance.now();
  const decider = await openDecider(opts);
  const { k, dim, dbp, calibration, calDir, params } = decider;
  const { outputs, files, manifest, kept } = await openTailOutputs(opts);
  const counters: RunCounters = { samples: 0, kept: 0, errors: 0, duplicates: 0, errorsByReason: {} };
  const collector = new ReportCollector({ k, seed: params.seed });
  const listeners: ((rows: ManifestRow[]) => void)[] = [(rows) => countRows(counters, rows)];
  const held = new HeldImages();
  const shardWriter =
    opts.writeShards && outputs ? createShardWriter({ ...opts.writeShards, tempPath: (p) => outputs.file(p), signal: opts.signal }) : undefined;
  const sink = manifestSink({
    manifest,
    kept,
    signal: opts.signal,
    onRows: (rows) => {
      listeners.forEach((fn) => fn(rows));
      // the thumbnails travel on the decided rows (DecidedRows), not in a queue beside the stream
      collector.observe(rows, rows.thumbnails);
      collector.tick((performance.now() - started) / 1000);
    },
    afterWrite: shardWriter
      ? async (rows) => {
          for (const row of rows) await shardWriter.write(held.take(row), row);
        }
      : undefined,
    afterClose: shardWriter
      ? async () => {
          const r = await shardWriter.close();
          files.shards = r.shards.map((s) => s.tar);
        }
      : undefined,
  });
  // Past assign (and dedup) nothing reads the vectors: they go back to the source's pool (when it
  // recycles them) at once rather than when the batch leaves decide: assign hands them over as it
  // finishes a batch, or a stage after dedup does.
  const release = (vectors: Float32Array): void => opts.releaseVectors?.(vectors);
  const decision = decisionStages(decider, { ...opts, dedupEps: opts.dedupEps, releaseVectors: release, signal: opts.signal });
  const dedupStage = decision.dedup;
  const releaseAfterDedup = tap((b: EmbeddingBatch) => release(takeVectors(b)), { highWaterMark: BATCH_HIGH_WATER_MARK });
  const checkKeys = booleanOption(opts.checkKeys, 'checkKeys', true);
  const stages: Duplex[] = [...(checkKeys ? [keyGuard({ onWarning: opts.warn })] : []), decision.assign, ...(dedupStage ? [dedupStage, releaseAfterDedup] : []), decision.decide];
  const finish: DecisionTail['finish'] = async (rowsIn, extra = {}) => {
    if (sink.rows !== rowsIn) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `rows in (${rowsIn}) != rows out (${sink.rows}): a sample was lost or duplicated`, { rowsIn, rowsOut: sink.rows });
    }
    const seconds = (performance.now() - started) / 1000;
    if (calibration) {
      const warning = calibrationWarning(dbp, calDir);
      if (warning) opts.warn?.(warning);
    }
    const stats = streamingStats(dbp, counters, params, { seconds, renormalized: extra.renormalized ?? 0, calibrated: calibration !== undefined });
    Object.assign(stats.params, extra.params ?? {});
    Object.assign(stats, extra.sections ?? {});
    if (dedupStage) {
      const d = dedupStage.stats();
      stats.params.dedup_eps = d.eps;
      stats.dedup = { mode: 'streaming', ...d, note: 'duplicates for eps[1..] are estimates measured against the set kept under eps[0]' };
    }
    if (extra.throughput) collector.setThroughput(extra.throughput);
    const { report, thumbnails } = collector.toJSON();
    stats.report = report;
    if (files.stats && opts.out !== undefined && outputs) {
      await writeJsonAtomic(files.stats, stats, outputs);
      if (opts.report !== false) {
        const thumbs = await writeReportThumbnails(opts.out, thumbnails, outputs);
        files.report = await writeReport(opts.out, { statsPath: outputs.file(files.stats), thumbnailsPath: thumbs ? outputs.file(thumbs) : null, outputs, signal: opts.signal });
      }
    }
    if (outputs) {
      // An earlier run's shards beyond this run's count would sit beside the new ones.
      if (opts.writeShards) for (const f of await shardFilesIn(opts.writeShards.dir)) outputs.replaces(f);
      throwIfAborted(opts.signal);
      await outputs.commit();
    }
    return { stats, files };
  };
  const fail: DecisionTail['fail'] = async (e) => {
    await outputs?.abort();
    if (opts.signal?.aborted) {
      const what =
        opts.out !== undefined
          ? `nothing written; ${opts.out} keeps its previous files`
          : `${sink.rows} manifest rows had been written to stdout${opts.writeShards ? `; no shards written to ${opts.writeShards.dir}` : ''}`;
      const why = opts.signal.reason instanceof Error ? opts.signal.reason.message : String(opts.signal.reason);
      throw new DbpruneError(ErrorCodes.ABORTED, `stopped (${why}): ${what}`, { file: opts.out, stopped: true }, { cause: e });
    }
    throw e;
  };
  return {
    k,
    dim,
    dbp,
    calibration,
    stages,
    assign: decision.assign,
    sink,
    counters,
    onRows: (fn) => listeners.push(fn),
    outputFile: (path) => (outputs ? outputs.file(path) : path),
    wantsThumbnails: opts.out !== undefined && opts.report !== false,
    holdImages: () => (shardWriter ? held.holdStage() : tap(() => undefined)),
    finish,
    fail,
  };
}

/** stats.json's `streaming.calibration_check` (snake case; see StreamingDbp.calibrationCheck). */
function calibrationCheckJson(dbp: StreamingDbp): Record<string, unknown> {
  const c = dbp.calibrationCheck();
  return {
    agrees: c.agrees,
    mix_dispersion: c.mixDispersion,
    distance_ratio: c.distanceRatio,
    keep_rate_gain: c.gain,
    limits: { mix_dispersion: CALIBRATION_MISMATCH.mixDispersion, distance_ratio: [1 - CALIBRATION_MISMATCH.distanceRatio, 1 + CALIBRATION_MISMATCH.distanceRatio] },
  };
}

/** The stderr line for a calibration that disagrees with the stream, or undefined when it agrees. */
function calibrationWarning(dbp: StreamingDbp, calDir: string | undefined): string | undefined {
  const c = dbp.calibrationCheck();
  if (c.agrees) return undefined;
  return (
    `dbprune: warning: the calibration${calDir ? ` in ${calDir}` : ''} disagrees with this stream (cluster mix dispersion ${c.mixDispersion.toFixed(1)}, ` +
    `limit ${CALIBRATION_MISMATCH.mixDispersion}; mean distance ×${c.distanceRatio.toFixed(2)}): the keep ratio was held near the target ` +
    `(keep-rate gain ${c.gain.toFixed(2)}), but which samples are kept follows a plan sized for another distribution; ` +
    'refit with `dbprune fit` on a sample of this data (stats.json: streaming.calibration_check)'
  );
}

function streamingStats(
  dbp: StreamingDbp,
  counters: RunCounters,
  params: ReturnType<typeof resolveDbpParams>,
  t: { seconds: number; renormalized: number; calibrated: boolean },
): RunStats {
  const s = dbp.stats();
  const arr = (a: ArrayLike<number>): number[] => Array.from(a);
  const k = s.clusters.n.length;
  const valid = s.seen;
  const nTarget = Math.floor(params.keepRatio * valid);
  return {
    version: 1,
    mode: 'streaming',
    method: 'Density-Based Pruning (Abbas et al., ICLR 2024), streaming',
    params: {
      keep_ratio: params.keepRatio,
      temperature: params.temperature,
      num_nns: params.numNNs,
      balance: params.balance,
      which: params.which,
      seed: params.seed,
      calibrated: t.calibrated,
    },
    totals: {
      samples: counters.samples,
      valid,
      n_target: nTarget,
      kept: counters.kept,
      dropped: counters.samples - counters.kept,
      keep_ratio: counters.samples > 0 ? counters.kept / counters.samples : 0,
      errors: counters.errorsByReason,
      duplicates: counters.duplicates,
      renormalized: t.renormalized,
      k,
      min_samples: 0,
      lambda: NaN,
      seconds: t.seconds,
      samples_per_sec: counters.samples / Math.max(1e-9, t.seconds),
    },
    clusters: {
      n: arr(s.clusters.n),
      d_intra: arr(s.clusters.dIntra),
      d_inter: arr(s.clusters.dInter),
      complexity: arr(s.clusters.complexity),
      p: arr(s.clusters.prob),
      quota: arr(s.clusters.target),
      quota_real: arr(s.clusters.quota),
      lb: new Array<number>(k).fill(0),
      ub: arr(s.clusters.sizeEstimate),
      kept: arr(s.clusters.kept),
      threshold: arr(s.clusters.threshold).map((v) => (Number.isFinite(v) ? v : null)),
    },
    streaming: {
      phi: s.phi,
      stream_weight: s.streamWeight,
      plans: s.plans,
      keep_ratio_of_valid: s.keepRatio,
      keep_rate_gain: s.gain,
      ...(t.calibrated ? { calibration_check: calibrationCheckJson(dbp) } : {}),
    },
  };
}
