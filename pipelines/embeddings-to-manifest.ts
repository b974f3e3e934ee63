/**
 * Streaming mode over precomputed embeddings (clip-retrieval layout or .npy + keys.txt):
 *
 *   embeddingBatches → normalize → assign (on worker threads) → decide → manifestSink
 *
 * Decisions are made once per sample, in arrival order, from running statistics seeded by the
 * calibration that `dbprune fit` saved beside the centroids. For the paper's exact two-pass
 * method over a finite input, use `pruneExact` (pipelines/exact-prune.ts).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { embeddingBatches, keysAreRowIndices, planEmbeddingSource } from '../src/io/embeddings-source.js';
import { cpus } from 'node:os';
import { normalize } from '../src/stages/normalize.js';
import { tap } from '../src/stages/tap.js';
import { ASSIGN_QUEUE_PER_WORKER } from '../src/stages/assign.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch, type ManifestRow } from '../src/core/sample.js';
import { join } from 'node:path';
import { createUidSubsetWriter } from '../src/io/manifest.js';
import { Float32ArrayPool } from '../src/io/npy.js';
import { dataCompFilterStages } from './datacomp-stages.js';
import type { DataCompFilterOptions } from './datacomp-filters.js';
import { openDecisionTail, type DecisionTail, type DecisionTailOptions, type StreamingResult } from './decision-tail.js';

/**
 * Rows per micro-batch when streaming precomputed embeddings: 2,048 (4 MB at d = 512). Measured on
 * 1M×512, k = 500 (built code, 2 cores): 2,048 → 205k samples/s and peak RSS 220 / 235 MB at
 * 100k / 1M; 8,192 → 184k/s and 370 / 393 MB (bigger batches wait in queues and lag the GC).
 */
export const DEFAULT_EMBEDDING_BATCH_ROWS = 2048;

/**
 * Embedding batches read and not yet assigned, beyond the `ASSIGN_QUEUE_PER_WORKER` per
 * worker the assign stage holds (the read-ahead included): the source waits for a free buffer past
 * that. Before (no bound, buffers left to the GC) 25–35 batches of 4 MB were alive at once and peak
 * RSS passed 400 MB at 1M rows (bench/RESULTS.md, issue 16).
 */
export const READ_AHEAD_BATCHES = 2;

/** Options of {@link embeddingsToManifest}: the embedding source (`.npy` / clip-retrieval folder / DataComp shards) plus the decision tail's options. */
export interface EmbeddingsToManifestOptions extends DecisionTailOptions {
  embeddings?: string | string[];
  /** DataComp shards instead of `embeddings` (see ExactPruneOptions.datacomp). */
  datacomp?: string | string[];
  /** npz member read with `datacomp`, default l14_img. */
  embeddingKey?: string;
  /**
   * DataComp filters before assign/dedup/decide (needs `datacomp`). Streaming: `clipScore.top` is a
   * running estimate of the reference threshold (see clipScoreFilter).
   */
  filters?: DataCompFilterOptions;
  keys?: string;
  metadata?: string | string[];
  /** Rows per batch read from the .npy files. Default {@link DEFAULT_EMBEDDING_BATCH_ROWS}. */
  batchRows?: number;
  onTail?: (tail: DecisionTail) => void;
}

/**
 * Streaming mode over precomputed embeddings: embeddingBatches → assign → decide → manifestSink, decided once per row in arrival order.
 * Needs the calibration `dbprune fit` saved; resolves with the run's stats and files.
 */
export async function embeddingsToManifest(opts: EmbeddingsToManifestOptions): Promise<StreamingResult> {
  const { signal } = opts;
  // Assigning runs on worker threads (the assign stage's pool): on the main thread it left the
  // second core idle while reading, decisions and the manifest waited (issue 16). One worker per
  // core beside the main thread (which reads, normalises, decides and writes); a second worker on
  // 2 cores only competed with the main thread and added ~50 MB of peak RSS. Normalising is the
  // normalize stage's, on the main thread: the one worker is the longer side (int8 scoring and the
  // float64 δ), and moving the norm pass off it took `run --embeddings --out` at 1M rows from
  // 3.19–3.25 to 2.98–3.07 s with the same output bytes.
  // .npy batches come from a pool the tail gives them back to past assign, which also bounds how
  // far the reader runs ahead (see READ_AHEAD_BATCHES). DataComp's npz reader allocates.
  const assignWorkers = opts.assignWorkers ?? Math.max(1, Math.min(3, cpus().length - 1));
  let pool: Float32ArrayPool | undefined;
  const source = { embeddings: opts.embeddings, keys: opts.keys, metadata: opts.metadata, datacomp: opts.datacomp, embeddingKey: opts.embeddingKey, signal };
  const plan = await planEmbeddingSource(source);
  const tail = await openDecisionTail({
    ...opts,
    // keys that are global row indices are distinct: no key check (as in exact mode)
    checkKeys: opts.checkKeys ?? !keysAreRowIndices(plan),
    assignWorkers,
    releaseVectors: opts.datacomp === undefined ? (v) => pool?.release(v) : undefined,
  });
  if (opts.datacomp === undefined) {
    const inFlight = ASSIGN_QUEUE_PER_WORKER * Math.max(1, assignWorkers) + READ_AHEAD_BATCHES; // assignWorkers is valid now
    const batches = new Float32ArrayPool(Math.min(64, inFlight), inFlight);
    // A torn-down pipeline (error, abort) must not leave the reader waiting for a buffer.
    for (const s of [...tail.stages, tail.sink]) s.once('close', () => batches.close());
    pool = batches;
  }
  opts.onTail?.(tail);
  const uids = opts.datacomp !== undefined && opts.out !== undefined ? keptUidSubset(tail, join(opts.out, 'kept_uids.npy')) : undefined;
  let rowsIn = 0;
  try {
    const filters = dataCompFilterStages(opts);
    const norm = normalize(); // a batch of another dim than the centroids' fails in assign, naming both
    await pipeline(
      Readable.from(
        embeddingBatches({ ...source, plan, batchRows: opts.batchRows ?? DEFAULT_EMBEDDING_BATCH_ROWS, pool }),
        { objectMode: true, highWaterMark: BATCH_HIGH_WATER_MARK },
      ),
      tap((b: EmbeddingBatch) => (rowsIn += b.rows.length), { highWaterMark: BATCH_HIGH_WATER_MARK }),
      ...filters.stages,
      norm,
      ...tail.stages,
      tail.sink,
      { signal },
    );
    const uidsPath = uids ? await uids.close() : undefined; // before finish: it commits every output at once
    const result = await tail.finish(rowsIn, { renormalized: norm.renormalized, sections: filters.stats() });
    if (uidsPath) result.files.uids = uidsPath;
    return result;
  } catch (e) {
    return tail.fail(e);
  }
}

/**
 * DataComp runs: the kept uids as `kept_uids.npy` (sorted `u8,u8`, the resharder's subset format),
 * collected from the rows the tail writes. `close` waits for every write and returns the path.
 */
function keptUidSubset(tail: DecisionTail, path: string): { close: () => Promise<string> } {
  const writer = createUidSubsetWriter(tail.outputFile(path));
  let chain: Promise<void> = Promise.resolve();
  tail.onRows((rows: ManifestRow[]) => {
    const kept: string[] = [];
    for (const r of rows) if (r.decision === 'keep' && r.uid) kept.push(r.uid);
    if (kept.length > 0) {
      chain = chain.then(() => writer.write(kept));
      chain.catch(() => undefined); // surfaced by close(); never an unhandled rejection meanwhile
    }
  });
  return {
    async close() {
      try {
        await chain;
      } finally {
        await writer.close();
      }
      return path;
    },
  };
}
