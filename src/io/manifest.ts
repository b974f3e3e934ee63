/**
 * Manifest sinks: every manifest row (`ManifestRow`) written once, as Parquet, Arrow IPC or JSONL, in
 * bounded memory (rows are buffered up to `rowGroupRows`, then flushed as one record batch / row
 * group). Also the kept-key list (`kept.txt`) and DataComp-style uid subset `.npy` writers, and a
 * reader for small manifests. The parts live in src/io/manifest/; this module is their one entry.
 *
 * Parquet: parquet-wasm's `transformParquetStream` turns a web ReadableStream of record batches
 * into a ReadableStream of Parquet bytes (arrow-rs's async writer underneath). Each flush converts
 * the buffered rows to an Arrow record batch (built directly from typed arrays), hands it to that
 * stream and waits until the writer has taken it; output bytes are written to the file as they
 * come, with backpressure. With `maxRowGroupSize = rowGroupRows` one flush becomes one row group,
 * so a manifest of any length is one Parquet file with many row groups and memory stays at about
 * one row group.
 */
import type { Writable } from 'node:stream';
import { booleanOption, choiceOption, integerOption } from '../core/validate.js';
import { ArrowWriter } from './manifest/arrow-writer.js';
import { fileSink, writableSink, type ByteSink } from './manifest/byte-sink.js';
import { JSONL_FLUSH_ROWS, JsonlWriter } from './manifest/jsonl-writer.js';
import { ParquetWriter } from './manifest/parquet-writer.js';
import { ParquetWorkerWriter } from './manifest/parquet-worker-writer.js';
import { MANIFEST_FORMATS, type ManifestFormat, type ManifestWriter, type ManifestWriterOptions } from './manifest/types.js';

export { MANIFEST_COLUMNS, MANIFEST_FORMATS, OUTPUT_ROW_GROUP_ROWS, manifestFormatFromPath } from './manifest/types.js';
export type { ManifestFormat, ManifestRecord, ManifestWriter, ManifestWriterOptions } from './manifest/types.js';
export { MANIFEST_SCHEMA } from './manifest/columns.js';
export { jsonLine } from './manifest/jsonl-writer.js';
export { createKeptKeysWriter, createUidSubsetWriter, isDataCompUid, type KeyListWriter } from './manifest/key-lists.js';
export { readManifest } from './manifest/read.js';

function rowGroupRowsOption(options: ManifestWriterOptions): number {
  return integerOption(options.rowGroupRows, 'rowGroupRows', { default: 65536, min: 1, max: 2 ** 20 });
}

/** The encoder of `format` over `sink`; `arrowStream`: the Arrow IPC stream format (pipes) rather than the file format. */
function encoder(format: ManifestFormat, sink: ByteSink, rowGroupRows: number, arrowStream: boolean, onWorker = false): ManifestWriter {
  if (format === 'jsonl') return new JsonlWriter(sink, Math.min(rowGroupRows, JSONL_FLUSH_ROWS));
  if (format === 'arrow') return new ArrowWriter(sink, rowGroupRows, arrowStream);
  return onWorker ? new ParquetWorkerWriter(sink, rowGroupRows) : new ParquetWriter(sink, rowGroupRows);
}

/**
 * Creates (truncates) a manifest file and returns its writer. Columns, in order: key, shard, url,
 * caption, uid, decision, reason (strings), cluster (int32), distance (float32, null when unknown),
 * duplicate_of, error (strings, nullable).
 *
 * - `parquet`: one file, a row group per `rowGroupRows` rows, Snappy-compressed (parquet-wasm).
 * - `arrow`: Arrow IPC *file* format (`.arrow`/Feather v2), a record batch per `rowGroupRows` rows.
 * - `jsonl`: one JSON object per line, keys in column order.
 *
 * Memory stays at about `rowGroupRows` rows whatever the manifest length.
 * Options: `rowGroupRows` (default 65536, 1 … 2^20); `encodeOnWorker` (Parquet: encode on a worker
 * thread, same bytes; the writer must then always be closed).
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for an unknown format or bad option.
 * @throws ERR_DBPRUNE_OUTPUT (from write/close, context.file) when the file cannot be written or
 *   fewer bytes reached the disk than were written (disk full).
 */
export function createManifestWriter(path: string, format: ManifestFormat, options: ManifestWriterOptions = {}): ManifestWriter {
  const checked = choiceOption(format, 'format', MANIFEST_FORMATS);
  const rowGroupRows = rowGroupRowsOption(options);
  const onWorker = booleanOption(options.encodeOnWorker, 'encodeOnWorker', false);
  return encoder(checked, fileSink(path), rowGroupRows, false, onWorker);
}

/**
 * Writes a manifest to a Node Writable (e.g. `process.stdout` when piping). `jsonl` writes lines,
 * `arrow` the Arrow IPC *stream* format (read with `pyarrow.ipc.open_stream`), `parquet` a
 * Parquet file (written front to back, so a pipe works).
 * Options: `end` (default true; never ends `process.stdout`/`process.stderr`), `rowGroupRows`.
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for an unknown format.
 */
export function writeManifestStream(format: ManifestFormat, out: Writable, options: ManifestWriterOptions & { end?: boolean } = {}): ManifestWriter {
  const checked = choiceOption(format, 'format', MANIFEST_FORMATS);
  const rowGroupRows = rowGroupRowsOption(options);
  const isStdio = out === process.stdout || out === process.stderr;
  return encoder(checked, writableSink(out, (options.end ?? true) && !isStdio), rowGroupRows, true);
}

