/**
 * `manifestSink()`: the end of a pipeline. Consumes `ManifestRow[]` batches (as `decide` emits
 * them; a {@link DecidedRows} may carry per-row side data along), and writes each row exactly once to the manifest, kept keys to the key list, and shows
 * them to `onRows` (report collector, progress, metrics). Closing the stream closes the writers,
 * so `pipeline(...)` resolving means every file is complete.
 */
import { Writable } from 'node:stream';
import { throwIfAborted } from '../core/errors.js';
import type { ManifestRow } from '../core/sample.js';
import type { KeyListWriter, ManifestWriter } from '../io/manifest.js';

/**
 * A decided batch — the `ManifestRow[]` a decide stage emits, in input order — with the per-row
 * side data that travels along with it (same length), so that no stage needs a queue beside the
 * stream that relies on batch shapes. Still a plain `ManifestRow[]` to every other reader.
 */
export type DecidedRows = ManifestRow[] & {
  /** Per-row JPEG thumbnails for the report (carried from `EmbeddingBatch.thumbnails`), when decode made them. */
  thumbnails?: (Buffer | undefined)[];
};

/** Options of {@link manifestSink}: the manifest and kept-keys writers (both optional), and callbacks on each written batch and at close. */
export interface ManifestSinkOptions {
  /** Manifest writer (Parquet/Arrow/JSONL file, or JSONL on stdout). Optional. */
  manifest?: ManifestWriter;
  /** kept.txt writer. Optional. */
  kept?: KeyListWriter;
  /** Called with every batch after it was written (with its side data, when it carries any). Must not throw. */
  onRows?: (rows: DecidedRows) => void;
  /** Awaited with every batch after it was written (e.g. re-packing kept samples into shards). */
  afterWrite?: (rows: ManifestRow[]) => Promise<void>;
  /** Awaited once after the writers closed (e.g. closing the shard writer). */
  afterClose?: () => Promise<void>;
  signal?: AbortSignal;
}

/** The stream {@link manifestSink} returns: a Writable with the number of rows written and of kept rows. */
export type ManifestSink = Writable & { readonly rows: number; readonly keptRows: number };

/** The end of a pipeline: writes each decided row exactly once to the manifest and kept keys to the key list; pipeline() resolving means every file is complete. */
export function manifestSink(opts: ManifestSinkOptions): ManifestSink {
  let rows = 0;
  let keptRows = 0;
  const { manifest, kept, onRows, afterWrite, afterClose, signal } = opts;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(batch: DecidedRows, _enc, cb) {
      (async () => {
        throwIfAborted(signal);
        if (manifest) await manifest.write(batch);
        const keys: string[] = [];
        for (const r of batch) if (r.decision === 'keep') keys.push(r.key);
        if (kept && keys.length > 0) await kept.write(keys);
        if (afterWrite) await afterWrite(batch);
        rows += batch.length;
        keptRows += keys.length;
        onRows?.(batch);
      })().then(() => cb(), cb);
    },
    final(cb) {
      (async () => {
        if (manifest) await manifest.close();
        if (kept) await kept.close();
        if (afterClose) await afterClose();
      })().then(() => cb(), cb);
    },
  });
  Object.defineProperties(sink, {
    rows: { get: () => rows },
    keptRows: { get: () => keptRows },
  });
  return sink as ManifestSink;
}
