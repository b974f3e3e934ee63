/**
 * `dbprune fit`: centroids and calibration statistics from a sample of the embeddings.
 *
 * 1. Streams every embedding row (readNpyRows) into a seeded uniform reservoir; rows holding
 *    NaN/Inf or a zero vector are skipped and counted. Sampled rows are L2-normalised.
 * 2. Spherical k-means on the sample (k-means++, Lloyd or mini-batch) — or, with `centroids`,
 *    that `.npy` is taken as-is and k-means is skipped.
 * 3. Calibration over the sample: per-cluster counts, d_intra, δ histograms, d_inter.
 * Writes `<out>/centroids.npy` (k × d float32) and `<out>/calibration.json`; `<out>` may be an s3:// prefix.
 */
import { resolve } from 'node:path';
import { isS3Uri, joinLocation as join, readLocation } from '../src/io/storage/index.js';
import { ClusterAccumulator, interClusterDistance } from '../src/core/complexity.js';
import { DbpruneError, ErrorCodes, throwIfAborted, UsageError } from '../src/core/errors.js';
import { booleanOption, integerOption, optionalOption, signalOption, stringOption } from '../src/core/validate.js';
import { sphericalKMeans } from '../src/kernels/kmeans.js';
import { NearestCentroid } from '../src/kernels/nearest-centroid.js';
import { RowReservoir } from '../src/core/reservoir.js';
import { ClusterSketches, sketchScaleFor } from '../src/core/sketch.js';
import { normalizeRows } from '../src/core/vector.js';
import { planEmbeddingSource } from '../src/io/embeddings-source.js';
import { OutputSet, prepareOutputDir } from '../src/io/output-set.js';
import { CALIBRATION_FILE, CALIBRATION_VERSION, CENTROIDS_FILE, serializeCalibration, type Calibration } from '../src/io/calibration.js';
import { sha256Hex } from '../src/io/hash.js';
import { buildNpyHeader, readNpyFloat32, readNpyHeader, readNpyRows, type NpyRowBatch } from '../src/io/npy.js';
import { NpzFile } from '../src/io/npz.js';
import type { EmbeddingPart } from '../src/io/embeddings-source.js';
import { FIT_LIMITS } from './fit-limits.js';

/** The rows of one embedding file: a `.npy`, or a DataComp `.npz` member. */
async function* partRows(part: EmbeddingPart, signal: AbortSignal | undefined): AsyncGenerator<NpyRowBatch> {
  if (part.npzMember === undefined) {
    yield* readNpyRows(part.npy, { batchRows: 8192, signal });
    return;
  }
  const npz = await NpzFile.open(part.npy);
  try {
    yield* npz.rows(part.npzMember, { batchRows: 8192, signal });
  } finally {
    npz.close();
  }
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** `.npy` embedding files: paths, globs, brace ranges, or a clip-retrieval folder. Or `datacomp`. */
  embeddings?: string | string[];
  /** DataComp shards (folder or globs of NNNNNNNN.parquet + .npz) instead of `embeddings`. */
  datacomp?: string | string[];
  /** npz member read with `datacomp`, default l14_img. */
  embeddingKey?: string;
  /** Clusters; default 500, limits 1..1,000,000 and ≤ sample (UsageError otherwise). Ignored with `centroids`. */
  k?: number;
  /** Existing centroids `.npy` (k × d) to use as-is instead of running k-means. */
  centroids?: string;
  /** Reservoir sample size in rows; default 100,000, limits 1..100,000,000. */
  sample?: number;
  /** k-means iterations (or mini-batch epochs); default 25, limits 0..10,000. */
  iters?: number;
  /** Seed of the sample and k-means; default 0, 0..2^32−1. */
  seed?: number;
  /** Mini-batch k-means instead of Lloyd; default false. */
  minibatch?: boolean;
  /** Histogram bins over δ ∈ [0, 2] (log-spaced, see core/sketch.ts); default 2048, 2..1,048,576. */
  bins?: number;
  /** d_inter neighbours; default 20, ≥ 1. */
  numNNs?: number;
  /** Output folder (created), or an s3:// prefix. Locally `centroids.npy` and `calibration.json` are replaced together (both or neither); on s3:// each object is replaced whole, as `run --out s3://` does. */
  out: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** What {@link fit} did. */
export interface FitResult {
  k: number;
  dim: number;
  /** Rows read from the embedding files. */
  rowsRead: number;
  /** Rows skipped (NaN/Inf or zero vectors). */
  skipped: number;
  /** Rows in the calibration sample. */
  sampleSize: number;
  /** k-means update steps (0 with `centroids`). */
  iterations: number;
  /** Σδ of the sample to the final centroids. */
  inertia: number;
  /** Mean δ of the sample to the final centroids. */
  meanDistance: number;
  /** Clusters with no sample row. */
  emptyClusters: number;
  centroidsPath: string;
  calibrationPath: string;
  seconds: number;
}

/** {@link FitOptions} validated, with defaults filled in. */
export interface ResolvedFitOptions {
  k: number;
  sample: number;
  iters: number;
  seed: number;
  bins: number;
  numNNs: number;
  minibatch: boolean;
}

/**
 * Validates the options shared by every fit (k, sample, iters, seed, bins, numNNs, out).
 * Throws ERR_DBPRUNE_INVALID_OPTION, or ERR_DBPRUNE_USAGE for k > sample without `centroids`.
 */
export function resolveFitOptions(opts: Omit<FitOptions, 'embeddings'>): ResolvedFitOptions {
  stringOption(opts.out, 'out');
  const k = integerOption(opts.k, 'k', FIT_LIMITS.k);
  const sample = integerOption(opts.sample, 'sample', FIT_LIMITS.sample);
  const iters = integerOption(opts.iters, 'iters', FIT_LIMITS.iters);
  const seed = integerOption(opts.seed, 'seed', FIT_LIMITS.seed);
  const bins = integerOption(opts.bins, 'bins', FIT_LIMITS.bins);
  const numNNs = integerOption(opts.numNNs, 'numNNs', FIT_LIMITS.numNNs);
  const minibatch = booleanOption(opts.minibatch, 'minibatch', false);
  optionalOption(opts.centroids, 'centroids', 'a .npy path', (v) => typeof v === 'string' && v.length > 0);
  optionalOption(opts.log, 'log', 'a function', (v) => typeof v === 'function');
  signalOption(opts.signal);
  if (opts.centroids === undefined && k > sample) {
    throw new UsageError(`--k ${k} is larger than --sample ${sample}: k-means needs at least k sample rows`, { k, sample });
  }
  return { k, sample, iters, seed, bins, numNNs, minibatch };
}

/** Reads and checks `--centroids` given to fit (k × d, at least one row). */
export async function readGivenCentroids(path: string | undefined, signal?: AbortSignal): Promise<{ data: Float32Array; rows: number; cols: number } | undefined> {
  if (path === undefined) return undefined;
  const given = await readNpyFloat32(path, { signal });
  if (given.rows < 1) throw new UsageError(`${path} holds no centroids`, { file: path });
  return given;
}

/**
 * Fits centroids and calibration statistics. Options and defaults in {@link FitOptions}.
 * Throws ERR_DBPRUNE_USAGE for k > sample (or fewer valid rows than k), ERR_DBPRUNE_INVALID_OPTION
 * for a bad option, ERR_DBPRUNE_DIM_MISMATCH when `centroids` and embeddings disagree in dimension,
 * the npy/input codes of the readers (INPUT_NOT_FOUND, NPY_FORMAT, NPY_TRUNCATED), ERR_DBPRUNE_ABORTED.
 */
export async function fit(opts: FitOptions): Promise<FitResult> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const { signal } = opts;
  const r = resolveFitOptions(opts);
  throwIfAborted(signal);

  // Centroids given: check them before the long pass.
  const given = await readGivenCentroids(opts.centroids, signal);

  const plan = await planEmbeddingSource({ embeddings: opts.embeddings, datacomp: opts.datacomp, embeddingKey: opts.embeddingKey, signal });
  const dim = plan.dim;
  checkGivenDim(given, opts.centroids, dim);
  log(`fit: ${plan.totalRows} rows × ${dim} in ${plan.parts.length} file(s); sampling ${Math.min(r.sample, plan.totalRows)} rows (seed ${r.seed})`);

  // 1. Reservoir sample of the valid rows.
  const reservoir = new RowReservoir(Math.max(1, Math.min(r.sample, plan.totalRows)), dim, r.seed);
  let rowsRead = 0;
  let skipped = 0;
  for (const part of plan.parts) {
    for await (const b of partRows(part, signal)) {
      const x = b.data;
      for (let i = 0; i < b.rows; i++) {
        const o = i * dim;
        let s = 0;
        for (let t = 0; t < dim; t++) s += x[o + t] * x[o + t];
        if (!Number.isFinite(s) || s === 0) skipped++;
        else reservoir.offerRow(x, o);
      }
      rowsRead += b.rows;
    }
  }
  const n = reservoir.size;
  return fitSample({ data: reservoir.data.subarray(0, n * dim), n, dim, valid: reservoir.seen, skipped, rowsRead }, given, r, opts, t0);
}

/** Throws ERR_DBPRUNE_DIM_MISMATCH when given centroids and the embeddings differ in width. */
export function checkGivenDim(given: { cols: number } | undefined, path: string | undefined, dim: number): void {
  if (given && given.cols !== dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `centroids ${path} have dimension ${given.cols} but the embeddings have ${dim}`, { file: path, expected: dim, got: given.cols });
  }
}

/** A uniform sample of valid embedding rows (not yet normalised) and how it was drawn. */
export interface FitSample {
  data: Float32Array;
  n: number;
  dim: number;
  /** Valid rows the sample was drawn from. */
  valid: number;
  /** Rows skipped as invalid (NaN/Inf/zero, or failed samples). */
  skipped: number;
  /** Rows read in all. */
  rowsRead: number;
}

/**
 * Steps 2–3 of fit on a drawn sample: normalise it, k-means (or the given centroids), calibration;
 * writes `<out>/centroids.npy` and `<out>/calibration.json`.
 */
export async function fitSample(
  sample: FitSample,
  given: { data: Float32Array; rows: number; cols: number } | undefined,
  r: ResolvedFitOptions,
  opts: Omit<FitOptions, 'embeddings'>,
  t0: number,
): Promise<FitResult> {
  const log = opts.log ?? (() => {});
  const { n, dim, valid, skipped, rowsRead } = sample;
  const data = sample.data.subarray(0, n * dim);
  normalizeRows(data, n, dim);
  log(`fit: read ${rowsRead} rows, skipped ${skipped} (NaN/Inf/zero), sample ${n} of ${valid} valid rows`);
  if (valid === 0 || n === 0) throw new UsageError(`no valid embedding rows to fit on (${skipped} skipped as NaN/Inf/zero)`, { skipped });

  // 2 and 3 write centroids.npy and calibration.json as one set: both or neither (a calibration
  // always matches the centroids beside it).
  await prepareOutputDir(opts.out);
  const outputs = new OutputSet();
  try {
    const result = await centroidsAndCalibration({ opts, given, data, n, dim, valid, skipped, rowsRead, r, t0, log }, outputs);
    await outputs.commit();
    return result;
  } catch (e) {
    await outputs.abort();
    throw e;
  }
}

interface FitState {
  opts: Omit<FitOptions, 'embeddings'>;
  given: { data: Float32Array; rows: number; cols: number } | undefined;
  /** The normalised sample (n × dim). */
  data: Float32Array;
  n: number;
  dim: number;
  valid: number;
  skipped: number;
  rowsRead: number;
  r: ResolvedFitOptions;
  t0: number;
  log: (line: string) => void;
}

/** Whether two centroid locations name the same file (or object). */
function sameLocation(a: string, b: string): boolean {
  return isS3Uri(a) || isS3Uri(b) ? a === b : resolve(a) === resolve(b);
}

/** The bytes of a k × dim float32 `.npy`, as `writeNpy` writes them (built in memory: an s3:// output is PUT whole). */
function npyFloat32Bytes(centroids: Float32Array, k: number, dim: number): Buffer {
  return Buffer.concat([buildNpyHeader("'<f4'", [k, dim]), Buffer.from(centroids.buffer, centroids.byteOffset, k * dim * 4)]);
}

/** The centroids fit settled on: their float32 values and the `.npy` bytes under `<out>/centroids.npy`. */
interface WrittenCentroids {
  k: number;
  iterations: number;
  centroids: Float32Array;
  bytes: Buffer;
}

/** Step 2 of {@link fit}: k-means (or the given centroids), written into `outputs` at `centroidsPath`. */
async function centroidsStep(state: FitState, outputs: OutputSet, centroidsPath: string): Promise<WrittenCentroids> {
  const { opts, given, data, n, dim, r, log } = state;
  if (given) {
    const k = given.rows;
    const from = opts.centroids as string;
    if (opts.k !== undefined && opts.k !== k) log(`fit: using the ${k} centroids of ${from} (k=${opts.k} ignored)`);
    const header = await readNpyHeader(from);
    if (header.descr === '<f4' && header.shape.length === 2 && !header.fortranOrder) {
      // Already the layout fit writes: the same bytes (nothing written when it is the output itself).
      const bytes = await readLocation(from, opts.signal);
      if (!sameLocation(from, centroidsPath)) await outputs.writeFile(centroidsPath, bytes);
      return { k, iterations: 0, centroids: given.data, bytes };
    }
    const bytes = npyFloat32Bytes(given.data, k, dim);
    await outputs.writeFile(centroidsPath, bytes);
    return { k, iterations: 0, centroids: given.data, bytes };
  }
  const k = r.k;
  if (k > n) throw new UsageError(`--k ${k} is larger than the ${n} valid rows available to sample`, { k, sampleSize: n });
  const km = await sphericalKMeans(data, n, dim, { k, iters: r.iters, seed: r.seed, minibatch: r.minibatch, signal: opts.signal, log });
  const bytes = npyFloat32Bytes(km.centroids, k, dim);
  await outputs.writeFile(centroidsPath, bytes);
  return { k, iterations: km.iterations, centroids: km.centroids, bytes };
}

/** Steps 2 and 3 of {@link fit}, writing into `outputs`. */
async function centroidsAndCalibration(state: FitState, outputs: OutputSet): Promise<FitResult> {
  const { opts, data, n, dim, valid, skipped, rowsRead, r, t0, log } = state;
  const { seed, bins, numNNs } = r;
  const { signal } = opts;
  const centroidsPath = join(opts.out, CENTROIDS_FILE);
  const { k, iterations, centroids, bytes } = await centroidsStep(state, outputs, centroidsPath);
  throwIfAborted(signal);

  // 3. Calibration, against the centroids exactly as written (and re-normalised as every user will).
  const nc = await NearestCentroid.create(centroids, k, dim);
  let assigned;
  try {
    assigned = await nc.assign(data, n);
  } finally {
    await nc.dispose();
  }
  const acc = new ClusterAccumulator(k);
  acc.add(assigned.cluster, assigned.distance, n);
  const stats = acc.stats();
  // The layout with the finer bins at these clusters' δ (log for tight clusters, issue 11 item 14).
  const sketches = new ClusterSketches(k, bins, sketchScaleFor(stats.dIntra, stats.size, bins));
  sketches.addBatch(assigned.cluster, assigned.distance, n);
  const dInter = interClusterDistance(nc.centroids, k, dim, numNNs);
  let inertia = 0;
  for (let i = 0; i < n; i++) inertia += assigned.distance[i];
  let emptyClusters = 0;
  for (let j = 0; j < k; j++) if (stats.size[j] === 0) emptyClusters++;

  const cal: Calibration = {
    version: CALIBRATION_VERSION,
    k,
    dim,
    sampleSize: n,
    totalSeen: valid,
    skipped,
    seed,
    numNNs,
    counts: stats.size,
    dIntra: stats.dIntra,
    dInter,
    sketches,
    centroidsSha256: sha256Hex(bytes),
  };
  const calibrationPath = await outputs.writeFile(join(opts.out, CALIBRATION_FILE), serializeCalibration(cal));
  const seconds = (Date.now() - t0) / 1000;
  log(`fit: wrote ${centroidsPath} and ${calibrationPath} (k=${k}, mean δ=${(inertia / n).toFixed(5)}, ${emptyClusters} empty clusters) in ${seconds.toFixed(1)} s`);
  return {
    k,
    dim,
    rowsRead,
    skipped,
    sampleSize: n,
    iterations,
    inertia,
    meanDistance: inertia / n,
    emptyClusters,
    centroidsPath,
    calibrationPath,
    seconds,
  };
}
