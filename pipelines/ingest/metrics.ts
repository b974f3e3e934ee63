/**
 * Ingest's Prometheus metrics (text format 0.0.4, served at `GET /metrics` by the listener): counters
 * by decision and reason, keep ratio, queue depth per stage, throughput over the last ~10 s, commit
 * age and count, journal size and backlog.
 */
import type { Readable, Writable } from 'node:stream';
import type { IngestCounters, IngestPosition } from './options.js';

/** A named stage of the run, for the queue-depth gauge. */
export type NamedStage = [string, Readable | Writable];

/** Rows written over a sliding window of ~10 s, for the throughput gauge. */
export class RateWindow {
  private readonly samples: { t: number; n: number }[] = [{ t: Date.now(), n: 0 }];

  /** Records that `written` rows had been written by now. */
  record(written: number): void {
    const now = Date.now();
    this.samples.push({ t: now, n: written });
    while (this.samples.length > 2 && now - this.samples[0].t > 10_000) this.samples.shift();
  }

  /** Rows per second from the window's start to now, given `written` now. */
  perSecond(written: number): number {
    const first = this.samples[0];
    const dt = (Date.now() - first.t) / 1000;
    return dt > 0 ? (written - first.n) / dt : 0;
  }
}

/** What {@link metricsText} reports. */
export interface IngestMetricsInput {
  counters: IngestCounters;
  stages: readonly NamedStage[];
  rate: RateWindow;
  written: number;
  lastCommitAt: number;
  commits: number;
  lastCommitSeq: number;
  journal: number;
  position: IngestPosition;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function queueDepth(s: Readable | Writable): number {
  const r = s as Partial<Readable>;
  const w = s as Partial<Writable>;
  return (r.readableLength ?? 0) + (w.writableLength ?? 0);
}

/** Prometheus text (format 0.0.4) of an ingest run's figures. */
export function metricsText(m: IngestMetricsInput): string {
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
    m.stages.map(([name, s]) => [`{stage="${name}"}`, queueDepth(s)]),
  );
  const now = Date.now();
  metric('dbprune_ingest_samples_per_second', 'gauge', 'Samples written per second over the last ~10 s.', [['', m.rate.perSecond(m.written)]]);
  metric('dbprune_ingest_last_commit_age_seconds', 'gauge', 'Seconds since the last commit (or since start).', [['', (now - m.lastCommitAt) / 1000]]);
  metric('dbprune_ingest_commits_total', 'counter', 'Commits made by this process.', [['', m.commits]]);
  metric('dbprune_ingest_last_commit_seq', 'gauge', 'Sequence number of the last commit.', [['', m.lastCommitSeq]]);
  metric('dbprune_ingest_journal_entries', 'gauge', 'Inputs accepted into the journal.', [['', m.journal]]);
  metric('dbprune_ingest_journal_pending', 'gauge', 'Journaled inputs not yet fully committed.', [['', Math.max(0, m.journal - m.position.entry)]]);
  metric('dbprune_ingest_position_entry', 'gauge', 'Journal entry being processed (last written row).', [['', m.position.entry]]);
  return `${out.join('\n')}\n`;
}
