/**
 * Ingest's checkpoint protocol in one object: the counters, the gate, the segment sink, the commit
 * chain and the commit timer.
 *
 *     … → gate → … stages … → sink
 *
 * - The **gate** counts the rows it lets through (`emitted`) and asks for a commit every
 *   `checkpointEvery` rows. While a commit is being made it holds every batch back.
 * - The **sink** ({@link manifestSink} over a rolling segment writer) writes rows to the open
 *   segment, counts them by decision and reason, and takes their positions from
 *   {@link IngestPositions}.
 * - A **commit** closes the gate, waits until the sink has written every row the gate let through
 *   (so the decider's snapshot is exactly the state after the segment's last row, whatever the
 *   stream buffers hold), then commits segment + state through the store and opens the gate.
 *   Commits are chained: one at a time, in request order. A failed commit is fatal
 *   ({@link CheckpointerOptions.onFatal}); the previous commit stays current.
 * - The **timer** asks for a commit every `checkpointSecs` when anything changed.
 */
import { Transform } from 'node:stream';
import type { EmbeddingBatch, ManifestRow } from '../../src/core/sample.js';
import type { StreamingDbpSnapshot } from '../../src/core/streaming-dbp.js';
import { createManifestWriter, type ManifestFormat, type ManifestWriter } from '../../src/io/manifest.js';
import { manifestSink, type ManifestSink } from '../../src/stages/manifest-sink.js';
import type { IngestCommitInfo, IngestCounters, IngestPosition, IngestState } from './options.js';
import type { IngestPositions } from './position-queue.js';
import type { CommitRecord } from './state-store.js';

/** What the checkpointer needs of the state store (a {@link StateStore}, or a fake in tests). */
export interface CommitStore {
  segmentTempPath(): string;
  extraTempDir(): string;
  commit(args: { segment?: { tempPath: string; rows: number }; state: IngestState; extraDir?: string }): Promise<Pick<CommitRecord, 'seq'>>;
}

export interface CheckpointerOptions {
  store: CommitStore;
  /** Segment format. */
  format: ManifestFormat;
  /** Commit at least every this many rows (counted at the gate). */
  checkpointEvery: number;
  /** Commit at least every this many seconds when anything changed. */
  checkpointSecs: number;
  /** The decider's state, snapshotted at each commit. */
  dbp: { snapshot(): StreamingDbpSnapshot };
  /** The SemDeDup stage, snapshotted into the commit's extra folder; absent when dedup is off. */
  dedup?: { snapshot(dir: string): Promise<unknown> };
  positions: IngestPositions;
  /** Where the state resumed from (the last commit's position), and its counters. */
  start: { position: IngestPosition; counters: IngestCounters; lastSeq: number };
  /** A commit failed: the run cannot go on (stop intake, abort the stages, end with `e`). */
  onFatal: (e: unknown) => void;
  onCommit?: (c: IngestCommitInfo) => void;
}

/** The figures of the checkpointer (this session unless said otherwise). */
export interface CheckpointFigures {
  /** Rows passed by the gate. */
  emitted: number;
  /** Rows written by the sink. */
  written: number;
  /** Rows committed. */
  committedRows: number;
  commits: number;
  lastCommitSeq: number;
  /** Date.now() of the last commit (or of the start). */
  lastCommitAt: number;
}

export class Checkpointer {
  /** Over the whole state folder; updated by the sink. */
  readonly counters: IngestCounters;
  /** Position just after the last row written (not yet committed). */
  position: IngestPosition;
  /** Position of the last commit. */
  committedPos: IngestPosition;
  readonly figures: CheckpointFigures;
  private readonly o: CheckpointerOptions;
  private hold: Promise<void> | null = null;
  private sinkWake: (() => void) | null = null;
  private chain: Promise<void> = Promise.resolve();
  private segment: { writer: ManifestWriter; path: string; rows: number } | null = null;
  private requestedAt = 0;
  private lastTimerRequest = 0;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(o: CheckpointerOptions) {
    this.o = o;
    this.counters = structuredClone(o.start.counters);
    this.position = { ...o.start.position };
    this.committedPos = { ...o.start.position };
    this.figures = { emitted: 0, written: 0, committedRows: 0, commits: 0, lastCommitSeq: o.start.lastSeq, lastCommitAt: Date.now() };
  }

  /** The gate stage: holds batches while a commit is made; asks for a commit every `checkpointEvery` rows. */
  gate(): Transform {
    const gate: Transform = new Transform({
      objectMode: true,
      highWaterMark: 2,
      transform: (batch: EmbeddingBatch, _enc, cb) => {
        this.passGate(batch.rows.length).then(
          () => {
            gate.push(batch);
            this.afterGate();
            cb();
          },
          (e: unknown) => cb(e as Error),
        );
      },
    });
    return gate;
  }

  private async passGate(rows: number): Promise<void> {
    while (this.hold) await this.hold;
    this.figures.emitted += rows;
  }

  private afterGate(): void {
    if (this.figures.emitted - this.requestedAt >= this.o.checkpointEvery) {
      this.requestedAt = this.figures.emitted;
      this.request('samples').catch(() => undefined);
    }
  }

  /** The sink: writes decided rows to the open segment; its end makes the final commit. */
  sink(): ManifestSink {
    const rowGroupRows = Math.min(65_536, this.o.checkpointEvery);
    const written = (): number => this.figures.written;
    const segments: ManifestWriter = {
      write: async (rows) => {
        if (rows.length === 0) return;
        if (!this.segment) {
          const path = this.o.store.segmentTempPath();
          this.segment = { writer: createManifestWriter(path, this.o.format, { rowGroupRows }), path, rows: 0 };
        }
        await this.segment.writer.write(rows);
        this.segment.rows += rows.length;
      },
      // segments are closed by commits; the stream's end commits (afterClose)
      close: () => Promise.resolve({ rows: this.figures.written }),
      get rows() {
        return written();
      },
    };
    return manifestSink({
      manifest: segments,
      onRows: (rows) => this.rowsWritten(rows),
      afterClose: () => this.request('final'),
    });
  }

  private rowsWritten(rows: ManifestRow[]): void {
    if (rows.length > 0) {
      for (const r of rows) {
        const key = `${r.decision}|${r.reason}`;
        this.counters.byDecisionReason[key] = (this.counters.byDecisionReason[key] ?? 0) + 1;
        if (r.decision === 'keep') this.counters.kept++;
      }
      this.counters.samples += rows.length;
      this.position = this.o.positions.take(rows.length);
    }
    this.figures.written += rows.length;
    this.wakeCommit();
  }

  /** Wakes a commit waiting for the sink (after each written batch, or when the run failed). */
  wakeCommit(): void {
    const w = this.sinkWake;
    this.sinkWake = null;
    w?.();
  }

  /** Asks for a commit (chained after the ones asked before). Resolves when it is made (or skipped: nothing changed). */
  request(reason: string): Promise<void> {
    const p = this.chain.then(() => this.commit(reason));
    this.chain = p.catch((e: unknown) => this.fail(e));
    return p;
  }

  /** Resolves once every commit asked for so far has ended. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** The run failed elsewhere: commits still waiting end without committing. */
  fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.o.onFatal(e);
    this.wakeCommit();
  }

  /** Whether anything was written or read past since the last commit. */
  changed(): boolean {
    const pos = this.o.positions.normalize(this.position);
    return this.figures.emitted > this.figures.committedRows || pos.entry !== this.committedPos.entry || pos.sample !== this.committedPos.sample;
  }

  /** Starts the commit timer (every `checkpointSecs` when anything changed). `active()` false skips a tick (stopping, failed). */
  startTimer(active: () => boolean): void {
    const secs = this.o.checkpointSecs;
    this.timer = setInterval(() => {
      const now = Date.now();
      if (this.failed || !active() || this.hold !== null || now - Math.max(this.figures.lastCommitAt, this.lastTimerRequest) < secs * 1000) return;
      if (!this.changed()) return;
      this.lastTimerRequest = now; // one timer-driven request at a time
      this.request('timer').catch(() => undefined);
    }, Math.min(1000, secs * 1000));
  }

  stopTimer(): void {
    clearInterval(this.timer);
  }

  private async commit(reason: string): Promise<void> {
    let release!: () => void;
    this.hold = new Promise<void>((r) => (release = r));
    try {
      const f = this.figures;
      while (f.written < f.emitted && !this.failed) await new Promise<void>((r) => (this.sinkWake = r));
      if (this.failed) return;
      const pos = this.o.positions.normalize(this.position);
      if (f.written === f.committedRows && pos.entry === this.committedPos.entry && pos.sample === this.committedPos.sample) return;
      let seg: { tempPath: string; rows: number } | undefined;
      if (this.segment) {
        await this.segment.writer.close();
        seg = { tempPath: this.segment.path, rows: this.segment.rows };
        this.segment = null;
      }
      let extraDir: string | undefined;
      if (this.o.dedup) {
        extraDir = this.o.store.extraTempDir();
        await this.o.dedup.snapshot(extraDir);
      }
      const state: IngestState = { version: 1, position: pos, counters: this.counters, dbp: this.o.dbp.snapshot(), dedup: this.o.dedup !== undefined };
      const rec = await this.o.store.commit({ segment: seg, state, extraDir });
      this.o.positions.forgetBefore(pos.entry);
      f.commits++;
      f.lastCommitSeq = rec.seq;
      f.lastCommitAt = Date.now();
      const rows = f.written - f.committedRows;
      f.committedRows = f.written;
      this.committedPos = pos;
      this.position = pos;
      this.o.onCommit?.({ seq: rec.seq, rows, position: pos, reason });
    } finally {
      this.hold = null;
      release();
    }
  }
}
