/**
 * The Parquet manifest encoder. parquet-wasm's `transformParquetStream` turns a web ReadableStream
 * of record batches into a ReadableStream of Parquet bytes (arrow-rs's async writer underneath).
 * Each flush converts the buffered rows to an Arrow record batch, hands it to that stream and waits
 * until the writer has taken it; output bytes are written as they come, with backpressure. With
 * `maxRowGroupSize = rowGroupRows` one flush becomes one row group.
 */
import { inspect } from 'node:util';
import { Table, tableToIPC, type RecordBatch } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { BufferedWriter } from './buffered-writer.js';
import type { ByteSink } from './byte-sink.js';
import { emptyBatch, PLAIN_PARQUET_COLUMNS } from './columns.js';

export class ParquetWriter extends BufferedWriter {
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
    let builder = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).setMaxRowGroupSize(rowGroupRows).setCreatedBy('dbprune');
    for (const c of PLAIN_PARQUET_COLUMNS) builder = builder.setColumnDictionaryEnabled(c, false);
    const props = builder.build();
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
      throw new DbpruneError(ErrorCodes.INTERNAL, `parquet writer failed: ${e instanceof Error ? e.message : inspect(e)}`, {}, { cause: e });
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
