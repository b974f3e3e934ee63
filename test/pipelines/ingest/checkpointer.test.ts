/** The checkpoint protocol on its own (no CLI, no model): a fake state store records each commit. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DbpruneError, ErrorCodes } from '../../../src/core/errors.js';
import type { EmbeddingBatch, ManifestRow } from '../../../src/core/sample.js';
import type { StreamingDbpSnapshot } from '../../../src/core/streaming-dbp.js';
import { readManifest } from '../../../src/io/manifest.js';
import { Checkpointer, type CommitStore } from '../../../pipelines/ingest/checkpointer.js';
import type { IngestCommitInfo, IngestState } from '../../../pipelines/ingest/options.js';
import { IngestPositions } from '../../../pipelines/ingest/position-queue.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Committed {
  segmentRows: string[];
  state: IngestState;
}

/** Records every commit: the keys its segment holds and the state it ends on. */
class FakeStore implements CommitStore {
  readonly commits: Committed[] = [];
  failWith: Error | undefined;
  constructor(private readonly folder: string) {}
  segmentTempPath(): string {
    return join(this.folder, `seg-${this.commits.length + 1}.jsonl`);
  }
  extraTempDir(): string {
    return join(this.folder, `extra-${this.commits.length + 1}`);
  }
  commit(args: { segment?: { tempPath: string; rows: number }; state: IngestState }): Promise<{ seq: number }> {
    if (this.failWith) return Promise.reject(this.failWith);
    const rows = args.segment ? readManifest(args.segment.tempPath).map((r) => r.key) : [];
    if (args.segment) expect(rows.length).toBe(args.segment.rows);
    this.commits.push({ segmentRows: rows, state: structuredClone(args.state) });
    return Promise.resolve({ seq: this.commits.length });
  }
}

/** A decider that counts the rows it decided: its snapshot says how many. */
class CountingDecider {
  decided = 0;
  snapshot(): StreamingDbpSnapshot {
    return { decided: this.decided } as unknown as StreamingDbpSnapshot;
  }
}

/** `entries` journal entries of `perEntry` samples each, as batches of `batch` rows; positions pushed as the front does. */
function front(positions: IngestPositions, entries: number, perEntry: number, batch: number): Readable {
  async function* gen(): AsyncGenerator<EmbeddingBatch> {
    for (let e = 0; e < entries; e++) {
      for (let s = 0; s < perEntry; s += batch) {
        const n = Math.min(batch, perEntry - s);
        positions.push(e, s, n);
        yield { rows: Array.from({ length: n }, (_, i) => ({ key: `e${e}-${s + i}` })), dim: 1, embeddings: new Float32Array(n) };
        await new Promise((r) => setTimeout(r, 1));
      }
      positions.entryEnded(e, perEntry);
    }
  }
  return Readable.from(gen(), { objectMode: true, highWaterMark: 4 });
}

/** A slow decide: keeps even rows; buffers hold batches while commits are asked for. */
function slowDecide(decider: CountingDecider, delayMs: number): Transform {
  return new Transform({
    objectMode: true,
    highWaterMark: 4,
    transform(b: EmbeddingBatch, _enc, cb) {
      setTimeout(() => {
        const rows: ManifestRow[] = b.rows.map((r, i) => ({ key: r.key, decision: i % 2 === 0 ? 'keep' : 'drop', reason: 'dbp', cluster: 0, distance: 0 }) as ManifestRow);
        decider.decided += rows.length;
        cb(null, rows);
      }, delayMs);
    },
  });
}

function checkpointer(store: CommitStore, decider: CountingDecider, positions: IngestPositions, o: { every: number; secs: number; commits: IngestCommitInfo[]; fatal: unknown[] }): Checkpointer {
  return new Checkpointer({
    store,
    format: 'jsonl',
    checkpointEvery: o.every,
    checkpointSecs: o.secs,
    dbp: decider,
    positions,
    start: { position: { entry: 0, sample: 0 }, counters: { samples: 0, kept: 0, byDecisionReason: {} }, lastSeq: 0 },
    onFatal: (e) => o.fatal.push(e),
    onCommit: (c) => o.commits.push(c),
  });
}

describe('Checkpointer', () => {
  it('commits every n rows with the decider state after exactly the segment last row, and takes the rest at the end', async () => {
    const store = new FakeStore(dir);
    const decider = new CountingDecider();
    const positions = new IngestPositions();
    const seen = { commits: [] as IngestCommitInfo[], fatal: [] as unknown[] };
    const ck = checkpointer(store, decider, positions, { every: 10, secs: 3600, ...seen });
    await pipeline(front(positions, 3, 17, 4), ck.gate(), slowDecide(decider, 3), ck.sink());
    await ck.settled();
    expect(seen.fatal).toEqual([]);
    // every row committed exactly once, in order
    const all = store.commits.flatMap((c) => c.segmentRows);
    expect(all).toEqual(Array.from({ length: 3 }, (_, e) => Array.from({ length: 17 }, (__, s) => `e${e}-${s}`)).flat());
    // the snapshot of each commit is the state after its last row, however many rows the buffers held
    let total = 0;
    for (const c of store.commits) {
      total += c.segmentRows.length;
      expect((c.state.dbp as unknown as { decided: number }).decided).toBe(total);
      expect(c.state.counters.samples).toBe(total);
    }
    // 51 rows: a commit asked for at every 10 rows past the gate (one that finds nothing new is skipped), then the final one
    expect(store.commits.length).toBeGreaterThanOrEqual(3);
    // the end's commit is skipped when the last row-count commit already took everything
    expect(seen.commits.map((c) => c.reason).every((r) => r === 'samples' || r === 'final')).toBe(true);
    expect(ck.figures.commits).toBe(store.commits.length);
    expect(seen.commits.filter((c) => c.reason === 'samples').length).toBeGreaterThanOrEqual(2);
    // the end of the last entry is written as the start of the next one
    expect(store.commits.at(-1)?.state.position).toEqual({ entry: 3, sample: 0 });
    expect(ck.counters).toEqual({ samples: 51, kept: 27, byDecisionReason: { 'keep|dbp': 27, 'drop|dbp': 24 } });
    expect(ck.figures.committedRows).toBe(51);
  });

  it('commits on the timer when rows wait, and not when nothing changed', async () => {
    const store = new FakeStore(dir);
    const decider = new CountingDecider();
    const positions = new IngestPositions();
    const seen = { commits: [] as IngestCommitInfo[], fatal: [] as unknown[] };
    const ck = checkpointer(store, decider, positions, { every: 1_000_000, secs: 0.05, ...seen });
    ck.startTimer(() => true);
    try {
      async function* slow(): AsyncGenerator<EmbeddingBatch> {
        positions.push(0, 0, 2);
        yield { rows: [{ key: 'a' }, { key: 'b' }], dim: 1, embeddings: new Float32Array(2) };
        await new Promise((r) => setTimeout(r, 400));
        const n = store.commits.length;
        expect(n).toBeGreaterThanOrEqual(1); // the timer committed the two rows
        await new Promise((r) => setTimeout(r, 300));
        expect(store.commits.length).toBe(n); // nothing changed since: no empty commits
      }
      await pipeline(Readable.from(slow(), { objectMode: true }), ck.gate(), slowDecide(decider, 1), ck.sink());
    } finally {
      ck.stopTimer();
    }
    await ck.settled();
    expect(seen.commits[0]).toMatchObject({ reason: 'timer', rows: 2, position: { entry: 0, sample: 2 } });
    expect(store.commits.flatMap((c) => c.segmentRows)).toEqual(['a', 'b']);
  });

  it('a failed commit is fatal: onFatal gets the coded error once and no later commit is made', async () => {
    const store = new FakeStore(dir);
    store.failWith = new DbpruneError(ErrorCodes.STATE, 'disk gone', { file: dir });
    const decider = new CountingDecider();
    const positions = new IngestPositions();
    const seen = { commits: [] as IngestCommitInfo[], fatal: [] as unknown[] };
    const ck = checkpointer(store, decider, positions, { every: 3, secs: 3600, ...seen });
    // the stream itself ends (ingest's onFatal aborts its stages; here nobody does), without committing
    await pipeline(front(positions, 1, 9, 3), ck.gate(), slowDecide(decider, 1), ck.sink());
    await ck.settled();
    expect(seen.fatal).toHaveLength(1);
    expect(seen.fatal[0]).toMatchObject({ code: ErrorCodes.STATE });
    expect(seen.commits).toEqual([]);
    expect(store.commits).toEqual([]);
  });
});
