/**
 * Where the rows between ingest's front and its sink came from — the one side channel of ingest,
 * documented here.
 *
 * The front knows the journal position (entry, sample index) of every sample it emits; the sink,
 * many stages later, must know the position just after the last row it wrote, because that is what
 * a commit records. The stages in between (decode, embed, gate, normalize, key guard, assign, dedup,
 * decide) keep **order and count**: every sample in comes out as exactly one row, in order (their
 * documented contract; "nothing is lost"). So positions need not ride on the samples: the front
 * appends run-lengths here and the sink takes as many as it wrote, in the same order.
 *
 * {@link IngestPositions} holds both halves of that bookkeeping:
 * - a run-length FIFO of (entry, first sample, count) pushed by the front and taken by the sink;
 * - the end of each fully read entry, so that "entry e, sample n" at the end of entry e is written
 *   as "entry e+1, sample 0" ({@link IngestPositions.normalize}).
 */
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import type { IngestPosition } from './options.js';

interface Run {
  entry: number;
  start: number;
  count: number;
}

export class IngestPositions {
  private runs: Run[] = [];
  private head = 0;
  private readonly entryEnd = new Map<number, number>();

  /** The front emitted `count` samples of journal entry `entry`, starting at sample `start`. */
  push(entry: number, start: number, count: number): void {
    const last = this.runs.length > this.head ? this.runs[this.runs.length - 1] : undefined;
    if (last && last.entry === entry && last.start + last.count === start) last.count += count;
    else this.runs.push({ entry, start, count });
  }

  /**
   * The sink wrote `n` rows: consumes them; returns the position just after the last one.
   * @throws ERR_DBPRUNE_INTERNAL when fewer rows were pushed (a stage emitted more rows than it got).
   */
  take(n: number): IngestPosition {
    let pos: IngestPosition | undefined;
    let left = n;
    while (left > 0) {
      const h = this.runs[this.head];
      if (!h) throw new DbpruneError(ErrorCodes.INTERNAL, `ingest position queue ran dry with ${left} rows to account for`, { rows: n });
      const m = Math.min(left, h.count);
      h.start += m;
      h.count -= m;
      left -= m;
      pos = { entry: h.entry, sample: h.start };
      if (h.count === 0) this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.runs.length) {
      this.runs = this.runs.slice(this.head);
      this.head = 0;
    }
    if (!pos) throw new DbpruneError(ErrorCodes.INTERNAL, 'ingest position queue: take(0)', { rows: n });
    return pos;
  }

  /** The front read entry `entry` to its end, `samples` samples in all. */
  entryEnded(entry: number, samples: number): void {
    this.entryEnd.set(entry, samples);
  }

  /** `p`, moved past every entry it stands at the end of. */
  normalize(p: IngestPosition): IngestPosition {
    const q = { ...p };
    while (this.entryEnd.get(q.entry) === q.sample) {
      q.entry++;
      q.sample = 0;
    }
    return q;
  }

  /** Forgets the ends of entries before `entry` (committed past them). */
  forgetBefore(entry: number): void {
    for (const e of this.entryEnd.keys()) if (e < entry) this.entryEnd.delete(e);
  }
}
