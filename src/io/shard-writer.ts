/**
 * `--write-shards DIR`: the kept samples re-packed as webdataset shards in img2dataset's layout,
 * so OpenCLIP (or anything that reads img2dataset output) trains on them directly:
 *
 *     DIR/00000.tar          KEY.jpg|png|webp|…, KEY.txt (caption), KEY.json (sidecar) per kept sample
 *     DIR/00000.parquet      one row per sample seen while the shard was open, kept AND dropped
 *     DIR/00000_stats.json   count, successes, failed_to_download, failed_to_resize, … like img2dataset
 *
 * A shard is closed after `samplesPerShard` kept samples (the rows dropped meanwhile are in its
 * parquet), then the next one starts. File names come from a counter and member names from the
 * sanitised sample key: no value from the input is ever used as a path. Member names are unique
 * within a tar (webdataset rejects a tar with two `KEY.jpg`): when two keys sanitise to the same
 * name (`a b` and `a_b`, keys sharing their first 200 characters, one key from two shards), the
 * later one gets `-h` + 16 hex digits of SHA-256(shard, key) appended; every member whose name is
 * not its key carries the key as `original_key` in `KEY.json`.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { isS3Uri, joinLocation as join, listLocation, openWrite, writeLocation, type OutputObject } from './storage/index.js';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Float32, Int32, Table, Utf8, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import sharp from 'sharp';
import { pack as tarPack, type Pack } from 'tar-stream';
import { DbpruneError, ErrorCodes, checkOption, throwIfAborted } from '../core/errors.js';
import { statusOfReason, type ImageSample, type ManifestRow } from '../core/sample.js';
import { outputError, prepareOutputDir } from './output-set.js';

export interface ShardWriterOptions {
  /** Output folder; created if missing. Existing shards of the same names are overwritten. */
  dir: string;
  /** Kept samples per tar before the next shard starts. Default 10,000; 1..1e9. */
  samplesPerShard?: number;
  /** Digits of shard names (img2dataset's `oom_shard_count`). Default 5; 1..12. */
  oomShardCount?: number;
  /** First shard number. Default 0; ≥ 0. */
  startShardId?: number;
  /** Columns of the sample's `json` sidecar (e.g. the URL list's additional columns) also written
   *  to the parquet, as strings (JSON for non-strings). Default none. */
  additionalColumns?: readonly string[];
  /** Read width/height of kept images from their headers (sharp metadata, no decode) into the
   *  sidecar and parquet. Default true. */
  imageSize?: boolean;
  /**
   * Where to write the file that ends up at `finalPath` (default: `finalPath` itself). A run passes
   * its output set's `file` (src/io/output-set.ts) so shards are renamed into place only when the run succeeds.
   */
  tempPath?: (finalPath: string) => string;
  signal?: AbortSignal;
}

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

export interface ShardWriter {
  /** Adds one sample with its manifest row; resolves when the tar has taken it (backpressure). */
  write(sample: ImageSample, row: ManifestRow): Promise<void>;
  /** Finishes the open shard (if it has rows) and resolves with every shard written. Idempotent. */
  close(): Promise<{ shards: ShardSummary[]; rows: number; kept: number }>;
}


/**
 * Where a tar goes: an s3:// multipart upload (committed when the shard finishes), or a local file
 * written in place (as the parquet and stats beside it are).
 */
async function openTar(tarPath: string): Promise<OutputObject> {
  if (isS3Uri(tarPath)) return openWrite(tarPath);
  const stream = createWriteStream(tarPath);
  return { location: tarPath, stream, commit: async () => undefined, abort: async () => void stream.destroy() };
}

/** A shard's parquet or stats file: written in place locally, an object that appears whole on s3://. */
function writeShardFile(path: string, data: string | Uint8Array): Promise<void> {
  return isS3Uri(path) ? writeLocation(path, data) : writeFile(path, data);
}

/** A tar member base name from a key: only [A-Za-z0-9_-] (webdataset splits names at the first dot). */
export function safeMemberKey(key: string): string {
  const s = key.replace(/[^A-Za-z0-9_-]/g, '_');
  return s.length > 0 ? s.slice(0, 200) : '_';
}

/**
 * The member base name for a key in one tar: {@link safeMemberKey}, made unique among `used` (the
 * names already in this tar) by a hash suffix of (shard, key) — and a counter if even that is taken.
 */
export function uniqueMemberKey(key: string, shard: string | null | undefined, used: ReadonlySet<string>): string {
  const base = safeMemberKey(key);
  if (!used.has(base)) return base;
  const hashed = `${base}-h${createHash('sha256').update(`${shard ?? ''}\u0000${key}`).digest('hex').slice(0, 16)}`;
  let name = hashed;
  for (let n = 2; used.has(name); n++) name = `${hashed}-${n}`;
  return name;
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

class OpenShard {
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

/**
 * Creates a shard writer (see the module comment for the layout). `write(sample, row)` takes every
 * sample once with its manifest row: the row always goes to the current shard's parquet (key, url,
 * caption, status, error_message, decision, reason, cluster, distance, duplicate_of, width,
 * height, additional columns); a sample with `row.decision === 'keep'` and image bytes also goes
 * to the tar as `KEY.<ext>` (`jpg` for JPEG, else the sniffed format), `KEY.txt` (caption, when
 * there is one) and `KEY.json` (the sample's sidecar plus status, decision, reason, cluster,
 * distance, width, height). `status` is img2dataset's: `failed_to_resize` for `error:decode`,
 * `failed_to_download` for other `error:*` reasons, else `success`.
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for bad options (defaults/limits in {@link ShardWriterOptions}).
 * @throws ERR_DBPRUNE_OUTPUT (from write/close, context.file) when a file cannot be written.
 * @throws ERR_DBPRUNE_ABORTED (from write) when `signal` fires.
 */
export function createShardWriter(opts: ShardWriterOptions): ShardWriter {
  const { dir, signal } = opts;
  checkOption(typeof dir === 'string' && dir.length > 0, 'dir', 'a folder path', dir);
  const samplesPerShard = opts.samplesPerShard ?? 10_000;
  checkOption(Number.isInteger(samplesPerShard) && samplesPerShard >= 1 && samplesPerShard <= 1e9, 'samplesPerShard', 'an integer in 1..1e9', samplesPerShard);
  const oomShardCount = opts.oomShardCount ?? 5;
  checkOption(Number.isInteger(oomShardCount) && oomShardCount >= 1 && oomShardCount <= 12, 'oomShardCount', 'an integer in 1..12', oomShardCount);
  const startShardId = opts.startShardId ?? 0;
  checkOption(Number.isSafeInteger(startShardId) && startShardId >= 0, 'startShardId', 'a non-negative integer', startShardId);
  const extraNames = opts.additionalColumns ?? [];
  checkOption(Array.isArray(extraNames) && extraNames.every((c) => typeof c === 'string' && c.length > 0), 'additionalColumns', 'a list of column names', extraNames);
  const imageSize = opts.imageSize ?? true;
  const tempPath = opts.tempPath ?? ((finalPath: string): string => finalPath);

  let nextId = startShardId;
  let current: OpenShard | undefined;
  let madeDir: Promise<unknown> | undefined;
  const shards: ShardSummary[] = [];
  let totalRows = 0;
  let totalKept = 0;
  let closed: Promise<{ shards: ShardSummary[]; rows: number; kept: number }> | undefined;
  let chain: Promise<void> = Promise.resolve();

  const open = async (): Promise<OpenShard> => {
    madeDir ??= prepareOutputDir(dir);
    await madeDir;
    const name = String(nextId++).padStart(oomShardCount, '0');
    const tarPath = join(dir, `${name}.tar`);
    return new OpenShard(name, tarPath, await openTar(tempPath(tarPath)), extraNames.length);
  };

  const finish = async (s: OpenShard): Promise<void> => {
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
    shards.push({ shard: s.name, tar: s.tarPath, parquet: parquetPath, stats: statsPath, rows: s.rows, kept: s.kept });
  };

  const writeOne = async (sample: ImageSample, row: ManifestRow): Promise<void> => {
    throwIfAborted(signal);
    current ??= await open();
    const s = current;
    const status = statusOfReason(row.reason);
    const keep = row.decision === 'keep' && sample.image !== undefined && sample.image.length > 0;
    let width: number | null = null;
    let height: number | null = null;
    if (keep && imageSize) {
      try {
        const m = await sharp(sample.image, { limitInputPixels: false }).metadata();
        width = m.width ?? null;
        height = m.height ?? null;
      } catch {
        // header unreadable: sizes stay null
      }
    }
    const c = s.cols;
    const errorMessage = row.error ?? sample.error?.message ?? null;
    c.key.push(row.key);
    c.url.push(row.url ?? sample.url ?? null);
    c.caption.push(row.caption ?? sample.caption ?? null);
    c.status.push(status);
    c.error_message.push(errorMessage);
    c.decision.push(row.decision);
    c.reason.push(row.reason);
    c.cluster.push(row.cluster);
    c.distance.push(row.distance);
    c.duplicate_of.push(row.duplicate_of);
    c.width.push(width);
    c.height.push(height);
    extraNames.forEach((n, i) => c.extra[i].push(extraString(sample.json?.[n])));
    s.rows++;
    totalRows++;
    s.counts[status === 'success' ? 'successes' : status]++;
    const statusKey = status === 'success' ? 'success' : row.reason;
    s.statusDict.set(statusKey, (s.statusDict.get(statusKey) ?? 0) + 1);
    if (keep) {
      const base = uniqueMemberKey(row.key, row.shard, s.memberNames);
      s.memberNames.add(base);
      const ext = EXT_NAMES[(sample.imageExt ?? 'jpg').toLowerCase()] ?? 'jpg';
      const sidecar: Record<string, unknown> = {
        ...(sample.json ?? {}),
        key: row.key,
        url: row.url ?? sample.url ?? null,
        caption: row.caption ?? sample.caption ?? null,
        status,
        error_message: errorMessage,
        width,
        height,
        decision: row.decision,
        reason: row.reason,
        cluster: row.cluster,
        distance: row.distance,
      };
      if (base !== row.key) sidecar.original_key = row.key;
      await s.entry(`${base}.${ext}`, sample.image as Buffer);
      const caption = row.caption ?? sample.caption;
      if (caption !== undefined && caption !== null) await s.entry(`${base}.txt`, Buffer.from(caption, 'utf8'));
      await s.entry(`${base}.json`, Buffer.from(JSON.stringify(sidecar, null, 4), 'utf8'));
      s.kept++;
      totalKept++;
      if (s.kept >= samplesPerShard) {
        current = undefined;
        await finish(s);
      }
    }
  };

  return {
    write(sample, row) {
      if (closed) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'shard writer is closed', { file: dir }));
      const p = chain.then(() => writeOne(sample, row));
      chain = p.catch(() => undefined);
      return p;
    },
    close() {
      closed ??= (async () => {
        await chain;
        const s = current;
        current = undefined;
        if (s && s.rows > 0) await finish(s);
        else if (s) {
          s.pack.finalize();
          await s.done.catch(() => undefined);
        }
        return { shards: [...shards], rows: totalRows, kept: totalKept };
      })();
      return closed;
    },
  };
}

/** The shard files (`NNNNN.tar`, `NNNNN.parquet`, `NNNNN_stats.json`) in `dir` (a folder or an s3:// prefix); none when it does not exist. */
export async function shardFilesIn(dir: string): Promise<string[]> {
  let names: string[] = [];
  if (isS3Uri(dir)) {
    const prefix = `${dir.replace(/\/+$/, '')}/`;
    for await (const e of listLocation(prefix)) names.push(e.location.slice(prefix.length));
  } else {
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
  }
  return names.filter((n) => /^\d+(\.tar|\.parquet|_stats\.json)$/.test(n)).map((n) => join(dir, n));
}

/** One item for {@link shardWriterSink}. */
export interface ShardItem {
  sample: ImageSample;
  row: ManifestRow;
}

/**
 * The shard writer as an objectMode Writable of `{ sample, row }` items, for `pipeline(...)`.
 * Finishes (closing the last shard) when the input ends; `onClose` receives the summary.
 * Errors: as {@link createShardWriter}.
 */
export function shardWriterSink(opts: ShardWriterOptions & { onClose?: (r: { shards: ShardSummary[]; rows: number; kept: number }) => void }): Writable {
  const w = createShardWriter(opts);
  return new Writable({
    objectMode: true,
    highWaterMark: 16,
    write(item: ShardItem, _enc, cb) {
      w.write(item.sample, item.row).then(() => cb(), cb);
    },
    final(cb) {
      w.close().then((r) => {
        opts.onClose?.(r);
        cb();
      }, cb);
    },
  });
}
