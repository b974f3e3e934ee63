/**
 * Continuous ingestion (`dbprune ingest`): inputs keep arriving (a watched folder, stdin lines,
 * HTTP posts), decisions are made by streaming DBP, and the manifest is written as rolling
 * segments committed atomically together with the state they end on, so that a kill -9 at any
 * instant loses nothing and repeats nothing.
 *
 *     journal → front → [decode → embed] → gate → normalize → assign → [dedup] → decide → segment sink
 *
 * **Determinism.** Every accepted input is first appended to the input journal (fsynced; see
 * src/io/state-store.ts), which fixes the processing order for good; the front reads the journal in
 * order and emits every sample of an input in input order (tar order, URL-list order, .npy row
 * order). All later stages keep order and count, and the decider's state is restored exactly, so
 * the decisions equal those of an uninterrupted run over the same journal. (Exceptions: inputs
 * that change between runs — a shard URL that serves other bytes —, and a SemDeDup cluster large
 * enough to use HNSW, whose graph after a restore is rebuilt from a saved index rather than grown
 * insert by insert, so an approximate search may differ.)
 *
 * **Position.** The state is (journal entry, sample index within it): on restart the entry at the
 * position is opened again and its first `sample` samples are skipped before any heavy work (tar
 * members are parsed and dropped, URL-list rows are not downloaded, .npy rows are not assigned).
 *
 * **Checkpoints.** Every `checkpointEvery` samples (counted at the gate) and every
 * `checkpointSecs` seconds (when anything changed), the gate stops passing batches, the stages
 * behind it drain into the sink, and the segment written since the last commit is committed with
 * the state (StreamingDbp snapshot, SemDeDup snapshot, position, counters) — atomically, see
 * {@link StateStore.commit}. Holding the gate makes the snapshot exactly the state after the last
 * row of the segment, whatever the stream buffers hold. Restart resumes from the newest valid
 * commit; anything written after it is deleted and redone.
 *
 * **Stop.** When `signal` fires (SIGTERM/SIGINT in the CLI): intake stops (watcher, stdin, HTTP
 * posts get 503), the front stops at the next sample boundary, everything already emitted is
 * decided and written, a final commit is made, and {@link ingest} resolves.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { interClusterDistance } from '../../src/core/complexity.js';
import { resolveDbpParams, type DbpParams } from '../../src/core/dbp.js';
import { checkOption, DbpruneError, ErrorCodes, isDbpruneError } from '../../src/core/errors.js';
import type { EmbeddingBatch, ImageSample, ManifestRow } from '../../src/core/sample.js';
import { StreamingDbp, type StreamingDbpSnapshot, type StreamingDbpTuning } from '../../src/core/streaming-dbp.js';
import { normalizedCopy } from '../../src/core/vector.js';
import { CALIBRATION_FILE, loadCalibration } from '../../src/io/calibration.js';
import { embeddingBatches } from '../../src/io/embeddings-source.js';
import { isUrl, naturalCompare } from '../../src/io/glob.js';
import { startIngestListener, type IngestListener, type IngestReply, type IngestSubmission } from './listener.js';
import { createManifestWriter, type ManifestFormat, type ManifestWriter } from '../../src/io/manifest.js';
import { resolveModel } from '../../src/io/model-config.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { hashFile, sha256Hex } from '../../src/io/hash.js';
import { InputJournal, StateStore, writeFileDurable, type InputKind, type JournalEntry, type StateProblem } from './state-store.js';
import { readTarSamples, shardBasename, shardErrorSample } from '../../src/io/tar.js';
import { urlListBatches, urlListFormatFromPath, type UrlListFormat, type UrlRef } from '../../src/io/url-list.js';
import { assign } from '../../src/stages/assign.js';
import { decide } from '../../src/stages/decide.js';
import { decode, type DecodeOptions } from '../../src/stages/decode.js';
import { dedup, type DedupStream } from '../../src/stages/dedup.js';
import { download, type DownloadOptions } from '../../src/stages/download.js';
import { embed } from '../../src/stages/embed.js';
import { keyGuard } from '../../src/stages/key-guard.js';
import { fetchShardBytes, type FetchShardBytesOptions } from '../../src/stages/fetch-shard.js';
import { EntryAttempts, MAX_ENTRY_ATTEMPTS } from './entry-attempts.js';
import { normalize } from '../../src/stages/normalize.js';
import { DEFAULT_EMBEDDING_BATCH_ROWS } from '../embeddings-to-manifest.js';

/** What an ingest run consumes: images (tar shards and URL lists) or precomputed embeddings (.npy). */
export type IngestMode = 'images' | 'embeddings';

export interface IngestOptions extends DbpParams {
  /** State folder (journal, commits, states). Required. */
  state: string;
  /** Output folder for the manifest segments `part-<seq>.<format>`. Required. */
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
  /** Start the HTTP listener (see src/io/ingest-listener.ts). */
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
  /** Image downloads for URL lists (see the download stage), e.g. `{ allowPrivate: true }`. */
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
  onCommit?: (c: { seq: number; rows: number; position: IngestPosition; reason: string }) => void;
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

/** Which kind of input a path/URL is, by its extension; undefined when unknown. */
export function inputKindOf(src: string): InputKind | undefined {
  let p = src;
  if (isUrl(src)) {
    try {
      p = new URL(src).pathname;
    } catch {
      return undefined;
    }
  }
  const lower = p.toLowerCase();
  if (lower.endsWith('.tar')) return 'shard';
  if (lower.endsWith('.npy')) return 'embeddings';
  if (urlListFormatFromPath(lower) !== undefined) return 'urls';
  return undefined;
}

/** Run-length queue of (entry, sample index) for the rows between the front and the sink. */
class PositionQueue {
  private q: { entry: number; start: number; count: number }[] = [];
  private head = 0;

  push(entry: number, start: number, count: number): void {
    const last = this.q.length > this.head ? this.q[this.q.length - 1] : undefined;
    if (last && last.entry === entry && last.start + last.count === start) last.count += count;
    else this.q.push({ entry, start, count });
  }

  /** Consumes `n` rows; returns the position just after the last one. */
  take(n: number): IngestPosition {
    let pos: IngestPosition | undefined;
    while (n > 0) {
      const h = this.q[this.head];
      if (!h) throw new DbpruneError(ErrorCodes.INTERNAL, `ingest position queue ran dry with ${n} rows to account for`);
      const m = Math.min(n, h.count);
      h.start += m;
      h.count -= m;
      n -= m;
      pos = { entry: h.entry, sample: h.start };
      if (h.count === 0) this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
    return pos as IngestPosition;
  }
}

const URL_CONTENT_TYPES: Record<string, UrlListFormat> = {
  'text/uri-list': 'txt',
  'text/plain': 'txt', // only with a token: the listener refuses CORS-simple types without one
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/json-lines': 'jsonl',
  'text/csv': 'csv',
  'text/tab-separated-values': 'tsv',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
};

function num(v: number | undefined, def: number, name: string, lo: number, hi: number, integer: boolean): number {
  const x = v ?? def;
  checkOption(Number.isFinite(x) && x >= lo && x <= hi && (!integer || Number.isInteger(x)), name, `${integer ? 'an integer' : 'a number'} in ${lo}..${hi}`, x);
  return x;
}

/**
 * Runs continuous ingestion until `signal` fires (or, with `exitWhenDone`, until every source is
 * exhausted), resuming from the state folder's last good commit. Consumes the inputs described by
 * {@link IngestOptions}; writes `part-<seq>.<format>` manifest segments (rows carry `shard` and
 * `key`; every sample of every journaled input appears in exactly one committed segment) and the
 * state folder (layout: src/io/state-store.ts). Resolves with what this session did.
 *
 * Options (validated here; defaults and limits on {@link IngestOptions}).
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION / ERR_DBPRUNE_USAGE for bad options (e.g. no model in images
 *   mode, a non-loopback listener without token); ERR_DBPRUNE_STATE when the state folder belongs
 *   to another configuration, is locked by a live process, or its journal is corrupt (a corrupt
 *   *commit* is not fatal: it is reported through `warn` and `problems` and the previous one is
 *   used); ERR_DBPRUNE_CALIBRATION / DIM_MISMATCH / MODEL for bad centroids, calibration or model;
 *   a stage's error when the pipeline fails (the last commit stays valid).
 */
export async function ingest(opts: IngestOptions): Promise<IngestResult> {
  checkOption(typeof opts?.state === 'string' && opts.state.length > 0, 'state', 'a folder path', opts?.state);
  checkOption(typeof opts.out === 'string' && opts.out.length > 0, 'out', 'a folder path', opts.out);
  checkOption(typeof opts.centroids === 'string' && opts.centroids.length > 0, 'centroids', 'a .npy path', opts.centroids);
  const mode: IngestMode = opts.mode ?? 'images';
  checkOption(mode === 'images' || mode === 'embeddings', 'mode', 'images or embeddings', mode);
  const format: ManifestFormat = opts.format ?? 'parquet';
  checkOption(['parquet', 'arrow', 'jsonl'].includes(format), 'format', 'parquet, arrow or jsonl', format);
  checkOption(mode === 'embeddings' || (typeof opts.model === 'string' && opts.model.length > 0), 'model', 'an ONNX model path in images mode', opts.model);
  const every = num(opts.checkpointEvery, 100_000, 'checkpointEvery', 1, 1e9, true);
  const secs = num(opts.checkpointSecs, 30, 'checkpointSecs', 0.05, 86_400, false);
  const pollMs = num(opts.pollMs, 1000, 'pollMs', 10, 600_000, true);
  const batchRows = num(opts.batchRows, DEFAULT_EMBEDDING_BATCH_ROWS, 'batchRows', 1, 2 ** 20, true);
  const params = resolveDbpParams(opts);
  const warn = opts.warn ?? ((): void => undefined);
  const stateDir = resolvePath(opts.state);
  const outDir = resolvePath(opts.out);
  const watchDir = opts.watch === undefined ? undefined : resolvePath(opts.watch);
  if (watchDir !== undefined && !(await stat(watchDir).catch(() => undefined))?.isDirectory()) {
    throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `--watch ${opts.watch} is not a folder`, { file: watchDir });
  }

  // ---- model, centroids, calibration ----------------------------------------------------------
  const model = mode === 'images' ? await resolveModel(opts.model as string) : undefined;
  const c = await readNpyFloat32(opts.centroids);
  const k = c.rows;
  const dim = c.cols;
  const calDir = opts.calibration ?? (existsSync(join(dirname(opts.centroids), CALIBRATION_FILE)) ? dirname(opts.centroids) : undefined);
  const calibration = calDir !== undefined ? await loadCalibration(calDir, opts.centroids) : undefined;
  if (calibration && (calibration.k !== k || calibration.dim !== dim)) {
    throw new DbpruneError(ErrorCodes.CALIBRATION, `calibration in ${calDir} is for k=${calibration.k}, d=${calibration.dim}; centroids ${opts.centroids} are k=${k}, d=${dim}`, { file: calDir });
  }
  if (!calibration) warn(`dbprune: no ${CALIBRATION_FILE} beside ${opts.centroids}: streaming decisions start cold`);

  // ---- state folder ---------------------------------------------------------------------------
  const store = await StateStore.open<IngestState>({ dir: stateDir, outDir, segmentExt: format, keep: opts.keepCommits, warn });
  let journal: InputJournal | undefined;
  let listener: IngestListener | undefined;
  let rl: ReturnType<typeof createInterface> | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    await store.checkConfig({
      version: 1,
      mode,
      format,
      centroids: (await hashFile(opts.centroids)).sha256,
      calibration: calibration ? (await hashFile(join(calDir as string, CALIBRATION_FILE))).sha256 : null,
      model: model ? resolvePath(model.onnxPath) : null,
      params,
      tuning: opts.tuning ?? {},
      dedupEps: opts.dedupEps === undefined ? null : String(opts.dedupEps),
      assign: opts.assignMode ?? 'auto',
    });
    journal = await InputJournal.open(join(stateDir, 'journal.jsonl'), { warn });
    const jr = journal;
    const attempts = EntryAttempts.open(stateDir);
    const recovered = store.last;
    const dbp = recovered
      ? StreamingDbp.restore(recovered.state.dbp)
      : new StreamingDbp({
          k,
          params,
          dInter: calibration && calibration.numNNs === params.numNNs ? calibration.dInter : interClusterDistance(normalizedCopy(c.data, k, dim), k, dim, params.numNNs),
          calibration,
          tuning: opts.tuning,
        });
    const counters: IngestCounters = recovered ? structuredClone(recovered.state.counters) : { samples: 0, kept: 0, byDecisionReason: {} };
    if (recovered && recovered.state.position.entry > jr.size) {
      throw new DbpruneError(ErrorCodes.STATE, `commit ${recovered.record.seq} is at journal entry ${recovered.state.position.entry} but the journal holds ${jr.size}`, { file: jr.path });
    }
    let position: IngestPosition = recovered ? { ...recovered.state.position } : { entry: 0, sample: 0 };
    let committedPos: IngestPosition = { ...position };

    // ---- stop handling ----------------------------------------------------------------------
    let stopping = false;
    let stopResolve!: () => void;
    const stopped = new Promise<void>((r) => (stopResolve = r));
    const entryAc = new AbortController(); // aborts the entry being read (graceful stop)
    const hardAc = new AbortController(); // aborts every stage (fatal error)
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      stopResolve();
      entryAc.abort(new Error('stop'));
      jr.wake();
    };
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });

    // ---- intake -----------------------------------------------------------------------------
    const accepts = (kind: InputKind): boolean => (mode === 'embeddings' ? kind === 'embeddings' : kind !== 'embeddings');
    const accept = async (raw: string, via: string): Promise<{ entry?: JournalEntry; duplicate?: boolean; error?: string }> => {
      const t = raw.trim();
      if (t.length === 0 || t.startsWith('#')) return {};
      const src = isUrl(t) ? t : resolvePath(t);
      const kind = inputKindOf(src);
      if (!kind || !accepts(kind)) return { error: `${t}: not an input of ${mode} mode (${mode === 'images' ? '.tar shards, URL lists' : '.npy files'})` };
      if (kind !== 'shard' && isUrl(src)) return { error: `${t}: ${kind === 'urls' ? 'URL lists' : '.npy files'} must be local files` };
      if (!isUrl(src) && !(await stat(src).catch(() => undefined))?.isFile()) return { error: `${t}: no such file` };
      if (stopping) return { error: 'stopping' };
      try {
        return await jr.append({ kind, src, id: src, via });
      } catch (e) {
        if (!(isDbpruneError(e) && e.code === ErrorCodes.STATE)) throw e;
        // the state folder cannot take inputs any more (deleted?): stop, coded, instead of warning forever
        warn(`dbprune ingest: ${e.message} [${e.code}]; stopping`);
        failFatal(e);
        return { error: 'stopping' };
      }
    };
    let stdinDone = opts.stdin === undefined;
    let watchDone = watchDir === undefined;
    const sourcesDone = (): boolean => stdinDone && watchDone;

    if (opts.stdin) {
      rl = createInterface({ input: opts.stdin, crlfDelay: Infinity });
      const lines = rl;
      void (async () => {
        try {
          for await (const line of lines) {
            if (stopping) break;
            const r = await accept(line, 'stdin');
            if (r.error && r.error !== 'stopping') warn(`dbprune ingest: refused ${r.error}`);
          }
        } catch (e) {
          warn(`dbprune ingest: stdin failed: ${(e as Error).message}`);
        } finally {
          stdinDone = true;
          jr.wake();
        }
      })();
    }

    if (watchDir !== undefined) {
      const sizes = new Map<string, string>();
      let scanning = false;
      const scan = async (): Promise<void> => {
        if (scanning || stopping) return;
        scanning = true;
        try {
          const names = (await readdir(watchDir, { withFileTypes: true }))
            .filter((d) => d.isFile() && !/^[._]/.test(d.name) && !/\.(tmp|part|partial|crdownload)$/i.test(d.name))
            .filter((d) => !/^\d+\.parquet$/i.test(d.name) && !/_stats\.json$/i.test(d.name) && !/\.keys\.txt$/i.test(d.name))
            .map((d) => d.name)
            .sort(naturalCompare);
          let pending = 0;
          for (const name of names) {
            const p = join(watchDir, name);
            const kind = inputKindOf(p);
            if (!kind || !accepts(kind) || jr.indexOf(p) !== undefined) continue;
            const st = await stat(p).catch(() => undefined);
            if (!st) continue;
            const sig = `${st.size}:${st.mtimeMs}`;
            if (sizes.get(p) !== sig) {
              sizes.set(p, sig);
              pending++;
              continue;
            }
            sizes.delete(p);
            const r = await accept(p, 'watch');
            if (r.error && r.error !== 'stopping') warn(`dbprune ingest: refused ${r.error}`);
          }
          if (pending === 0 && !watchDone && opts.exitWhenDone) {
            watchDone = true;
            jr.wake();
          }
        } catch (e) {
          warn(`dbprune ingest: cannot scan ${watchDir}: ${(e as Error).message}`);
        } finally {
          scanning = false;
        }
      };
      void scan();
      timers.push(setInterval(() => void scan(), pollMs));
    }

    // ---- checkpoint machinery ---------------------------------------------------------------
    let emitted = 0; // rows passed by the gate (this session)
    let written = 0; // rows written by the sink (this session)
    let committedRows = 0; // rows committed (this session)
    let requestedAt = 0;
    let commits = 0;
    let lastCommitAt = Date.now();
    let lastTimerRequest = 0;
    let lastCommitSeq = recovered?.record.seq ?? 0;
    let hold: Promise<void> | null = null;
    let sinkWake: (() => void) | null = null;
    let commitChain: Promise<void> = Promise.resolve();
    let fatal: unknown;
    const entryEnd = new Map<number, number>();
    const fifo = new PositionQueue();
    let segment: { writer: ManifestWriter; path: string; rows: number } | null = null;
    let dedupStage: DedupStream | undefined;

    const normalizePos = (p: IngestPosition): IngestPosition => {
      const q = { ...p };
      while (entryEnd.get(q.entry) === q.sample) q.entry++, (q.sample = 0);
      return q;
    };
    const doCommit = async (reason: string): Promise<void> => {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      try {
        while (written < emitted && fatal === undefined) await new Promise<void>((r) => (sinkWake = r));
        if (fatal !== undefined) return;
        const pos = normalizePos(position);
        if (written === committedRows && pos.entry === committedPos.entry && pos.sample === committedPos.sample) return;
        let seg: { tempPath: string; rows: number } | undefined;
        if (segment) {
          await segment.writer.close();
          seg = { tempPath: segment.path, rows: segment.rows };
          segment = null;
        }
        let extraDir: string | undefined;
        if (dedupStage) {
          extraDir = store.extraTempDir();
          await dedupStage.snapshot(extraDir);
        }
        const state: IngestState = { version: 1, position: pos, counters, dbp: dbp.snapshot(), dedup: dedupStage !== undefined };
        const rec = await store.commit({ segment: seg, state, extraDir });
        for (const e of entryEnd.keys()) if (e < pos.entry) entryEnd.delete(e);
        commits++;
        lastCommitSeq = rec.seq;
        lastCommitAt = Date.now();
        const rows = written - committedRows;
        committedRows = written;
        committedPos = pos;
        position = pos;
        opts.onCommit?.({ seq: rec.seq, rows, position: pos, reason });
      } finally {
        hold = null;
        release();
      }
    };
    /** A failure the run cannot go on from (a commit or the journal failed): stop intake, end with it. */
    const failFatal = (e: unknown): void => {
      fatal ??= e;
      hardAc.abort(e);
      stop();
      (sinkWake as (() => void) | null)?.();
    };
    const requestCommit = (reason: string): Promise<void> => {
      const p = commitChain.then(() => doCommit(reason));
      commitChain = p.catch((e: unknown) => failFatal(e));
      return p;
    };

    // ---- front: journal entries → samples / embedding batches -------------------------------
    const fetchOpts = opts.fetch ?? {};
    async function* shardSamples(entry: JournalEntry, signal: AbortSignal): AsyncGenerator<ImageSample> {
      try {
        yield* readTarSamples(fetchShardBytes(entry.src, { ...fetchOpts, signal }), { shard: entry.src, signal });
      } catch (e) {
        if (signal.aborted) throw e;
        yield shardErrorSample(entry.src, e);
      }
    }
    const inputError = (entry: JournalEntry, e: unknown): { key: string; reason: `error:${string}`; message: string; code: string } => ({
      key: `${shardBasename(entry.src)}:input`,
      reason: 'error:input',
      message: `input ${entry.src} failed: ${(e as Error)?.message ?? String(e)}`,
      code: isDbpruneError(e) ? e.code : ErrorCodes.INPUT_FORMAT,
    });
    async function* urlSamples(entry: JournalEntry, skip: number, signal: AbortSignal): AsyncGenerator<ImageSample> {
      let listError: unknown;
      async function* refs(): AsyncGenerator<UrlRef[]> {
        let idx = 0;
        try {
          for await (const b of urlListBatches({ input: entry.src, batchRows: 1024, signal })) {
            const from = Math.max(0, skip - idx);
            idx += b.length;
            if (from >= b.length) continue;
            const out = from > 0 ? b.slice(from) : b;
            for (const r of out) r.shard = entry.src;
            yield out;
          }
        } catch (e) {
          if (!signal.aborted) listError = e;
        }
      }
      const dl = download({ ...opts.download, signal });
      Readable.from(refs(), { objectMode: true, highWaterMark: 1 }).pipe(dl);
      for await (const s of dl as AsyncIterable<ImageSample>) yield s;
      if (listError !== undefined) {
        const e = inputError(entry, listError);
        yield { key: e.key, shard: entry.src, error: { reason: e.reason, message: e.message, code: e.code } };
      }
    }
    async function* npyBatches(entry: JournalEntry, signal: AbortSignal): AsyncGenerator<EmbeddingBatch> {
      const keys = entry.src.replace(/\.npy$/i, '.keys.txt');
      try {
        yield* embeddingBatches({ embeddings: entry.src, keys: existsSync(keys) ? keys : undefined, batchRows, signal });
      } catch (e) {
        if (signal.aborted) throw e;
        const err = inputError(entry, e);
        yield {
          rows: [{ key: err.key, shard: basename(entry.src).replace(/\.npy$/i, '') }],
          dim,
          embeddings: new Float32Array(dim),
          errors: [{ reason: err.reason, message: err.message, code: err.code }],
        };
      }
    }

    // Repeated keys within an input become error:duplicate-key rows (see keyGuard). A resumed entry
    // replays the keys of the samples it skips into the guard, so decisions match an uninterrupted run.
    const guard = keyGuard({ onWarning: warn, repeatedShards: false });
    async function* front(): AsyncGenerator<ImageSample | EmbeddingBatch> {
      let e = position.entry;
      let skip = position.sample;
      for (;;) {
        while (jr.get(e) === undefined) {
          if (stopping || (opts.exitWhenDone && sourcesDone())) return;
          await Promise.race([jr.changed(), stopped]);
        }
        if (stopping) return;
        const entry = jr.get(e) as JournalEntry;
        let idx = 0;
        const starts = await attempts.begin(e, skip);
        if (starts > MAX_ENTRY_ATTEMPTS) {
          // The process ended this many times while at this very position: give the rest of the
          // entry up as one error row rather than crash-looping on it (see src/io/entry-attempts.ts).
          warn(`dbprune ingest: ${entry.src} (journal entry ${e}) was being processed when the process ended ${starts - 1} times; skipping the rest of it [${ErrorCodes.INPUT_FORMAT}]`);
          const err = inputError(entry, new Error(`the process ended ${starts - 1} times in a row while processing it from sample ${skip}; given up`));
          const error = { reason: err.reason, message: err.message, code: err.code };
          fifo.push(e, skip, 1);
          yield mode === 'embeddings'
            ? { rows: [{ key: err.key, shard: entry.src }], dim, embeddings: new Float32Array(dim), errors: [error] }
            : { key: err.key, shard: entry.src, error };
          entryEnd.set(e, skip + 1);
          e++;
          skip = 0;
          continue;
        }
        try {
          if (mode === 'embeddings') {
            for await (const b of npyBatches(entry, entryAc.signal)) {
              const n = b.rows.length;
              if (idx + n <= skip) {
                for (const r of b.rows) guard.remember(r.key, r.shard);
                idx += n;
                continue;
              }
              let out = b;
              if (idx < skip) {
                const from = skip - idx;
                for (const r of b.rows.slice(0, from)) guard.remember(r.key, r.shard);
                out = { rows: b.rows.slice(from), dim: b.dim, embeddings: b.embeddings.slice(from * b.dim), ...(b.errors ? { errors: b.errors.slice(from) } : {}) };
                idx = skip;
              }
              if (stopping) return;
              fifo.push(e, idx, out.rows.length);
              idx += out.rows.length;
              yield out;
            }
          } else {
            const it = entry.kind === 'shard' ? shardSamples(entry, entryAc.signal) : urlSamples(entry, skip, entryAc.signal);
            if (entry.kind === 'urls') idx = skip; // skipped before download
            for await (const s of it) {
              if (idx < skip) {
                guard.remember(s.key, s.shard);
                idx++;
                continue;
              }
              if (stopping) return;
              fifo.push(e, idx, 1);
              idx++;
              yield s;
            }
          }
        } catch (err) {
          if (stopping) return;
          throw err;
        }
        if (stopping) return; // the entry may have been cut short by the stop
        entryEnd.set(e, Math.max(idx, skip));
        e++;
        skip = 0;
      }
    }

    // ---- stages -----------------------------------------------------------------------------
    const signal = hardAc.signal;
    const frontStream = Readable.from(front(), { objectMode: true, highWaterMark: mode === 'embeddings' ? 2 : 16 });
    const named: [string, Duplex | Readable | Writable][] = [['front', frontStream]];
    if (mode === 'images' && model) {
      const pre = model.preprocessing;
      named.push([
        'decode',
        decode({ ...pre, ...opts.decode, signal }),
      ]);
      named.push(['embed', embed({ model: model.onnxPath, batchSize: opts.embed?.batchSize ?? 64, maxDelayMs: opts.embed?.maxDelayMs, threads: opts.embed?.threads, imageSize: pre?.size, signal })]);
    }
    const gate = new Transform({
      objectMode: true,
      highWaterMark: 2,
      transform(batch: EmbeddingBatch, _enc, cb) {
        (async () => {
          while (hold) await hold;
          emitted += batch.rows.length;
          this.push(batch);
          if (emitted - requestedAt >= every) {
            requestedAt = emitted;
            void requestCommit('samples').catch(() => undefined);
          }
        })().then(() => cb(), cb);
      },
    });
    named.push(['gate', gate]);
    named.push(['normalize', normalize({ expectedDim: dim, expectedFrom: `centroid (${opts.centroids})` })]);
    named.push(['keys', guard]);
    named.push(['assign', assign({ centroids: c.data, k, dim, mode: opts.assignMode ?? 'auto', ef: opts.ef, threads: opts.threads, signal })]);
    if (opts.dedupEps !== undefined) {
      dedupStage = dedup({ eps: opts.dedupEps, dim, k, restoreFrom: recovered?.state.dedup ? (recovered.extraDir ?? undefined) : undefined, signal });
      named.push(['dedup', dedupStage]);
    }
    named.push(['decide', decide({ dbp, signal })]);
    const rowGroupRows = Math.min(65_536, every);
    const sink = new Writable({
      objectMode: true,
      highWaterMark: 4,
      write(rows: ManifestRow[], _enc, cb) {
        (async () => {
          if (rows.length > 0) {
            if (!segment) {
              const path = store.segmentTempPath();
              segment = { writer: createManifestWriter(path, format, { rowGroupRows }), path, rows: 0 };
            }
            await segment.writer.write(rows);
            segment.rows += rows.length;
            for (const r of rows) {
              const key = `${r.decision}|${r.reason}`;
              counters.byDecisionReason[key] = (counters.byDecisionReason[key] ?? 0) + 1;
              if (r.decision === 'keep') counters.kept++;
            }
            counters.samples += rows.length;
            position = fifo.take(rows.length);
          }
          written += rows.length;
          const w = sinkWake;
          sinkWake = null;
          w?.();
        })().then(() => cb(), cb);
      },
      final(cb) {
        requestCommit('final').then(() => cb(), cb);
      },
    });
    named.push(['sink', sink]);

    // ---- metrics, timers, listener ----------------------------------------------------------
    const rate: { t: number; n: number }[] = [{ t: Date.now(), n: 0 }];
    timers.push(
      setInterval(() => {
        const now = Date.now();
        rate.push({ t: now, n: written });
        while (rate.length > 2 && now - rate[0].t > 10_000) rate.shift();
        if (!stopping && fatal === undefined && now - Math.max(lastCommitAt, lastTimerRequest) >= secs * 1000 && hold === null) {
          const pos = normalizePos(position);
          if (emitted > committedRows || pos.entry !== committedPos.entry || pos.sample !== committedPos.sample) {
            lastTimerRequest = now; // one timer-driven request at a time
            void requestCommit('timer').catch(() => undefined);
          }
        }
      }, Math.min(1000, secs * 1000)),
    );
    const metrics = (): string => metricsText({ counters, named, rate, written, lastCommitAt, commits, lastCommitSeq, journal: jr.size, position });
    /** Bodies being stored and journaled, by identity: an identical concurrent POST waits for it. */
    const storing = new Map<string, Promise<JournalEntry>>();
    let storeSeq = 0;
    const storeUrlBody = async (s: IngestSubmission, fmt: UrlListFormat, hex: string, id: string): Promise<JournalEntry> => {
      const path = join(stateDir, 'inputs', `${hex}.${fmt}`);
      try {
        await writeFileDurable(path, s.body, join(stateDir, 'tmp', `input-${hex}.${process.pid}.${storeSeq++}.${fmt}`));
      } catch (e) {
        throw new DbpruneError(ErrorCodes.STATE, `cannot store the posted URL batch as ${path}: ${(e as Error).message} (was the state folder removed?); not accepted`, { file: path }, { cause: e });
      }
      return (await jr.append({ kind: 'urls', src: path, id, via: 'listen' })).entry;
    };
    const submit = async (s: IngestSubmission): Promise<IngestReply> => {
      try {
        return await submitOnce(s);
      } catch (e) {
        // The input was not journaled, so it is not acknowledged: the caller gets the coded error.
        // A state folder that cannot take inputs any more ends the run (coded, exit 1).
        if (isDbpruneError(e) && e.code === ErrorCodes.STATE) {
          warn(`dbprune ingest: ${e.message} [${e.code}]; stopping`);
          failFatal(e);
        }
        throw e;
      }
    };
    const submitOnce = async (s: IngestSubmission): Promise<IngestReply> => {
      if (stopping) return { status: 503, body: { error: 'stopping' } };
      if (s.route === 'shards') {
        if (mode !== 'images') return { status: 400, body: { error: 'this ingest takes .npy embeddings, not shards' } };
        let list: string[];
        try {
          if (s.contentType === 'application/json') {
            const j = JSON.parse(s.body.toString('utf8')) as unknown;
            const arr = Array.isArray(j) ? j : (j as { shards?: unknown })?.shards;
            if (!Array.isArray(arr) || !arr.every((x) => typeof x === 'string')) throw new Error('expected a JSON array of strings');
            list = arr as string[];
          } else list = s.body.toString('utf8').split('\n');
        } catch (e) {
          return { status: 400, body: { error: 'bad body', message: (e as Error).message } };
        }
        list = list.map((x) => x.trim()).filter((x) => x.length > 0 && !x.startsWith('#'));
        const bad = list.filter((x) => !isUrl(x) || inputKindOf(x) !== 'shard');
        if (list.length === 0 || bad.length > 0) return { status: 400, body: { error: 'expected http(s) URLs of .tar shards, one a line', rejected: bad } };
        const accepted: { i: number; src: string; duplicate: boolean }[] = [];
        for (const src of list) {
          const r = await jr.append({ kind: 'shard', src, id: src, via: 'listen' });
          accepted.push({ i: r.entry.i, src, duplicate: r.duplicate });
        }
        return { status: 202, body: { accepted } };
      }
      if (mode !== 'images') return { status: 400, body: { error: 'this ingest takes .npy embeddings, not URL lists' } };
      const fmt = URL_CONTENT_TYPES[s.contentType];
      if (!fmt) return { status: 415, body: { error: 'unsupported content type for a URL list', supported: Object.keys(URL_CONTENT_TYPES) } };
      if (s.body.length === 0) return { status: 400, body: { error: 'empty body' } };
      const hex = sha256Hex(s.body);
      const id = `sha256:${hex}`;
      const known = jr.indexOf(id);
      if (known !== undefined) return { status: 200, body: { accepted: [{ i: known, src: jr.get(known)?.src, duplicate: true }] } };
      const pending = storing.get(id);
      if (pending) {
        const entry = await pending;
        return { status: 200, body: { accepted: [{ i: entry.i, src: entry.src, duplicate: true }] } };
      }
      const p = storeUrlBody(s, fmt, hex, id);
      storing.set(id, p);
      try {
        const entry = await p;
        return { status: 202, body: { accepted: [{ i: entry.i, src: entry.src, duplicate: false }] } };
      } finally {
        storing.delete(id);
      }
    };
    if (opts.listen) {
      const l = opts.listen;
      listener = await startIngestListener({
        host: l.host,
        port: l.port,
        token: l.token,
        maxBodyBytes: l.maxBodyBytes,
        metrics,
        health: () => ({ ok: !stopping && fatal === undefined, journal: jr.size, position, lastCommitSeq, lastCommitAgeSeconds: (Date.now() - lastCommitAt) / 1000 }),
        submit: (s) => submit(s),
      });
    }
    opts.onReady?.({ listen: listener ? { host: listener.host, port: listener.port, url: listener.url } : undefined, resumedFrom: recovered?.record.seq ?? null, position });

    // ---- run ----------------------------------------------------------------------------------
    try {
      await pipeline(named.map(([, s]) => s));
    } catch (e) {
      fatal ??= e;
      hardAc.abort(e);
      (sinkWake as (() => void) | null)?.();
      throw fatal;
    } finally {
      await commitChain;
    }
    if (fatal !== undefined) throw fatal;
    await attempts.clear(); // a clean stop: the next start at this position is not a crash loop
    return {
      commits,
      rows: committedRows,
      totals: { ...counters, keepRatio: counters.samples > 0 ? counters.kept / counters.samples : 0 },
      position: committedPos,
      journal: jr.size,
      lastSeq: lastCommitSeq,
      resumedFrom: recovered?.record.seq ?? null,
      problems: store.problems,
    };
  } finally {
    for (const t of timers) clearInterval(t);
    rl?.close();
    await listener?.close();
    await journal?.close();
    await store.close();
  }
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Prometheus text (format 0.0.4) of an ingest run's figures. */
function metricsText(m: {
  counters: IngestCounters;
  named: [string, Duplex | Readable | Writable][];
  rate: { t: number; n: number }[];
  written: number;
  lastCommitAt: number;
  commits: number;
  lastCommitSeq: number;
  journal: number;
  position: IngestPosition;
}): string {
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, rows: [string, number][]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  const byDR = Object.entries(m.counters.byDecisionReason).sort(([a], [b]) => (a < b ? -1 : 1));
  metric(
    'dbprune_ingest_samples_total',
    'counter',
    'Samples decided (over the whole state folder), by decision and reason.',
    byDR.map(([key, v]) => {
      const [decision, reason] = key.split('|');
      return [`{decision="${esc(decision)}",reason="${esc(reason ?? '')}"}`, v];
    }),
  );
  metric('dbprune_ingest_kept_ratio', 'gauge', 'Kept samples / decided samples.', [['', m.counters.samples > 0 ? m.counters.kept / m.counters.samples : 0]]);
  metric(
    'dbprune_ingest_queue_depth',
    'gauge',
    'Objects buffered in each stage (readable + writable side; samples before embed, batches after).',
    m.named.map(([name, s]) => [`{stage="${name}"}`, ((s as Readable).readableLength ?? 0) + ((s as Writable).writableLength ?? 0)]),
  );
  const first = m.rate[0];
  const now = Date.now();
  const dt = (now - first.t) / 1000;
  metric('dbprune_ingest_samples_per_second', 'gauge', 'Samples written per second over the last ~10 s.', [['', dt > 0 ? (m.written - first.n) / dt : 0]]);
  metric('dbprune_ingest_last_commit_age_seconds', 'gauge', 'Seconds since the last commit (or since start).', [['', (now - m.lastCommitAt) / 1000]]);
  metric('dbprune_ingest_commits_total', 'counter', 'Commits made by this process.', [['', m.commits]]);
  metric('dbprune_ingest_last_commit_seq', 'gauge', 'Sequence number of the last commit.', [['', m.lastCommitSeq]]);
  metric('dbprune_ingest_journal_entries', 'gauge', 'Inputs accepted into the journal.', [['', m.journal]]);
  metric('dbprune_ingest_journal_pending', 'gauge', 'Journaled inputs not yet fully committed.', [['', Math.max(0, m.journal - m.position.entry)]]);
  metric('dbprune_ingest_position_entry', 'gauge', 'Journal entry being processed (last written row).', [['', m.position.entry]]);
  return `${out.join('\n')}\n`;
}
