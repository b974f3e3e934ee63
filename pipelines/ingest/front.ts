/**
 * Ingest's front: journal entries → samples (images mode: tar members, downloaded URL-list rows) or
 * embedding batches (.npy), in journal order, starting at the resumed position.
 *
 * Every emitted sample's position is pushed to {@link IngestPositions} (see position-queue.ts).
 * On resume the entry at the position is opened again and its first `sample` samples are skipped
 * before any heavy work (tar members are parsed and dropped, URL-list rows are not downloaded, .npy
 * rows are not assigned); their keys are replayed into the key guard so that decisions match an
 * uninterrupted run. An entry the process died on {@link MAX_ENTRY_ATTEMPTS} times becomes one error row.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCodes, isDbpruneError } from '../../src/core/errors.js';
import type { EmbeddingBatch, ImageSample, RowError } from '../../src/core/sample.js';
import { embeddingBatches } from '../../src/io/embeddings-source.js';
import { readTarSamples, shardBasename, shardErrorSample } from '../../src/io/tar.js';
import { urlListBatches, type UrlRef } from '../../src/io/url-list.js';
import { download } from '../../src/stages/download.js';
import { fetchShardBytes } from '../../src/stages/fetch-shard.js';
import type { KeyGuardStream } from '../../src/stages/key-guard.js';
import { MAX_ENTRY_ATTEMPTS, type EntryAttempts } from './entry-attempts.js';
import type { IngestOptions, IngestPosition, IngestMode } from './options.js';
import type { IngestPositions } from './position-queue.js';
import type { InputJournal, JournalEntry } from './journal.js';

export interface FrontOptions {
  journal: Pick<InputJournal, 'get' | 'changed'>;
  attempts: EntryAttempts;
  mode: IngestMode;
  /** Embedding dimension (error rows of embeddings mode carry a zero vector of it). */
  dim: number;
  batchRows: number;
  fetch: IngestOptions['fetch'];
  download: IngestOptions['download'];
  positions: IngestPositions;
  /** Remembers the keys of skipped samples (resume). */
  guard: Pick<KeyGuardStream, 'remember'>;
  start: IngestPosition;
  /** Graceful stop: checked at every sample boundary; `stopped` resolves when it happens. */
  isStopping: () => boolean;
  stopped: Promise<void>;
  /** Whether to end once the journal is read to its end and `sourcesDone()`. */
  exitWhenDone: boolean;
  sourcesDone: () => boolean;
  /** Aborts the entry being read (graceful stop). */
  entrySignal: AbortSignal;
  warn: (line: string) => void;
}

function inputError(entry: JournalEntry, e: unknown): { key: string; error: RowError } {
  return {
    key: `${shardBasename(entry.src)}:input`,
    error: { reason: 'error:input', message: `input ${entry.src} failed: ${(e as Error)?.message ?? String(e)}`, code: isDbpruneError(e) ? e.code : ErrorCodes.INPUT_FORMAT },
  };
}

async function* shardSamples(entry: JournalEntry, o: FrontOptions, signal: AbortSignal): AsyncGenerator<ImageSample> {
  try {
    yield* readTarSamples(fetchShardBytes(entry.src, { ...o.fetch, signal }), { shard: entry.src, signal });
  } catch (e) {
    if (signal.aborted) throw e;
    yield shardErrorSample(entry.src, e);
  }
}

async function* urlSamples(entry: JournalEntry, skip: number, o: FrontOptions, signal: AbortSignal): AsyncGenerator<ImageSample> {
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
  const dl = download({ ...o.download, signal });
  Readable.from(refs(), { objectMode: true, highWaterMark: 1 }).pipe(dl);
  for await (const s of dl as AsyncIterable<ImageSample>) yield s;
  if (listError !== undefined) {
    const e = inputError(entry, listError);
    yield { key: e.key, shard: entry.src, error: e.error };
  }
}

async function* npyBatches(entry: JournalEntry, o: FrontOptions, signal: AbortSignal): AsyncGenerator<EmbeddingBatch> {
  const keys = entry.src.replace(/\.npy$/i, '.keys.txt');
  try {
    yield* embeddingBatches({ embeddings: entry.src, keys: existsSync(keys) ? keys : undefined, batchRows: o.batchRows, signal });
  } catch (e) {
    if (signal.aborted) throw e;
    const err = inputError(entry, e);
    yield { rows: [{ key: err.key, shard: basename(entry.src).replace(/\.npy$/i, '') }], dim: o.dim, embeddings: new Float32Array(o.dim), errors: [err.error] };
  }
}

/** The rows of `b` from index `from` on. */
function sliceBatch(b: EmbeddingBatch, from: number): EmbeddingBatch {
  return { rows: b.rows.slice(from), dim: b.dim, embeddings: b.embeddings.slice(from * b.dim), ...(b.errors ? { errors: b.errors.slice(from) } : {}) };
}

/** Emits entry `e` from sample `skip` on; resolves with the samples read (skipped ones included), or `null` when stopped. */
async function* entryItems(o: FrontOptions, e: number, entry: JournalEntry, skip: number): AsyncGenerator<ImageSample | EmbeddingBatch, number | null> {
  let idx = 0;
  const signal = o.entrySignal;
  if (o.mode === 'embeddings') {
    for await (const b of npyBatches(entry, o, signal)) {
      const n = b.rows.length;
      if (idx + n <= skip) {
        for (const r of b.rows) o.guard.remember(r.key, r.shard);
        idx += n;
        continue;
      }
      let out = b;
      if (idx < skip) {
        for (const r of b.rows.slice(0, skip - idx)) o.guard.remember(r.key, r.shard);
        out = sliceBatch(b, skip - idx);
        idx = skip;
      }
      if (o.isStopping()) return null;
      o.positions.push(e, idx, out.rows.length);
      idx += out.rows.length;
      yield out;
    }
    return idx;
  }
  const it = entry.kind === 'shard' ? shardSamples(entry, o, signal) : urlSamples(entry, skip, o, signal);
  if (entry.kind === 'urls') idx = skip; // skipped before download
  for await (const s of it) {
    if (idx < skip) {
      o.guard.remember(s.key, s.shard);
      idx++;
      continue;
    }
    if (o.isStopping()) return null;
    o.positions.push(e, idx, 1);
    idx++;
    yield s;
  }
  return idx;
}

/** The front generator (see the module comment). Ends at a graceful stop, or with exitWhenDone once everything is read. */
export async function* ingestFront(o: FrontOptions): AsyncGenerator<ImageSample | EmbeddingBatch> {
  let e = o.start.entry;
  let skip = o.start.sample;
  for (;;) {
    while (o.journal.get(e) === undefined) {
      if (o.isStopping() || (o.exitWhenDone && o.sourcesDone())) return;
      await Promise.race([o.journal.changed(), o.stopped]);
    }
    if (o.isStopping()) return;
    const entry = o.journal.get(e) as JournalEntry;
    const starts = await o.attempts.begin(e, skip);
    if (starts > MAX_ENTRY_ATTEMPTS) {
      // The process ended this many times while at this very position: give the rest of the
      // entry up as one error row rather than crash-looping on it (see entry-attempts.ts).
      o.warn(`dbprune ingest: ${entry.src} (journal entry ${e}) was being processed when the process ended ${starts - 1} times; skipping the rest of it [${ErrorCodes.INPUT_FORMAT}]`);
      const err = inputError(entry, new Error(`the process ended ${starts - 1} times in a row while processing it from sample ${skip}; given up`));
      o.positions.push(e, skip, 1);
      yield o.mode === 'embeddings'
        ? { rows: [{ key: err.key, shard: entry.src }], dim: o.dim, embeddings: new Float32Array(o.dim), errors: [err.error] }
        : { key: err.key, shard: entry.src, error: err.error };
      o.positions.entryEnded(e, skip + 1);
    } else {
      let read: number | null;
      try {
        read = yield* entryItems(o, e, entry, skip);
      } catch (err) {
        if (o.isStopping()) return;
        throw err;
      }
      if (read === null || o.isStopping()) return; // the entry may have been cut short by the stop
      o.positions.entryEnded(e, Math.max(read, skip));
    }
    e++;
    skip = 0;
  }
}
