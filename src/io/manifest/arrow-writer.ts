/** The Arrow IPC manifest encoder: the IPC file format (`.arrow`, Feather v2) or, to a pipe, the stream format. */
import { AsyncByteQueue, RecordBatchFileWriter, RecordBatchStreamWriter, type RecordBatch } from 'apache-arrow';
import { BufferedWriter } from './buffered-writer.js';
import type { ByteSink } from './byte-sink.js';
import { MANIFEST_SCHEMA, emptyBatch } from './columns.js';

/** An arrow byte queue that hands each written chunk to us instead of queueing it. */
class CollectingQueue extends AsyncByteQueue<Uint8Array> {
  chunks: Uint8Array[] = [];
  override write(value: Uint8Array): void {
    if (value.byteLength > 0) this.chunks.push(value);
  }
}

export class ArrowWriter extends BufferedWriter {
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
