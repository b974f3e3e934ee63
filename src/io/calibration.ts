/**
 * Calibration statistics that `fit` saves beside the centroids and streaming mode loads to seed
 * its state: `<dir>/calibration.json`.
 *
 *     { version, k, dim, sampleSize, totalSeen, skipped, seed, numNNs,
 *       counts[k], dIntra[k], dInter[k],
 *       histogram: { bins, min, max, scale, counts: base64(Uint32 LE, k × bins) },
 *       centroidsSha256, checksum }
 *
 * `counts`/`dIntra` are over the calibration sample, `dInter` over the centroids (numNNs nearest
 * other centroids). `centroidsSha256` is the SHA-256 of the centroids `.npy` file bytes; `checksum`
 * is `sha256:` + SHA-256 of the file's JSON without the `checksum` member.
 *
 * Version 2 adds `histogram.scale` (`linear` | `log`, see core/sketch.ts); `fit` writes `log`.
 * Version 1 files (no scale: linear bins) still load, with the linear layout they were built with.
 */
import { readLocation, joinLocation as join } from './storage/index.js';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { base64ToUint32, ClusterSketches, SKETCH_MAX, SKETCH_MIN, SKETCH_SCALES, uint32ToBase64, type SketchScale } from '../core/sketch.js';
import { hashFile, sha256Hex } from './hash.js';
import { writeFileAtomic } from './output-set.js';

/** Format version written by {@link saveCalibration}. */
export const CALIBRATION_VERSION = 2;
/** Versions {@link loadCalibration} reads (1: linear histograms without a scale field). */
const READABLE_VERSIONS = [1, 2];
/** File name inside the calibration directory. */
export const CALIBRATION_FILE = 'calibration.json';
/** Centroids file name `fit` writes beside it. */
export const CENTROIDS_FILE = 'centroids.npy';

/** Calibration statistics in memory. */
export interface Calibration {
  version: number;
  k: number;
  dim: number;
  /** Rows in the calibration sample. */
  sampleSize: number;
  /** Valid rows the sample was drawn from. */
  totalSeen: number;
  /** Rows skipped while sampling (NaN/Inf/zero vectors). */
  skipped: number;
  seed: number;
  numNNs: number;
  /** Sample rows per cluster. */
  counts: Float64Array;
  /** Mean δ of each cluster's sample rows to its centroid (0 for empty clusters). */
  dIntra: Float64Array;
  /** Mean 1 − ⟨c_j, c_i⟩ over the numNNs nearest other centroids. */
  dInter: Float64Array;
  /** Per-cluster δ histograms of the sample. */
  sketches: ClusterSketches;
  /** Hex SHA-256 of the centroids `.npy` bytes. */
  centroidsSha256: string;
}

interface CalibrationJSON {
  version: number;
  k: number;
  dim: number;
  sampleSize: number;
  totalSeen: number;
  skipped: number;
  seed: number;
  numNNs: number;
  counts: number[];
  dIntra: number[];
  dInter: number[];
  histogram: { bins: number; min: number; max: number; scale?: SketchScale; counts: string };
  centroidsSha256: string;
  checksum?: string;
}


/** Hex SHA-256 of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  return (await hashFile(path)).sha256;
}

function calError(message: string, file: string, extra: Record<string, unknown> = {}, cause?: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.CALIBRATION, message, { file, ...extra }, cause === undefined ? undefined : { cause });
}

function toJSONObject(c: Calibration): CalibrationJSON {
  return {
    version: CALIBRATION_VERSION,
    k: c.k,
    dim: c.dim,
    sampleSize: c.sampleSize,
    totalSeen: c.totalSeen,
    skipped: c.skipped,
    seed: c.seed,
    numNNs: c.numNNs,
    counts: Array.from(c.counts),
    dIntra: Array.from(c.dIntra),
    dInter: Array.from(c.dInter),
    histogram: { bins: c.sketches.bins, min: SKETCH_MIN, max: SKETCH_MAX, scale: c.sketches.scale, counts: uint32ToBase64(c.sketches.counts) },
    centroidsSha256: c.centroidsSha256,
  };
}

function checksumOf(body: CalibrationJSON): string {
  const { checksum: _ignored, ...rest } = body;
  return `sha256:${sha256Hex(JSON.stringify(rest))}`;
}

/** Serialises calibration statistics (with their checksum) as the calibration.json text. */
export function serializeCalibration(c: Calibration): string {
  const body = toJSONObject(c);
  body.checksum = checksumOf(body);
  return JSON.stringify(body);
}

/**
 * Writes `<dir>/calibration.json` atomically (temp file + rename, or an s3:// object that appears
 * whole). Resolves with the file path.
 */
export async function saveCalibration(dir: string, c: Calibration): Promise<string> {
  return writeFileAtomic(join(dir, CALIBRATION_FILE), serializeCalibration(c));
}

function isIntIn(v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

function numArray(v: unknown, k: number, name: string, file: string): Float64Array {
  if (!Array.isArray(v) || v.length !== k || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw calError(`${file}: ${name} must hold ${k} finite numbers`, file, { field: name });
  }
  return Float64Array.from(v as number[]);
}

/**
 * Parses and checks calibration.json text (`file` names it in errors). Verifies the checksum and
 * every field; does not look at the centroids (see {@link loadCalibration}).
 * Throws ERR_DBPRUNE_CALIBRATION on any problem.
 */
export function parseCalibration(text: string, file = CALIBRATION_FILE): Calibration {
  let body: CalibrationJSON;
  try {
    body = JSON.parse(text) as CalibrationJSON;
  } catch (e) {
    throw calError(`${file}: not valid JSON (${(e as Error).message})`, file, {}, e);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw calError(`${file}: not a JSON object`, file);
  if (typeof body.checksum !== 'string') throw calError(`${file}: no checksum`, file);
  const want = checksumOf(body);
  if (body.checksum !== want) {
    throw calError(`${file}: checksum mismatch (file says ${body.checksum}, content hashes to ${want}); the file is corrupt or was edited`, file, {
      expected: body.checksum,
      got: want,
    });
  }
  if (!READABLE_VERSIONS.includes(body.version)) {
    throw calError(`${file}: unsupported calibration version ${String(body.version)} (this dbprune reads ${READABLE_VERSIONS.join(', ')})`, file);
  }
  const { k, dim } = body;
  if (!isIntIn(k, 1) || !isIntIn(dim, 1)) throw calError(`${file}: k and dim must be positive integers`, file);
  for (const f of ['sampleSize', 'totalSeen', 'skipped', 'seed', 'numNNs'] as const) {
    if (!isIntIn(body[f], 0)) throw calError(`${file}: ${f} must be a non-negative integer`, file, { field: f });
  }
  if (typeof body.centroidsSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.centroidsSha256)) {
    throw calError(`${file}: centroidsSha256 must be a hex SHA-256`, file);
  }
  const h = body.histogram;
  if (!h || !isIntIn(h.bins, 1, 1 << 20) || h.min !== SKETCH_MIN || h.max !== SKETCH_MAX || typeof h.counts !== 'string') {
    throw calError(`${file}: histogram must give bins (1..1048576), min ${SKETCH_MIN}, max ${SKETCH_MAX} and base64 counts`, file);
  }
  const scale: SketchScale | undefined = body.version === 1 ? (h.scale === undefined ? 'linear' : undefined) : h.scale;
  if (scale === undefined || !SKETCH_SCALES.includes(scale) || (scale === 'log' && h.bins < 2)) {
    throw calError(`${file}: histogram.scale must be linear or log in version 2 (log needs ≥ 2 bins) and absent in version 1`, file, { scale: h.scale });
  }
  let counts: Uint32Array;
  try {
    counts = base64ToUint32(h.counts, k * h.bins);
  } catch (e) {
    throw calError(`${file}: histogram counts do not hold k × bins = ${k} × ${h.bins} values`, file, {}, e);
  }
  const sketches = new ClusterSketches(k, h.bins, scale);
  sketches.counts.set(counts);
  sketches.recountTotals();
  return {
    version: body.version,
    k,
    dim,
    sampleSize: body.sampleSize,
    totalSeen: body.totalSeen,
    skipped: body.skipped,
    seed: body.seed,
    numNNs: body.numNNs,
    counts: numArray(body.counts, k, 'counts', file),
    dIntra: numArray(body.dIntra, k, 'dIntra', file),
    dInter: numArray(body.dInter, k, 'dInter', file),
    sketches,
    centroidsSha256: body.centroidsSha256,
  };
}

/**
 * Loads `<dir>/calibration.json`, verifies its checksum, and checks it belongs to the centroids:
 * `centroids` is the `.npy` path (default `<dir>/centroids.npy`) or its bytes, whose SHA-256 must
 * equal `centroidsSha256`.
 * Throws ERR_DBPRUNE_CALIBRATION (context.file) when the file is missing, corrupt, of another
 * version, or made for other centroids.
 */
export async function loadCalibration(dir: string, centroids?: string | Uint8Array): Promise<Calibration> {
  const file = join(dir, CALIBRATION_FILE);
  let text: string;
  try {
    text = (await readLocation(file)).toString('utf8');
  } catch (e) {
    throw calError(`${file}: cannot read calibration statistics (${(e as NodeJS.ErrnoException).code ?? String(e)}); run \`dbprune fit\` to create them`, file, {}, e);
  }
  const cal = parseCalibration(text, file);
  let bytes: Uint8Array;
  let cpath = '(bytes)';
  if (centroids instanceof Uint8Array) bytes = centroids;
  else {
    cpath = centroids ?? join(dir, CENTROIDS_FILE);
    try {
      bytes = await readLocation(cpath);
    } catch (e) {
      throw calError(`${file}: cannot read the centroids ${cpath} to check them (${(e as NodeJS.ErrnoException).code ?? String(e)})`, file, { centroids: cpath }, e);
    }
  }
  const sha = sha256Hex(bytes);
  if (sha !== cal.centroidsSha256) {
    throw calError(
      `${file} was computed for other centroids (sha256 ${cal.centroidsSha256.slice(0, 12)}…, but ${cpath} hashes to ${sha.slice(0, 12)}…); re-run \`dbprune fit\` with these centroids`,
      file,
      { centroids: cpath, expected: cal.centroidsSha256, got: sha },
    );
  }
  return cal;
}
