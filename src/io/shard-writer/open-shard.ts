/**
 * One shard of the shard writer (src/io/shard-writer.ts): its tar (a local file or an s3://
 * upload), the parquet columns of every row seen while it is open, its img2dataset-style counts,
 * and how it is finished (tar committed, then `NNNNN.parquet` and `NNNNN_stats.json`).
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Float32, Int32, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { loadSharp } from '../sharp.js';
import { pack as tarPack, type Pack } from 'tar-stream';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { statusOfReason, type DownloadStatus, type ImageSample, type ManifestRow } from '../../core/sample.js';
import { outputError } from '../output-set.js';
import { isS3Uri, joinLocation as join, openWrite, writeLocation, type OutputObject } from '../storage/index.js';
import { uniqueMemberKey } from './member-names.js';

/** One finished shard. */
export interface ShardSummary {
  shard: string;
  tar: string;
  parquet: string;
  stats: string;
  /** Rows in the parquet (kept + dropped). */
  rows: number;
  /** Samples in the tar. */
  kept: number;
}

/** A kept image's size read from its header; nulls when not read. */
export interface ImageSize {
  width: number | null;
  height: number | null;
}

/** What the parquet row and the sidecar of one sample share. */
interface RowRecord extends ImageSize {
  status: DownloadStatus;
  errorMessage: string | null;
  url: string | null;
  caption: string | null;
}

/**
 * Where a tar goes: an s3:// multipart upload (committed when the shard finishes), or a local file
 * written in place (as the parquet and stats beside it are).
 */
export async function openTar(tarPath: string): Promise<OutputObject> {
  if (isS3Uri(tarPath)) return openWrite(tarPath);
  const stream = createWriteStream(tarPath);
  const abort = (): Promise<void> => {
    stream.destroy();
    return Promise.resolve();
  };
  return { location: tarPath, stream, commit: () => Promise.resolve(), abort };
}

/** A shard's parquet or stats file: written in place locally, an object that appears whole on s3://. */
export function writeShardFile(path: string, data: string | Uint8Array): Promise<void> {
  return isS3Uri(path) ? writeLocation(path, data) : writeFile(path, data);
}

const EXT_NAMES: Record<string, string> = {
  jpeg: 'jpg',
  jpg: 'jpg',
  jpe: 'jpg',
  jfif: 'jpg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  bmp: 'bmp',
  tiff: 'tiff',
  tif: 'tiff',
  avif: 'avif',
  heic: 'heic',
  svg: 'svg',
  svgz: 'svgz',
};

interface Cols {
  key: string[];
  url: (string | null)[];
  caption: (string | null)[];
  status: string[];
  error_message: (string | null)[];
  decision: string[];
  reason: string[];
  cluster: number[];
  distance: (number | null)[];
  duplicate_of: (string | null)[];
  width: (number | null)[];
  height: (number | null)[];
  extra: (string | null)[][];
}

/** The shard being written: its tar stream, its parquet columns, its counts. */
export class OpenShard {
  readonly pack: Pack;
  readonly done: Promise<void>;
  readonly started = Date.now();
  kept = 0;
  rows = 0;
  readonly counts = { successes: 0, failed_to_download: 0, failed_to_resize: 0 };
  readonly statusDict = new Map<string, number>();
  /** Member base names written to this tar (unique; at most samplesPerShard). */
  readonly memberNames = new Set<string>();
  readonly cols: Cols;
  private failure: unknown;

  constructor(
    readonly name: string,
    readonly tarPath: string,
    /** The tar being written (a temp file or a multipart upload); committed when the shard finishes. */
    readonly output: OutputObject,
    extraCount: number,
  ) {
    this.pack = tarPack();
    this.done = pipeline(this.pack, output.stream);
    this.done.catch((e: unknown) => {
      this.failure ??= e;
    });
    this.cols = {
      key: [],
      url: [],
      caption: [],
      status: [],
      error_message: [],
      decision: [],
      reason: [],
      cluster: [],
      distance: [],
      duplicate_of: [],
      width: [],
      height: [],
      extra: Array.from({ length: extraCount }, () => []),
    };
  }

  /**
   * Records `row` (and the sample's url, caption, error, additional columns) in the parquet
   * columns and the counts; returns the values the sidecar repeats.
   */
  addRow(sample: ImageSample, row: ManifestRow, size: ImageSize, extraNames: readonly string[]): RowRecord {
    const c = this.cols;
    const status = statusOfReason(row.reason);
    const record: RowRecord = {
      status,
      errorMessage: row.error ?? sample.error?.message ?? null,
      url: row.url ?? sample.url ?? null,
      caption: row.caption ?? sample.caption ?? null,
      ...size,
    };
    c.key.push(row.key);
    c.url.push(record.url);
    c.caption.push(record.caption);
    c.status.push(status);
    c.error_message.push(record.errorMessage);
    c.decision.push(row.decision);
    c.reason.push(row.reason);
    c.cluster.push(row.cluster);
    c.distance.push(row.distance);
    c.duplicate_of.push(row.duplicate_of);
    c.width.push(size.width);
    c.height.push(size.height);
    extraNames.forEach((n, i) => c.extra[i].push(extraString(sample.json?.[n])));
    this.rows++;
    this.counts[status === 'success' ? 'successes' : status]++;
    const statusKey = status === 'success' ? 'success' : row.reason;
    this.statusDict.set(statusKey, (this.statusDict.get(statusKey) ?? 0) + 1);
    return record;
  }

  /** Adds a kept sample's members to the tar: `KEY.<ext>`, `KEY.txt` (when it has a caption), `KEY.json`. */
  async addMembers(sample: ImageSample, row: ManifestRow, record: RowRecord): Promise<void> {
    const base = uniqueMemberKey(row.key, row.shard, this.memberNames);
    this.memberNames.add(base);
    const ext = EXT_NAMES[(sample.imageExt ?? 'jpg').toLowerCase()] ?? 'jpg';
    const sidecar: Record<string, unknown> = {
      ...(sample.json ?? {}),
      key: row.key,
      url: record.url,
      caption: record.caption,
      status: record.status,
      error_message: record.errorMessage,
      width: record.width,
      height: record.height,
      decision: row.decision,
      reason: row.reason,
      cluster: row.cluster,
      distance: row.distance,
    };
    if (base !== row.key) sidecar.original_key = row.key;
    await this.entry(`${base}.${ext}`, sample.image as Buffer);
    const caption = row.caption ?? sample.caption;
    if (caption !== undefined && caption !== null) await this.entry(`${base}.txt`, Buffer.from(caption, 'utf8'));
    await this.entry(`${base}.json`, Buffer.from(JSON.stringify(sidecar, null, 4), 'utf8'));
    this.kept++;
  }

  check(): void {
    if (this.failure !== undefined) {
      throw outputError(this.tarPath, this.failure);
    }
  }

  entry(name: string, data: Buffer): Promise<void> {
    this.check();
    return new Promise((resolve, reject) => {
      this.pack.entry({ name, size: data.length, mode: 0o644, mtime: new Date(this.started) }, data, (err) => {
        if (err) reject(new DbpruneError(ErrorCodes.OUTPUT, `cannot write ${name} to ${this.tarPath}: ${err.message}`, { file: this.tarPath }, { cause: err }));
        else resolve();
      });
    });
  }
}

function utf8(values: (string | null)[]): Vector {
  return vectorFromArray(values, new Utf8());
}

/** Encodes one shard's rows as Parquet bytes (parquet-wasm, Snappy). */
function parquetBytes(c: Cols, extraNames: readonly string[]): Uint8Array {
  const cols: Record<string, Vector> = {
    key: utf8(c.key),
    url: utf8(c.url),
    caption: utf8(c.caption),
    status: utf8(c.status),
    error_message: utf8(c.error_message),
    decision: utf8(c.decision),
    reason: utf8(c.reason),
    cluster: vectorFromArray(c.cluster, new Int32()),
    distance: vectorFromArray(c.distance, new Float32()),
    duplicate_of: utf8(c.duplicate_of),
    width: vectorFromArray(c.width, new Int32()),
    height: vectorFromArray(c.height, new Int32()),
  };
  extraNames.forEach((n, i) => {
    if (!(n in cols)) cols[n] = utf8(c.extra[i]);
  });
  const table = new Table(cols);
  const wt = parquet.Table.fromIPCStream(tableToIPC(table, 'stream'));
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).setCreatedBy('dbprune').build();
  return parquet.writeParquet(wt, props);
}

function extraString(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Width and height from the image's header (sharp metadata, no decode); nulls when unreadable. */
export async function imageSizeOf(image: Buffer): Promise<ImageSize> {
  const sharp = await loadSharp();
  try {
    const m = await sharp(image, { limitInputPixels: false }).metadata();
    return { width: m.width ?? null, height: m.height ?? null };
  } catch {
    return { width: null, height: null }; // header unreadable: sizes stay null
  }
}

/**
 * Ends a shard: finalises and commits its tar, then writes its parquet and `_stats.json`
 * (through `tempPath`). Returns its summary.
 */
export async function finishShard(s: OpenShard, dir: string, extraNames: readonly string[], tempPath: (finalPath: string) => string): Promise<ShardSummary> {
  s.pack.finalize();
  try {
    await s.done;
  } catch {
    // reported by check()
  }
  try {
    s.check();
    await s.output.commit();
  } catch (e) {
    await s.output.abort();
    throw e instanceof DbpruneError ? e : new DbpruneError(ErrorCodes.OUTPUT, `cannot write ${s.tarPath}: ${(e as Error).message}`, { file: s.tarPath }, { cause: e });
  }
  const parquetPath = join(dir, `${s.name}.parquet`);
  const statsPath = join(dir, `${s.name}_stats.json`);
  try {
    await writeShardFile(tempPath(parquetPath), parquetBytes(s.cols, extraNames));
    const end = Date.now();
    const stats = {
      count: s.rows,
      successes: s.counts.successes,
      failed_to_download: s.counts.failed_to_download,
      failed_to_resize: s.counts.failed_to_resize,
      kept: s.kept,
      dropped: s.rows - s.kept,
      duration: (end - s.started) / 1000,
      start_time: s.started / 1000,
      end_time: end / 1000,
      status_dict: Object.fromEntries(s.statusDict),
    };
    await writeShardFile(tempPath(statsPath), `${JSON.stringify(stats, null, 4)}\n`);
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.OUTPUT, `cannot write shard ${s.name} in ${dir}: ${(e as Error).message}`, { file: dir, shard: s.name }, { cause: e });
  }
  return { shard: s.name, tar: s.tarPath, parquet: parquetPath, stats: statsPath, rows: s.rows, kept: s.kept };
}
