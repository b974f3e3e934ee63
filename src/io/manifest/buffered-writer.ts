/** The buffering shared by the Arrow and Parquet writers: rows to columns, a record batch per `rowGroupRows`. */
import type { RecordBatch } from 'apache-arrow';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import type { ManifestRow } from '../../core/sample.js';
import { ManifestColumns } from './columns.js';
import type { ManifestWriter } from './types.js';

/** Common buffering: subclasses implement `flush(batch)` and `finish()`. */
export abstract class BufferedWriter implements ManifestWriter {
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
