/**
 * Key lists: a text file with one sample key a line (`keys.txt`), read as a stream of string
 * batches that line up with `.npy` row batches.
 */
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { integerOption, type NumberSpec } from '../core/validate.js';
import { textLineBatches } from './lines.js';
import { openRead } from './storage/index.js';

/** Rows per batch of the row readers (keys, metadata, embeddings): default 8192, 1..2^24. */
export const READ_BATCH_ROWS: NumberSpec = { default: 8192, min: 1, max: 2 ** 24 };

export interface ReadKeysOptions {
  /** Keys per yielded batch. Default 8192; 1 … 2^24. */
  batchRows?: number;
  signal?: AbortSignal;
}


/**
 * Yields the lines of a key file in batches of exactly `batchRows` (the last one shorter).
 * `\n` and `\r\n` line ends; a final newline is optional; a UTF-8 BOM is ignored. Blank lines
 * are errors: a key list must stay row-aligned with its embeddings.
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file does not exist.
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file, context.row) for an empty line.
 * @throws ERR_DBPRUNE_ABORTED when `signal` fires.
 */
export async function* readKeyBatches(path: string, options: ReadKeysOptions = {}): AsyncGenerator<string[]> {
  const batchRows = integerOption(options.batchRows, 'batchRows', READ_BATCH_ROWS);
  const { signal } = options;
  throwIfAborted(signal);
  const stream = await openRead(path, { signal });
  let batch: string[] = [];
  let row = 0;
  try {
    // textLineBatches splits in linear time and bounds a line (a key file with no newline cannot
    // grow memory without end); it drops the BOM, the CR of CRLF and a final empty line.
    for await (const lines of textLineBatches(stream as AsyncIterable<Buffer>, { file: path })) {
      throwIfAborted(signal);
      for (const line of lines) {
        if (line.length === 0) {
          throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${path}: empty key on line ${row + 1}`, { file: path, row });
        }
        batch.push(line);
        row++;
        if (batch.length === batchRows) {
          yield batch;
          batch = [];
          throwIfAborted(signal);
        }
      }
    }
  } finally {
    stream.destroy();
  }
  if (batch.length > 0) yield batch;
}

/**
 * Counts the keys in a key file (lines, not counting a final newline) without keeping them.
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file does not exist.
 */
export async function countKeys(path: string, options: { signal?: AbortSignal } = {}): Promise<number> {
  const stream = await openRead(path, { signal: options.signal });
  let n = 0;
  let lastByte = -1;
  let any = false;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      throwIfAborted(options.signal);
      let i = -1;
      while ((i = chunk.indexOf(10, i + 1)) >= 0) n++;
      if (chunk.length) {
        lastByte = chunk[chunk.length - 1];
        any = true;
      }
    }
  } finally {
    stream.destroy();
  }
  if (any && lastByte !== 10) n++;
  return n;
}

/**
 * Pulls exact-size slices out of an async iterable of arrays of any sizes (e.g. key batches or
 * metadata row groups), so that they can be paired with `.npy` batches.
 */
export class BatchTaker<T> {
  private buf: T[] = [];
  private pos = 0;
  private done = false;
  private readonly it: AsyncIterator<T[]>;

  constructor(source: AsyncIterable<T[]>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Returns the next `n` items, or fewer if the source ends first. */
  async take(n: number): Promise<T[]> {
    const out: T[] = [];
    while (out.length < n) {
      if (this.pos >= this.buf.length) {
        if (this.done) break;
        const r = await this.it.next();
        if (r.done) {
          this.done = true;
          break;
        }
        this.buf = r.value;
        this.pos = 0;
        continue;
      }
      const k = Math.min(n - out.length, this.buf.length - this.pos);
      if (this.pos === 0 && k === this.buf.length && out.length === 0 && k === n) {
        this.pos = k;
        return this.buf; // whole batch, no copy
      }
      for (let i = 0; i < k; i++) out.push(this.buf[this.pos + i]);
      this.pos += k;
    }
    return out;
  }

  /** Stops the underlying source (runs its `finally` blocks). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}
