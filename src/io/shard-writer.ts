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
import { readdir } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import type { ImageSample, ManifestRow } from '../core/sample.js';
import { booleanOption, checkOption, integerOption, stringOption } from '../core/validate.js';
import { prepareOutputDir } from './output-set.js';
import { finishShard, imageSizeOf, openTar, OpenShard, type ShardSummary } from './shard-writer/open-shard.js';
import { isS3Uri, joinLocation as join, listLocation } from './storage/index.js';

export { safeMemberKey, uniqueMemberKey } from './shard-writer/member-names.js';
export type { ShardSummary } from './shard-writer/open-shard.js';

/** Options of {@link createShardWriter}: output folder, samples per shard (default 10,000; 1..1e9), digits of shard names (default 5; 1..12), first shard id, extra columns, image size. */
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

/** Writes kept samples into webdataset tars (see {@link createShardWriter}): `write` with backpressure, `close` resolves with every shard written. */
export interface ShardWriter {
  /** Adds one sample with its manifest row; resolves when the tar has taken it (backpressure). */
  write(sample: ImageSample, row: ManifestRow): Promise<void>;
  /** Finishes the open shard (if it has rows) and resolves with every shard written. Idempotent. */
  close(): Promise<{ shards: ShardSummary[]; rows: number; kept: number }>;
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
  stringOption(dir, 'dir');
  const samplesPerShard = integerOption(opts.samplesPerShard, 'samplesPerShard', { default: 10_000, min: 1, max: 1e9 });
  const oomShardCount = integerOption(opts.oomShardCount, 'oomShardCount', { default: 5, min: 1, max: 12 });
  const startShardId = integerOption(opts.startShardId, 'startShardId', { default: 0, min: 0 });
  const extraNames = opts.additionalColumns ?? [];
  checkOption(Array.isArray(extraNames) && extraNames.every((c) => typeof c === 'string' && c.length > 0), 'additionalColumns', 'a list of column names', extraNames);
  const imageSize = booleanOption(opts.imageSize, 'imageSize', true);
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
    shards.push(await finishShard(s, dir, extraNames, tempPath));
  };

  const writeOne = async (sample: ImageSample, row: ManifestRow): Promise<void> => {
    throwIfAborted(signal);
    current ??= await open();
    const s = current;
    const keep = row.decision === 'keep' && sample.image !== undefined && sample.image.length > 0;
    const size = keep && imageSize ? await imageSizeOf(sample.image as Buffer) : { width: null, height: null };
    const record = s.addRow(sample, row, size, extraNames);
    totalRows++;
    if (!keep) return;
    await s.addMembers(sample, row, record);
    totalKept++;
    if (s.kept >= samplesPerShard) {
      current = undefined;
      await finish(s);
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
