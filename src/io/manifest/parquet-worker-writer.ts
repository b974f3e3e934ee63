/**
 * The Parquet manifest encoder on a worker thread. The main thread still turns rows into columns
 * and each row group into an Arrow IPC message; the worker turns those into Parquet bytes with
 * parquet-wasm (the same `transformParquetStream`, writer properties and row groups as
 * `ParquetWriter` in parquet-writer.ts, so the file is byte-identical) and hands the bytes back,
 * which the main thread writes to the sink in order. Measured in exact mode (`prune`, 1M rows): the wasm encoder
 * was ~0.7 s of pass 2's main thread while the second core idled.
 *
 * Up to two row groups are in flight (one being encoded, one queued). The worker is started from
 * inline CommonJS code (no separate file to ship or transpile, as src/kernels/ort-worker.ts) and
 * is ended by `close()`, which callers must always reach (writeDecisions closes in `finally`).
 */
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Table, tableToIPC, type RecordBatch } from 'apache-arrow';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { BufferedWriter } from './buffered-writer.js';
import type { ByteSink } from './byte-sink.js';
import { emptyBatch, PLAIN_PARQUET_COLUMNS } from './columns.js';

/** Row groups sent to the worker and not yet taken by its Parquet writer. */
const MAX_IN_FLIGHT = 2;

/** The worker's young generation, MB: its garbage is a few buffers per row group. */
const WORKER_YOUNG_GENERATION_MB = 4;

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const parquet = require(workerData.parquetPath);
const queue = [];
let wakePull;
const post = (m, transfer) => parentPort.postMessage(m, transfer);
parentPort.on('message', (m) => {
  if (m.type === 'batch') queue.push(m.ipc);
  else if (m.type === 'end') queue.push(null);
  const w = wakePull;
  wakePull = undefined;
  if (w) w();
});
const source = new ReadableStream({
  async pull(controller) {
    while (queue.length === 0) await new Promise((resolve) => { wakePull = resolve; });
    const ipc = queue.shift();
    if (ipc === null) return controller.close();
    // Decoded into wasm memory only when the writer wants it: one record batch there at a time.
    const t = parquet.Table.fromIPCStream(ipc);
    const b = t.recordBatch(0);
    t.free();
    controller.enqueue(b);
    post({ type: 'taken' });
  },
}, { highWaterMark: 0 });
// the same properties as parquet-writer.ts (the columns without a dictionary come in workerData)
let builder = new parquet.WriterPropertiesBuilder()
  .setCompression(parquet.Compression.SNAPPY)
  .setMaxRowGroupSize(workerData.rowGroupRows)
  .setCreatedBy('dbprune');
for (const c of workerData.plainColumns) builder = builder.setColumnDictionaryEnabled(c, false);
const props = builder.build();
(async () => {
  const bytes = await parquet.transformParquetStream(source, props);
  const reader = bytes.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const own = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
    const chunk = own ? value : value.slice();
    post({ type: 'bytes', chunk }, [chunk.buffer]);
  }
  post({ type: 'done' });
})().catch((e) => post({ type: 'error', message: String((e && e.stack) || e) }));
`;

/** Worker → main messages. */
type Reply = { type: 'taken' } | { type: 'bytes'; chunk: Uint8Array } | { type: 'done' } | { type: 'error'; message: string };

export class ParquetWorkerWriter extends BufferedWriter {
  private readonly worker: Worker;
  private inFlight = 0;
  private wakeFlush: (() => void) | undefined;
  private finished: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private failure: unknown;
  /** The sink writes of the bytes received so far, in order. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: ByteSink,
    rowGroupRows: number,
  ) {
    super(rowGroupRows);
    const parquetPath = createRequire(import.meta.url).resolve('parquet-wasm');
    // execArgv: [] — plain CommonJS, no loader hooks of the parent needed.
    this.worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: { parquetPath, rowGroupRows, plainColumns: PLAIN_PARQUET_COLUMNS },
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    this.worker.on('message', (m: Reply) => this.onReply(m));
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (!this.done) this.fail(new Error(`parquet worker exited with code ${code}`));
    });
  }

  private onReply(m: Reply): void {
    if (m.type === 'taken') {
      this.inFlight--;
      this.wakeFlushing();
    } else if (m.type === 'bytes') {
      const chunk = m.chunk;
      this.writing = this.writing.then(async () => {
        if (this.failure === undefined) await this.sink.write(chunk);
      });
      this.writing.catch((e: unknown) => this.fail(e));
    } else if (m.type === 'done') {
      this.done = true;
      this.finished?.resolve();
    } else {
      this.fail(new Error(m.message));
    }
  }

  private wakeFlushing(): void {
    const w = this.wakeFlush;
    this.wakeFlush = undefined;
    w?.();
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    this.wakeFlushing();
    this.finished?.reject(e);
  }

  private check(): void {
    const e = this.failure;
    if (e === undefined) return;
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.INTERNAL, `parquet writer failed: ${e instanceof Error ? e.message : inspect(e)}`, {}, { cause: e });
  }

  protected async flush(batch: RecordBatch): Promise<void> {
    this.check();
    const ipc = tableToIPC(new Table([batch]), 'stream');
    const buffer = ipc.byteOffset === 0 && ipc.byteLength === ipc.buffer.byteLength && ipc.buffer instanceof ArrayBuffer ? ipc.buffer : ipc.slice().buffer;
    this.inFlight++;
    this.worker.postMessage({ type: 'batch', ipc: new Uint8Array(buffer) }, [buffer]);
    while (this.inFlight >= MAX_IN_FLIGHT && this.failure === undefined) {
      await new Promise<void>((resolve) => {
        this.wakeFlush = resolve;
      });
    }
    this.check();
  }

  protected async finish(): Promise<void> {
    try {
      // arrow-rs's stream writer needs at least one batch to know the schema: send an empty one
      if (this.rows === 0) await this.flush(emptyBatch());
      this.check();
      const finished = new Promise<void>((resolve, reject) => {
        this.finished = { resolve, reject };
      });
      if (this.done) this.finished?.resolve();
      if (this.failure !== undefined) this.finished?.reject(this.failure);
      this.worker.postMessage({ type: 'end' });
      await finished.catch(() => undefined);
      await this.writing.catch(() => undefined);
      this.check();
      await this.sink.end();
    } finally {
      this.done = true;
      await this.worker.terminate();
    }
  }
}
