/**
 * Continuous ingestion (`dbprune ingest`): inputs keep arriving (a watched folder, stdin lines,
 * HTTP posts), decisions are made by streaming DBP, and the manifest is written as rolling
 * segments committed atomically together with the state they end on, so that a kill -9 at any
 * instant loses nothing and repeats nothing.
 *
 *     journal → front → [decode → embed] → gate → normalize → assign → [dedup] → decide → segment sink
 *
 * **Determinism.** Every accepted input is first appended to the input journal (fsynced; see
 * pipelines/ingest/state-store.ts), which fixes the processing order for good; the front reads the journal in
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
import { join, resolve as resolvePath } from 'node:path';
import { Readable, type Duplex, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { CALIBRATION_FILE } from '../../src/io/calibration.js';
import { hashFile } from '../../src/io/hash.js';
import { resolveModel, type ModelLocation } from '../../src/io/model-config.js';
import { decode } from '../../src/stages/decode.js';
import { embed } from '../../src/stages/embed.js';
import { keyGuard } from '../../src/stages/key-guard.js';
import { normalize } from '../../src/stages/normalize.js';
import { decisionStages, openDecider, type Decider } from '../decider.js';
import { Checkpointer } from './checkpointer.js';
import { EntryAttempts } from './entry-attempts.js';
import { ingestFront } from './front.js';
import { IngestIntake } from './intake.js';
import { startIngestListener, type IngestListener } from './listener.js';
import { metricsText, RateWindow, type NamedStage } from './metrics.js';
import { resolveIngestOptions, type IngestOptions, type IngestResult, type IngestState, type ResolvedIngestOptions } from './options.js';
import { IngestPositions } from './position-queue.js';
import { InputJournal } from './journal.js';
import { StateStore } from './state-store.js';

export { inputKindOf } from './intake.js';
export type { IngestCommitInfo, IngestCounters, IngestMode, IngestOptions, IngestPosition, IngestResult, IngestState } from './options.js';

/** The configuration a state folder is created with: a restart with other settings is refused. */
async function stateConfig(opts: IngestOptions, r: ResolvedIngestOptions, decider: Decider, model: ModelLocation | undefined): Promise<Record<string, unknown>> {
  return {
    version: 1,
    mode: r.mode,
    format: r.format,
    centroids: (await hashFile(opts.centroids)).sha256,
    calibration: decider.calibration && decider.calDir !== undefined ? (await hashFile(join(decider.calDir, CALIBRATION_FILE))).sha256 : null,
    model: model ? resolvePath(model.onnxPath) : null,
    params: r.params,
    tuning: opts.tuning ?? {},
    dedupEps: opts.dedupEps === undefined ? null : String(opts.dedupEps),
    assign: r.assignMode,
  };
}

/** The run's fatal failure as an Error (a stage may reject with anything). */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new DbpruneError(ErrorCodes.INTERNAL, `ingest failed: ${String(e)}`);
}

/** Graceful stop (signal, fatal error): `stopped` resolves once, `entry` aborts the entry being read. */
class StopSwitch {
  stopping = false;
  readonly entry = new AbortController();
  private resolveStopped!: () => void;
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  constructor(private readonly onStop: () => void) {}
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.resolveStopped();
    this.entry.abort(new Error('stop'));
    this.onStop();
  }
}

/**
 * Runs continuous ingestion until `signal` fires (or, with `exitWhenDone`, until every source is
 * exhausted), resuming from the state folder's last good commit. Consumes the inputs described by
 * {@link IngestOptions}; writes `part-<seq>.<format>` manifest segments (rows carry `shard` and
 * `key`; every sample of every journaled input appears in exactly one committed segment) and the
 * state folder (layout: pipelines/ingest/state-store.ts). Resolves with what this session did.
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
  const r = await resolveIngestOptions(opts);
  const model = r.mode === 'images' ? await resolveModel(r.model as string) : undefined;
  const store = await StateStore.open<IngestState>({ dir: r.stateDir, outDir: r.outDir, segmentExt: r.format, keep: opts.keepCommits, warn: r.warn });
  let journal: InputJournal | undefined;
  let intake: IngestIntake | undefined;
  let listener: IngestListener | undefined;
  let checkpointer: Checkpointer | undefined;
  try {
    const recovered = store.last;
    const decider = await openDecider({ ...opts, ...r.params, warn: r.warn, restore: recovered?.state.dbp });
    await store.checkConfig(await stateConfig(opts, r, decider, model));
    journal = await InputJournal.open(join(r.stateDir, 'journal.jsonl'), { warn: r.warn });
    const jr = journal;
    if (recovered && recovered.state.position.entry > jr.size) {
      throw new DbpruneError(ErrorCodes.STATE, `commit ${recovered.record.seq} is at journal entry ${recovered.state.position.entry} but the journal holds ${jr.size}`, { file: jr.path });
    }
    const run = wireRun(opts, r, { store, journal: jr, decider, model });
    ({ intake, checkpointer } = run);
    if (opts.listen) {
      const l = opts.listen;
      const ck = run.checkpointer;
      listener = await startIngestListener({
        host: l.host,
        port: l.port,
        token: l.token,
        maxBodyBytes: l.maxBodyBytes,
        metrics: run.metrics,
        health: () => ({
          ok: !run.stop.stopping && run.fatal() === undefined,
          journal: jr.size,
          position: ck.position,
          lastCommitSeq: ck.figures.lastCommitSeq,
          lastCommitAgeSeconds: (Date.now() - ck.figures.lastCommitAt) / 1000,
        }),
        submit: (s) => run.intake.submit(s),
      });
    }
    opts.onReady?.({ listen: listener ? { host: listener.host, port: listener.port, url: listener.url } : undefined, resumedFrom: recovered?.record.seq ?? null, position: run.checkpointer.position });
    return await run.execute();
  } finally {
    checkpointer?.stopTimer();
    intake?.close();
    await listener?.close();
    await journal?.close();
    await store.close();
  }
}

interface WiredRun {
  intake: IngestIntake;
  checkpointer: Checkpointer;
  stop: StopSwitch;
  fatal: () => unknown;
  metrics: () => string;
  /** Runs the stages to their end; resolves with the session's result or throws the fatal error. */
  execute: () => Promise<IngestResult>;
}

/** Builds intake, front, stages, checkpointer and metrics around an open state folder. */
function wireRun(
  opts: IngestOptions,
  r: ResolvedIngestOptions,
  ctx: { store: StateStore<IngestState>; journal: InputJournal; decider: Decider; model: ModelLocation | undefined },
): WiredRun {
  const { store, journal: jr, decider, model } = ctx;
  const recovered = store.last;
  const attempts = EntryAttempts.open(r.stateDir);
  const hard = new AbortController(); // aborts every stage (fatal error)
  let fatal: unknown;
  const stop = new StopSwitch(() => {
    intake.stop();
    jr.wake();
  });
  /** A failure the run cannot go on from (a commit or the journal failed): stop intake, end with it. */
  const failFatal = (e: unknown): void => {
    fatal ??= e;
    hard.abort(e);
    stop.stop();
    checkpointer.fail(e);
  };
  const intake = new IngestIntake({ journal: jr, mode: r.mode, stateDir: r.stateDir, exitWhenDone: Boolean(opts.exitWhenDone), warn: r.warn, onFatal: failFatal });
  if (opts.signal?.aborted) stop.stop();
  else opts.signal?.addEventListener('abort', () => stop.stop(), { once: true });
  if (opts.stdin) intake.readLines(opts.stdin);
  if (r.watchDir !== undefined) intake.watch(r.watchDir, r.pollMs);

  const positions = new IngestPositions();
  const start = recovered ? { ...recovered.state.position } : { entry: 0, sample: 0 };
  const signal = hard.signal;
  const decision = decisionStages(decider, {
    assignMode: r.assignMode,
    ef: opts.ef,
    threads: opts.threads,
    dedupEps: opts.dedupEps,
    dedupRestoreFrom: recovered?.state.dedup ? (recovered.extraDir ?? undefined) : undefined,
    signal,
  });
  const checkpointer: Checkpointer = new Checkpointer({
    store,
    format: r.format,
    checkpointEvery: r.checkpointEvery,
    checkpointSecs: r.checkpointSecs,
    dbp: decider.dbp,
    dedup: decision.dedup,
    positions,
    start: { position: start, counters: recovered ? recovered.state.counters : { samples: 0, kept: 0, byDecisionReason: {} }, lastSeq: recovered?.record.seq ?? 0 },
    onFatal: failFatal,
    onCommit: opts.onCommit,
  });
  // Repeated keys within an input become error:duplicate-key rows (see keyGuard). A resumed entry
  // replays the keys of the samples it skips into the guard, so decisions match an uninterrupted run.
  const guard = keyGuard({ onWarning: r.warn, repeatedShards: false });
  const front = ingestFront({
    journal: jr,
    attempts,
    mode: r.mode,
    dim: decider.dim,
    batchRows: r.batchRows,
    fetch: opts.fetch,
    download: opts.download,
    positions,
    guard,
    start,
    isStopping: () => stop.stopping,
    stopped: stop.stopped,
    exitWhenDone: Boolean(opts.exitWhenDone),
    sourcesDone: () => intake.sourcesDone(),
    entrySignal: stop.entry.signal,
    warn: r.warn,
  });
  const named: NamedStage[] = [['front', Readable.from(front, { objectMode: true, highWaterMark: r.mode === 'embeddings' ? 2 : 16 })]];
  if (model) {
    const pre = model.preprocessing;
    named.push(['decode', decode({ ...pre, ...opts.decode, signal })]);
    named.push(['embed', embed({ model: model.onnxPath, batchSize: opts.embed?.batchSize ?? 64, maxDelayMs: opts.embed?.maxDelayMs, threads: opts.embed?.threads, imageSize: pre?.size, signal })]);
  }
  named.push(['gate', checkpointer.gate()]);
  named.push(['normalize', normalize({ expectedDim: decider.dim, expectedFrom: `centroid (${opts.centroids})` })]);
  named.push(['keys', guard]);
  named.push(['assign', decision.assign]);
  if (decision.dedup) named.push(['dedup', decision.dedup]);
  named.push(['decide', decision.decide]);
  named.push(['sink', checkpointer.sink()]);

  const rate = new RateWindow();
  checkpointer.startTimer(() => {
    rate.record(checkpointer.figures.written);
    return !stop.stopping && fatal === undefined;
  });
  const metrics = (): string => {
    const f = checkpointer.figures;
    return metricsText({ counters: checkpointer.counters, stages: named, rate, written: f.written, lastCommitAt: f.lastCommitAt, commits: f.commits, lastCommitSeq: f.lastCommitSeq, journal: jr.size, position: checkpointer.position });
  };
  const execute = async (): Promise<IngestResult> => {
    try {
      await pipeline(named.map(([, s]) => s as Duplex | Writable));
    } catch (e) {
      failFatal(e);
      throw asError(fatal);
    } finally {
      await checkpointer.settled();
    }
    if (fatal !== undefined) throw asError(fatal);
    await attempts.clear(); // a clean stop: the next start at this position is not a crash loop
    const f = checkpointer.figures;
    const counters = checkpointer.counters;
    return {
      commits: f.commits,
      rows: f.committedRows,
      totals: { ...counters, keepRatio: counters.samples > 0 ? counters.kept / counters.samples : 0 },
      position: checkpointer.committedPos,
      journal: jr.size,
      lastSeq: f.lastCommitSeq,
      resumedFrom: recovered?.record.seq ?? null,
      problems: store.problems,
    };
  };
  return { intake, checkpointer, stop, fatal: () => fatal, metrics, execute };
}
