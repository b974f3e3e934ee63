/**
 * Manifest sinks: every {@link ManifestRow} written once, as Parquet, Arrow IPC or JSONL, in
 * bounded memory (rows are buffered up to `rowGroupRows`, then flushed as one record batch / row
 * group). Also the kept-key list (`kept.txt`) and DataComp-style uid subset `.npy` writers, and a
 * reader for small manifests.
 *
 * Parquet: parquet-wasm's `transformParquetStream` turns a web ReadableStream of record batches
 * into a ReadableStream of Parquet bytes (arrow-rs's async writer underneath). Each flush converts
 * the buffered rows to an Arrow record batch (built directly from typed arrays), hands it to that
 * stream and waits until the writer has taken it; output bytes are written to the file as they
 * come, with backpressure. With `maxRowGroupSize = rowGroupRows` one flush becomes one row group,
 * so a manifest of any length is one Parquet file with many row groups and memory stays at about
 * one row group.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import {
  AsyncByteQueue,
  Field,
  Float32,
  Int32,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  tableFromIPC,
  tableToIPC,
  type Data,
} from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { DbpruneError, ErrorCodes, checkOption } from '../core/errors.js';
import { statusOfReason, type Decision, type DecisionReason, type DownloadStatus, type ManifestRow } from '../core/sample.js';

/** A manifest row as read back: the row plus its img2dataset `status` column. */
export type ManifestRecord = ManifestRow & { status: DownloadStatus };
import { buildNpyHeader } from './npy.js';
import { outputError } from './output-set.js';
import { isS3Uri, openWrite, type OutputObject } from './storage/index.js';

/** Manifest file formats. */
export type ManifestFormat = 'parquet' | 'arrow' | 'jsonl';

/** A sink for manifest rows. `write` resolves when the rows are buffered or flushed (backpressure). */
export interface ManifestWriter {
  write(rows: readonly ManifestRow[]): Promise<void>;
  /** Flushes, finalises the file and closes it (idempotent). Resolves with the rows written. */
  close(): Promise<{ rows: number }>;
  /** Rows accepted so far. */
  readonly rows: number;
}

export interface ManifestWriterOptions {
  /** Rows buffered before a record batch / row group is flushed. Default 65536; 1 … 2^20. */
  rowGroupRows?: number;
}

/** Column order of every manifest format. */
export const MANIFEST_COLUMNS = [
  'key',
  'shard',
  'url',
  'caption',
  'uid',
  'decision',
  'reason',
  'cluster',
  'distance',
  'duplicate_of',
  'error',
  'status',
] as const;

/** The Arrow schema of a manifest (strings are Utf8; cluster Int32; distance Float32, nullable). */
export const MANIFEST_SCHEMA = new Schema([
  new Field('key', new Utf8(), false),
  new Field('shard', new Utf8(), true),
  new Field('url', new Utf8(), true),
  new Field('caption', new Utf8(), true),
  new Field('uid', new Utf8(), true),
  new Field('decision', new Utf8(), false),
  new Field('reason', new Utf8(), false),
  new Field('cluster', new Int32(), false),
  new Field('distance', new Float32(), true),
  new Field('duplicate_of', new Utf8(), true),
  new Field('error', new Utf8(), true),
  new Field('status', new Utf8(), false),
]);

// ---------------------------------------------------------------------------------------------
// byte sinks with backpressure

interface ByteSink {
  write(chunk: Uint8Array | string): Promise<void>;
  end(): Promise<void>;
}

function writableSink(out: Writable, end: boolean, file?: string): ByteSink {
  let failure: Error | undefined;
  let bytes = 0;
  out.on('error', (e: Error) => {
    failure ??= e;
  });
  const name = file ?? (out === process.stdout ? 'stdout' : 'manifest stream');
  const fail = (e: Error): DbpruneError => outputError(name, e);
  return {
    async write(chunk) {
      if (failure) throw fail(failure);
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            out.off('error', onError);
            resolve();
          };
          const onError = (e: Error): void => {
            out.off('drain', onDrain);
            reject(fail(e));
          };
          out.once('drain', onDrain);
          out.once('error', onError);
        });
      }
    },
    async end() {
      if (failure) throw fail(failure);
      if (!end) return;
      // end()'s callback gets the error of a failed write (ENOSPC, EIO): it must fail the run,
      // whether or not the 'error' event has been emitted yet.
      await new Promise<void>((resolve, reject) => {
        out.end((e?: Error | null) => (e ? reject(fail(e)) : resolve()));
      });
      if (failure) throw fail(failure);
      if (file !== undefined && !isS3Uri(file)) {
        // What is on disk, not what was handed over: a short write fails here (an s3:// upload
        // checks its parts itself).
        let size: number;
        try {
          size = (await stat(file)).size;
        } catch (e) {
          throw fail(e as Error);
        }
        if (size !== bytes) throw outputError(file, new Error(`${size} of ${bytes} bytes reached the disk`));
      }
    },
  };
}

/**
 * A sink into a local file (written in place: callers that want atomic replacement pass a temporary
 * path) or an s3:// object (src/io/storage: a multipart upload that appears under `path` only when
 * `end()` commits it; a failed write aborts it, and a run that fails before `end()` leaves it to
 * `abortPendingWrites`).
 */
function fileSink(path: string): ByteSink {
  if (!isS3Uri(path)) return writableSink(createWriteStream(path, { highWaterMark: 1 << 20 }), true, path);
  const opening = openWrite(path);
  opening.catch(() => undefined); // surfaced by the first write or end
  let sink: ByteSink | undefined;
  const ready = async (): Promise<{ out: OutputObject; sink: ByteSink }> => {
    const out = await opening;
    sink ??= writableSink(out.stream, true, path);
    return { out, sink };
  };
  const failed = async (out: OutputObject, e: unknown): Promise<never> => {
    await out.abort();
    throw e;
  };
  return {
    async write(chunk) {
      const { out, sink } = await ready();
      await sink.write(chunk).catch((e: unknown) => failed(out, e));
    },
    async end() {
      const { out, sink } = await ready();
      await sink.end().catch((e: unknown) => failed(out, e));
      await out.commit().catch((e: unknown) => failed(out, e));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// columnar buffers

class StringColumn {
  private bytes: Buffer = Buffer.allocUnsafe(1 << 16);
  private len = 0;
  private offsets: Int32Array;
  private validity: Uint8Array;
  private nulls = 0;
  private n = 0;

  constructor(private readonly capacity: number) {
    this.offsets = new Int32Array(capacity + 1);
    this.validity = new Uint8Array((capacity + 7) >> 3);
  }

  push(s: string | null | undefined): void {
    const i = this.n++;
    if (s === null || s === undefined) {
      this.nulls++;
    } else {
      this.validity[i >> 3] |= 1 << (i & 7);
      if (s.length > 0) {
        const worst = s.length * 3;
        if (this.len + worst > this.bytes.length) {
          let cap = this.bytes.length * 2;
          while (cap < this.len + worst) cap *= 2;
          const nb = Buffer.allocUnsafe(cap);
          this.bytes.copy(nb, 0, 0, this.len);
          this.bytes = nb;
        }
        this.len += this.bytes.write(s, this.len, 'utf8');
      }
    }
    this.offsets[i + 1] = this.len;
  }

  finish(): Data<Utf8> {
    const n = this.n;
    return makeData({
      type: new Utf8(),
      length: n,
      nullCount: this.nulls,
      nullBitmap: this.nulls > 0 ? this.validity.slice(0, (n + 7) >> 3) : null,
      valueOffsets: this.offsets.slice(0, n + 1),
      data: new Uint8Array(this.bytes.subarray(0, this.len)),
    });
  }

  reset(): void {
    this.len = 0;
    this.nulls = 0;
    this.n = 0;
    this.validity.fill(0);
  }
}

/** Buffers up to `capacity` manifest rows column by column and builds Arrow record batches. */
class ManifestColumns {
  private readonly strings: Record<string, StringColumn>;
  private readonly cluster: Int32Array;
  private readonly distance: Float32Array;
  private readonly distValid: Uint8Array;
  private distNulls = 0;
  n = 0;

  constructor(readonly capacity: number) {
    this.strings = {};
    for (const c of ['key', 'shard', 'url', 'caption', 'uid', 'decision', 'reason', 'duplicate_of', 'error', 'status']) {
      this.strings[c] = new StringColumn(capacity);
    }
    this.cluster = new Int32Array(capacity);
    this.distance = new Float32Array(capacity);
    this.distValid = new Uint8Array((capacity + 7) >> 3);
  }

  push(r: ManifestRow): void {
    const s = this.strings;
    const i = this.n++;
    s.key.push(r.key);
    s.shard.push(r.shard);
    s.url.push(r.url);
    s.caption.push(r.caption);
    s.uid.push(r.uid);
    s.decision.push(r.decision);
    s.reason.push(r.reason);
    s.duplicate_of.push(r.duplicate_of);
    s.error.push(r.error);
    s.status.push(statusOfReason(r.reason));
    this.cluster[i] = r.cluster;
    const d = r.distance;
    if (d === null || d === undefined || Number.isNaN(d)) {
      this.distNulls++;
      this.distance[i] = 0;
    } else {
      this.distance[i] = d;
      this.distValid[i >> 3] |= 1 << (i & 7);
    }
  }

  get full(): boolean {
    return this.n >= this.capacity;
  }

  /** Builds a record batch of the buffered rows and empties the buffer. */
  take(): RecordBatch {
    const n = this.n;
    const s = this.strings;
    const children: Data[] = [
      s.key.finish(),
      s.shard.finish(),
      s.url.finish(),
      s.caption.finish(),
      s.uid.finish(),
      s.decision.finish(),
      s.reason.finish(),
      makeData({ type: new Int32(), length: n, data: this.cluster.slice(0, n) }),
      makeData({
        type: new Float32(),
        length: n,
        nullCount: this.distNulls,
        nullBitmap: this.distNulls > 0 ? this.distValid.slice(0, (n + 7) >> 3) : null,
        data: this.distance.slice(0, n),
      }),
      s.duplicate_of.finish(),
      s.error.finish(),
      s.status.finish(),
    ];
    const data = makeData({ type: new Struct(MANIFEST_SCHEMA.fields), length: n, nullCount: 0, children });
    for (const c of Object.values(s)) c.reset();
    this.distValid.fill(0);
    this.distNulls = 0;
    this.n = 0;
    return new RecordBatch(MANIFEST_SCHEMA, data);
  }
}

function checkRowGroupRows(options: ManifestWriterOptions): number {
  const n = options.rowGroupRows ?? 65536;
  checkOption(Number.isInteger(n) && n >= 1 && n <= 2 ** 20, 'rowGroupRows', 'an integer in [1, 2^20]', n);
  return n;
}

/** Common buffering: subclasses implement `flush(batch)` and `finish()`. */
abstract class BufferedWriter implements ManifestWriter {
  private readonly cols: ManifestColumns;
  private count = 0;
  private closing: Promise<{ rows: number }> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(rowGroupRows: number) {
    this.cols = new ManifestColumns(rowGroupRows);
  }

  get rows(): number {
    return this.count;
  }

  protected abstract flush(batch: RecordBatch): Promise<void>;
  protected abstract finish(): Promise<void>;

  write(rows: readonly ManifestRow[]): Promise<void> {
    if (this.closing) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'manifest write after close'));
    // serialise concurrent write() calls
    const p = this.chain.then(async () => {
      for (const r of rows) {
        this.cols.push(r);
        this.count++;
        if (this.cols.full) await this.flush(this.cols.take());
      }
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): Promise<{ rows: number }> {
    this.closing ??= this.chain.then(async () => {
      if (this.cols.n > 0) await this.flush(this.cols.take());
      await this.finish();
      return { rows: this.count };
    });
    return this.closing;
  }
}

// ---------------------------------------------------------------------------------------------
// JSONL

/** A JSON string value, or `null` for null/undefined. */
const jsonString = (v: string | null | undefined): string => (v === null || v === undefined ? 'null' : JSON.stringify(v));

/**
 * The JSON object of one manifest row, keys in {@link MANIFEST_COLUMNS} order. Built as text:
 * the same bytes as `JSON.stringify({ key, shard, … })` (each value goes through JSON.stringify),
 * without an object per row; JSON.stringify of the whole object was the main thread's largest
 * cost of `dbprune run > manifest.jsonl` (issue 16).
 */
export function jsonLine(r: ManifestRow): string {
  const d = r.distance;
  const distance = d === null || d === undefined || !Number.isFinite(d) ? 'null' : JSON.stringify(d);
  return (
    `{"key":${JSON.stringify(r.key)},"shard":${jsonString(r.shard)},"url":${jsonString(r.url)},"caption":${jsonString(r.caption)},` +
    `"uid":${jsonString(r.uid)},"decision":${JSON.stringify(r.decision)},"reason":${JSON.stringify(r.reason)},"cluster":${JSON.stringify(r.cluster)},` +
    `"distance":${distance},"duplicate_of":${jsonString(r.duplicate_of)},"error":${jsonString(r.error)},"status":${JSON.stringify(statusOfReason(r.reason))}}`
  );
}

/**
 * JSONL text is handed to the byte sink every this many rows at most (≈ 2 MB at ~250 B a row): a
 * 65,536-row flush held ~17 MB of line strings, their join and its UTF-8 copy at once (peak RSS of
 * `dbprune run > manifest.jsonl`); the bytes written are the same.
 */
const JSONL_FLUSH_ROWS = 8192;

class JsonlWriter implements ManifestWriter {
  private count = 0;
  private chain: Promise<void> = Promise.resolve();
  private closing: Promise<{ rows: number }> | undefined;
  private pending: string[] = [];
  private pendingRows = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly flushRows: number,
  ) {}

  get rows(): number {
    return this.count;
  }

  write(rows: readonly ManifestRow[]): Promise<void> {
    if (this.closing) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'manifest write after close'));
    const p = this.chain.then(async () => {
      const lines = new Array<string>(rows.length + 1);
      for (let i = 0; i < rows.length; i++) lines[i] = jsonLine(rows[i]);
      lines[rows.length] = '';
      const text = lines.join('\n');
      this.count += rows.length;
      this.pending.push(text);
      this.pendingRows += rows.length;
      if (this.pendingRows >= this.flushRows) await this.flush();
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingRows = 0;
    await this.sink.write(text);
  }

  close(): Promise<{ rows: number }> {
    this.closing ??= this.chain.then(async () => {
      await this.flush();
      await this.sink.end();
      return { rows: this.count };
    });
    return this.closing;
  }
}

// ---------------------------------------------------------------------------------------------
// Arrow IPC

/** An arrow byte queue that hands each written chunk to us instead of queueing it. */
class CollectingQueue extends AsyncByteQueue<Uint8Array> {
  chunks: Uint8Array[] = [];
  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.chunks.push(value);
  }
}

class ArrowWriter extends BufferedWriter {
  private readonly queue = new CollectingQueue();
  private readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  private wroteAny = false;

  constructor(
    private readonly sink: ByteSink,
    rowGroupRows: number,
    stream: boolean,
  ) {
    super(rowGroupRows);
    this.writer = stream ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    this.writer.reset(this.queue, MANIFEST_SCHEMA);
  }

  private async drain(): Promise<void> {
    const chunks = this.queue.chunks;
    this.queue.chunks = [];
    for (const c of chunks) await this.sink.write(c);
  }

  protected async flush(batch: RecordBatch): Promise<void> {
    this.writer.write(batch);
    this.wroteAny = true;
    await this.drain();
  }

  protected async finish(): Promise<void> {
    if (!this.wroteAny) this.writer.write(emptyBatch());
    this.writer.finish();
    await this.drain();
    await this.sink.end();
  }
}

function emptyBatch(): RecordBatch {
  return new ManifestColumns(1).take();
}

// ---------------------------------------------------------------------------------------------
// Parquet

class ParquetWriter extends BufferedWriter {
  private handoff: { batch: parquet.RecordBatch; taken: () => void; fail: (e: unknown) => void } | undefined;
  private waitingPull: (() => void) | undefined;
  private ended = false;
  private readonly pump: Promise<void>;
  private pumpError: unknown;

  constructor(
    private readonly sink: ByteSink,
    rowGroupRows: number,
  ) {
    super(rowGroupRows);
    const source = new ReadableStream<parquet.RecordBatch>(
      {
        pull: async (controller) => {
          for (;;) {
            if (this.handoff) {
              const h = this.handoff;
              this.handoff = undefined;
              controller.enqueue(h.batch);
              h.taken();
              return;
            }
            if (this.ended) {
              controller.close();
              return;
            }
            await new Promise<void>((resolve) => {
              this.waitingPull = resolve;
            });
          }
        },
      },
      { highWaterMark: 0 },
    );
    const props = new parquet.WriterPropertiesBuilder()
      .setCompression(parquet.Compression.SNAPPY)
      .setMaxRowGroupSize(rowGroupRows)
      .setCreatedBy('dbprune')
      .build();
    this.pump = (async () => {
      const bytes = (await parquet.transformParquetStream(source, props)) as ReadableStream<Uint8Array>;
      const reader = bytes.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await this.sink.write(value);
      }
    })();
    this.pump.catch((e: unknown) => {
      this.pumpError = e;
      const h = this.handoff;
      this.handoff = undefined;
      h?.batch.free();
      h?.fail(e);
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waitingPull;
    this.waitingPull = undefined;
    w?.();
  }

  private check(): void {
    if (this.pumpError !== undefined) {
      const e = this.pumpError;
      if (e instanceof DbpruneError) throw e;
      throw new DbpruneError(ErrorCodes.INTERNAL, `parquet writer failed: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
    }
  }

  protected async flush(batch: RecordBatch): Promise<void> {
    this.check();
    const ipc = tableToIPC(new Table([batch]), 'stream');
    const wt = parquet.Table.fromIPCStream(ipc);
    const wb = wt.recordBatch(0);
    wt.free();
    if (!wb) throw new DbpruneError(ErrorCodes.INTERNAL, 'parquet-wasm lost a record batch');
    // wait until the parquet writer has taken the batch (or has died: then fail, never hang)
    await new Promise<void>((resolve, reject) => {
      this.handoff = { batch: wb, taken: resolve, fail: reject };
      this.wake();
    }).catch(() => undefined);
    this.check();
  }

  protected async finish(): Promise<void> {
    // arrow-rs's stream writer needs at least one batch to know the schema: send an empty one
    if (this.rows === 0) await this.flush(emptyBatch());
    this.ended = true;
    this.wake();
    try {
      await this.pump;
    } catch {
      this.check();
    }
    this.check();
    await this.sink.end();
  }
}

// ---------------------------------------------------------------------------------------------
// public factories

function checkFormat(format: string, allowed: readonly string[]): void {
  checkOption(allowed.includes(format), 'format', `one of ${allowed.join(', ')}`, format);
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
 * Options: `rowGroupRows` (default 65536, 1 … 2^20).
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for an unknown format or bad option.
 * @throws ERR_DBPRUNE_OUTPUT (from write/close, context.file) when the file cannot be written or
 *   fewer bytes reached the disk than were written (disk full).
 */
export function createManifestWriter(path: string, format: ManifestFormat, options: ManifestWriterOptions = {}): ManifestWriter {
  checkFormat(format, ['parquet', 'arrow', 'jsonl']);
  const rowGroupRows = checkRowGroupRows(options);
  const sink = fileSink(path);
  if (format === 'jsonl') return new JsonlWriter(sink, Math.min(rowGroupRows, JSONL_FLUSH_ROWS));
  if (format === 'arrow') return new ArrowWriter(sink, rowGroupRows, false);
  return new ParquetWriter(sink, rowGroupRows);
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
  checkFormat(format, ['parquet', 'arrow', 'jsonl']);
  const rowGroupRows = checkRowGroupRows(options);
  const isStdio = out === process.stdout || out === process.stderr;
  const sink = writableSink(out, (options.end ?? true) && !isStdio);
  if (format === 'jsonl') return new JsonlWriter(sink, Math.min(rowGroupRows, JSONL_FLUSH_ROWS));
  if (format === 'arrow') return new ArrowWriter(sink, rowGroupRows, true);
  return new ParquetWriter(sink, rowGroupRows);
}

/** Picks the manifest format from a file extension (.parquet, .arrow/.feather/.ipc, .jsonl/.ndjson/.json). */
export function manifestFormatFromPath(path: string): ManifestFormat | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.parquet')) return 'parquet';
  if (p.endsWith('.arrow') || p.endsWith('.feather') || p.endsWith('.ipc') || p.endsWith('.arrows')) return 'arrow';
  if (p.endsWith('.jsonl') || p.endsWith('.ndjson') || p.endsWith('.json')) return 'jsonl';
  return undefined;
}

/** A sink for a list of strings (kept keys, kept uids). */
export interface KeyListWriter {
  write(keys: readonly string[]): Promise<void>;
  /** Finalises and closes the file (idempotent); `rows` = entries written. */
  close(): Promise<{ rows: number }>;
  readonly rows: number;
}

/**
 * Writes keys one a line (kept.txt, for webdataset filtering). Pass the keys of kept samples;
 * `write` resolves once the text is handed to the file (backpressure).
 * @throws ERR_DBPRUNE_OUTPUT (from write/close, context.file) when the file cannot be written or
 *   fewer bytes reached the disk than were written (disk full).
 */
export function createKeptKeysWriter(path: string): KeyListWriter {
  const sink = fileSink(path);
  let count = 0;
  let chain: Promise<void> = Promise.resolve();
  let closing: Promise<{ rows: number }> | undefined;
  return {
    get rows() {
      return count;
    },
    write(keys) {
      if (closing) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'kept-keys write after close', { file: path }));
      const p = chain.then(async () => {
        if (keys.length === 0) return;
        count += keys.length;
        await sink.write(keys.join('\n') + '\n');
      });
      chain = p.catch(() => undefined);
      return p;
    },
    close() {
      closing ??= chain.then(async () => {
        await sink.end();
        return { rows: count };
      });
      return closing;
    },
  };
}

const UID_RE = /^[0-9a-fA-F]{32}$/;

/** True for a DataComp uid: 32 hex digits (a 128-bit hash). */
export function isDataCompUid(s: string | null | undefined): s is string {
  return typeof s === 'string' && UID_RE.test(s);
}

/**
 * Writes uids (pass those of kept samples) as a DataComp subset file: a `.npy` structured array of dtype
 * `numpy.dtype("u8,u8")` (fields f0, f1 = the first and last 16 hex digits of the uid), shape
 * `(n,)`, sorted lexicographically and without duplicates, as DataComp's resharder expects. Holds
 * 16 bytes per kept uid until `close`.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file, context.uid) from `write` for a uid that is not
 *   32 hex digits.
 */
export function createUidSubsetWriter(path: string): KeyListWriter {
  let words = new Uint32Array(4 * 1024);
  let n = 0;
  let closing: Promise<{ rows: number }> | undefined;
  return {
    get rows() {
      return n;
    },
    async write(uids) {
      if (closing) throw new DbpruneError(ErrorCodes.INTERNAL, 'uid subset write after close', { file: path });
      for (const u of uids) {
        if (!isDataCompUid(u)) {
          throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `uid ${JSON.stringify(u)} is not 32 hex digits (DataComp subset files need 128-bit uids)`, {
            file: path,
            uid: u,
          });
        }
        if (4 * (n + 1) > words.length) {
          const nw = new Uint32Array(words.length * 2);
          nw.set(words);
          words = nw;
        }
        const o = 4 * n++;
        words[o] = parseInt(u.slice(0, 8), 16);
        words[o + 1] = parseInt(u.slice(8, 16), 16);
        words[o + 2] = parseInt(u.slice(16, 24), 16);
        words[o + 3] = parseInt(u.slice(24, 32), 16);
      }
    },
    close() {
      closing ??= (async () => {
        const idx = new Uint32Array(n);
        for (let i = 0; i < n; i++) idx[i] = i;
        idx.sort((a, b) => {
          const oa = 4 * a;
          const ob = 4 * b;
          for (let k = 0; k < 4; k++) {
            const d = words[oa + k] - words[ob + k];
            if (d !== 0) return d;
          }
          return 0;
        });
        // little-endian u64 pairs: f0 = words[0..1] (hi, lo), f1 = words[2..3]
        const out = new Uint32Array(4 * n);
        let m = 0;
        for (let j = 0; j < n; j++) {
          const o = 4 * idx[j];
          if (m > 0) {
            const p = 4 * (m - 1);
            if (out[p + 1] === words[o] && out[p] === words[o + 1] && out[p + 3] === words[o + 2] && out[p + 2] === words[o + 3]) continue;
          }
          const q = 4 * m++;
          out[q] = words[o + 1];
          out[q + 1] = words[o];
          out[q + 2] = words[o + 3];
          out[q + 3] = words[o + 2];
        }
        const header = buildNpyHeader("[('f0', '<u8'), ('f1', '<u8')]", [m]);
        const sink = fileSink(path);
        await sink.write(header);
        await sink.write(new Uint8Array(out.buffer, 0, 16 * m));
        await sink.end();
        n = m;
        return { rows: m };
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// reading (small manifests: tests, report)

function rowsFromArrow(table: Table): ManifestRecord[] {
  const cols = new Map<string, { get(i: number): unknown } | null>();
  for (const c of MANIFEST_COLUMNS) cols.set(c, table.getChild(c));
  const get = (c: string, i: number): unknown => cols.get(c)?.get(i) ?? null;
  const str = (c: string, i: number): string | null => {
    const v = get(c, i);
    return v === null ? null : String(v);
  };
  const out: ManifestRecord[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const dist = get('distance', i);
    out.push({
      key: String(get('key', i)),
      shard: str('shard', i),
      url: str('url', i),
      caption: str('caption', i),
      uid: str('uid', i),
      decision: String(get('decision', i)) as Decision,
      reason: String(get('reason', i)) as DecisionReason,
      cluster: Number(get('cluster', i) ?? -1),
      distance: dist === null ? null : Number(dist),
      duplicate_of: str('duplicate_of', i),
      error: str('error', i),
      status: String(get('status', i)) as DownloadStatus,
    });
  }
  return out;
}

/**
 * Reads a whole manifest written by {@link createManifestWriter} (format from the extension;
 * `.arrow` accepts the IPC file and stream formats). For tests and reports: loads everything.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file) for an unknown extension or unreadable file.
 */
export function readManifest(path: string): ManifestRecord[] {
  const format = manifestFormatFromPath(path);
  if (!format) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: unknown manifest extension`, { file: path });
  try {
    const bytes = readFileSync(path);
    if (format === 'jsonl') {
      const out: ManifestRecord[] = [];
      for (const line of bytes.toString('utf8').split('\n')) {
        if (line.trim()) out.push(JSON.parse(line) as ManifestRecord);
      }
      return out;
    }
    if (format === 'arrow') return rowsFromArrow(tableFromIPC(bytes));
    const wt = parquet.readParquet(bytes);
    return rowsFromArrow(tableFromIPC(wt.intoIPCStream()));
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: cannot read manifest (${(e as Error).message})`, { file: path }, { cause: e });
  }
}
