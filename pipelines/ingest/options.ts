/**
 * `ingest`'s options and the types its parts share: what a caller gives ({@link IngestOptions}),
 * validated once into {@link ResolvedIngestOptions} (src/core/validate.ts states each default and
 * limit), and the position, counters, state and result types.
 */
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { resolveDbpParams, type DbpParams, type ResolvedDbpParams } from '../../src/core/dbp.js';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import type { StreamingDbpSnapshot, StreamingDbpTuning } from '../../src/core/streaming-dbp.js';
import { checkOption, choiceOption, integerOption, numberOption, stringOption } from '../../src/core/validate.js';
import { MANIFEST_FORMATS, type ManifestFormat } from '../../src/io/manifest.js';
import { formatS3Uri, isS3Uri, parseS3Uri } from '../../src/io/storage/uri.js';
import { ASSIGN_MODES } from '../../src/stages/assign.js';
import type { DecodeOptions } from '../../src/stages/decode.js';
import type { DownloadOptions } from '../../src/stages/download.js';
import type { FetchShardBytesOptions } from '../../src/stages/fetch-shard.js';
import { DEFAULT_EMBEDDING_BATCH_ROWS } from '../embeddings-to-manifest.js';
import type { StateProblem } from './state-store.js';

/** What an ingest run consumes: images (tar shards and URL lists) or precomputed embeddings (.npy). */
export type IngestMode = 'images' | 'embeddings';

/** The modes, in the order the docs list them. */
export const INGEST_MODES = ['images', 'embeddings'] as const satisfies readonly IngestMode[];


/** Options of {@link ingest}: state folder and output folder (both required), segment format (default parquet), inputs (watched folder, stdin, HTTP listener), DBP parameters, checkpoint cadence. */
export interface IngestOptions extends DbpParams {
  /** State folder (journal, commits, states). Required. */
  state: string;
  /** Output folder or s3:// prefix for the manifest segments `part-<seq>.<format>` (the state folder stays local; on s3:// its LOCK is OUT's lock). Required. */
  out: string;
  /** Segment format. Default parquet. */
  format?: ManifestFormat;
  /** Input kind. Default `images`: `.tar` shards (paths or http(s) URLs) and URL lists (local
   *  .txt/.csv/.tsv/.jsonl/.parquet files). `embeddings`: local `.npy` files, keys from a
   *  `<name>.keys.txt` beside each (else the row index), shard = the file's name. */
  mode?: IngestMode;
  /** Centroids `.npy` (k×d). Required. */
  centroids: string;
  /** Folder with `calibration.json`; default the centroids' folder when it holds one. */
  calibration?: string;
  /** ONNX image encoder (images mode; required there). */
  model?: string;
  /** Folder to watch for new input files (polled every `pollMs`; a file is taken once its size and
   *  mtime are unchanged over one poll; names starting with `.` or `_`, ending in .tmp/.part, and
   *  img2dataset metadata `NNNNN.parquet`/`*_stats.json` are ignored). Write-then-rename is safest. */
  watch?: string;
  /** Watch poll interval, ms. Default 1000; 10..600_000. */
  pollMs?: number;
  /** A stream of input paths/URLs, one a line (`#` comments and blank lines skipped). */
  stdin?: NodeJS.ReadableStream;
  /** Start the HTTP listener (see pipelines/ingest/listener.ts). */
  listen?: { host?: string; port?: number; token?: string; maxBodyBytes?: number };
  /** Return once every source is exhausted (stdin ended, the watched folder holds nothing new) and
   *  every journaled input is committed. Default false: run until `signal`. */
  exitWhenDone?: boolean;
  /** Commit at least every this many samples. Default 100,000 (with `checkpointSecs`, 30 s, whichever comes first); 1..10^9. */
  checkpointEvery?: number;
  /** Commit at least every this many seconds (when anything changed). Default 30; 0.05..86_400. */
  checkpointSecs?: number;
  /** Commits whose states are kept as fallbacks. Default 3; 1..1000. */
  keepCommits?: number;
  /** SemDeDup ε (first value decides), or none. */
  dedupEps?: number | string;
  assignMode?: 'auto' | 'exact' | 'hnsw';
  ef?: number;
  threads?: number;
  tuning?: StreamingDbpTuning;
  /** Shard fetching: timeouts, minimum rate, retries, SSRF guard (see fetchShardBytes; loopback/private shard URLs need `allowPrivate`). */
  fetch?: Omit<FetchShardBytesOptions, 'signal'>;
  /** Image downloads for URL lists (see the download stage), e.g. `{ concurrency: 32, allowPrivate: true }`. */
  download?: Omit<DownloadOptions, 'signal'>;
  decode?: Omit<DecodeOptions, 'signal'>;
  /** Embedding micro-batches. Default batchSize 64, maxDelayMs 50. */
  embed?: { batchSize?: number; maxDelayMs?: number; threads?: number };
  /** Rows per .npy batch (embeddings mode). Default {@link DEFAULT_EMBEDDING_BATCH_ROWS} (2,048); 1..2^20. */
  batchRows?: number;
  /** Graceful stop: intake stops, in-flight work drains, a final commit is made. */
  signal?: AbortSignal;
  /** Non-fatal reports (recovery problems, refused inputs). */
  warn?: (line: string) => void;
  /** Called once intake is open (with the listener's address when listening). */
  onReady?: (info: { listen?: { host: string; port: number; url: string }; resumedFrom: number | null; position: IngestPosition }) => void;
  /** Called after every commit. */
  onCommit?: (c: IngestCommitInfo) => void;
}

/** What {@link IngestOptions.onCommit} is told after each commit. */
export interface IngestCommitInfo {
  seq: number;
  rows: number;
  position: IngestPosition;
  reason: string;
}

/** Where processing stands: journal entry and sample index within it. */
export interface IngestPosition {
  entry: number;
  sample: number;
}

/** Counts over the whole state folder (all sessions). */
export interface IngestCounters {
  samples: number;
  kept: number;
  /** Rows by `decision|reason`, e.g. `keep|dbp`, `drop|duplicate`, `drop|error:download`. */
  byDecisionReason: Record<string, number>;
}

/** The JSON state a commit ends on. */
export interface IngestState {
  version: 1;
  position: IngestPosition;
  counters: IngestCounters;
  dbp: StreamingDbpSnapshot;
  /** Whether the commit's extra files hold a SemDeDup snapshot. */
  dedup: boolean;
}

/** What {@link ingest} returns when it stops: commits and rows of this session and totals over the whole state folder. */
export interface IngestResult {
  /** Commits made by this session. */
  commits: number;
  /** Rows decided and committed by this session. */
  rows: number;
  /** Over the whole state folder. */
  totals: IngestCounters & { keepRatio: number };
  position: IngestPosition;
  /** Journal entries. */
  journal: number;
  /** Sequence number of the last commit (0: none). */
  lastSeq: number;
  /** The commit this session resumed from (null: fresh start). */
  resumedFrom: number | null;
  /** Invalid commits found at start (skipped; the last good one was used). */
  problems: StateProblem[];
}

/** {@link IngestOptions} checked, with defaults applied and folders resolved to absolute paths. */
export interface ResolvedIngestOptions {
  stateDir: string;
  outDir: string;
  centroids: string;
  mode: IngestMode;
  format: ManifestFormat;
  model: string | undefined;
  watchDir: string | undefined;
  checkpointEvery: number;
  checkpointSecs: number;
  pollMs: number;
  batchRows: number;
  assignMode: 'auto' | 'exact' | 'hnsw';
  params: ResolvedDbpParams;
  warn: (line: string) => void;
}

/**
 * Validates `opts` once (defaults and limits on {@link IngestOptions}).
 * @throws ERR_DBPRUNE_INVALID_OPTION naming the option; ERR_DBPRUNE_INPUT_NOT_FOUND when `watch` is not a folder.
 */
export async function resolveIngestOptions(opts: IngestOptions): Promise<ResolvedIngestOptions> {
  checkOption(opts !== null && typeof opts === 'object', 'options', 'an object', opts);
  const state = stringOption(opts.state, 'state');
  const out = stringOption(opts.out, 'out');
  const centroids = stringOption(opts.centroids, 'centroids');
  const mode = choiceOption(opts.mode, 'mode', INGEST_MODES, 'images');
  const format = choiceOption(opts.format, 'format', MANIFEST_FORMATS, 'parquet');
  const model = mode === 'images' ? stringOption(opts.model, 'model') : undefined;
  const resolved: ResolvedIngestOptions = {
    stateDir: resolvePath(state),
    outDir: isS3Uri(out) ? formatS3Uri(parseS3Uri(out.replace(/\/+$/, ''))) : resolvePath(out),
    centroids,
    mode,
    format,
    model,
    watchDir: opts.watch === undefined ? undefined : resolvePath(stringOption(opts.watch, 'watch')),
    checkpointEvery: integerOption(opts.checkpointEvery, 'checkpointEvery', { default: 100_000, min: 1, max: 1e9 }),
    checkpointSecs: numberOption(opts.checkpointSecs, 'checkpointSecs', { default: 30, min: 0.05, max: 86_400 }),
    pollMs: integerOption(opts.pollMs, 'pollMs', { default: 1000, min: 10, max: 600_000 }),
    batchRows: integerOption(opts.batchRows, 'batchRows', { default: DEFAULT_EMBEDDING_BATCH_ROWS, min: 1, max: 2 ** 20 }),
    assignMode: choiceOption(opts.assignMode, 'assignMode', ASSIGN_MODES, 'auto'),
    params: resolveDbpParams(opts),
    warn: opts.warn ?? ((): void => undefined),
  };
  if (resolved.watchDir !== undefined && !(await stat(resolved.watchDir).catch(() => undefined))?.isDirectory()) {
    throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `--watch ${opts.watch} is not a folder`, { file: resolved.watchDir });
  }
  return resolved;
}
