/** Reading `.npy` rows in chunks, as float32, in bounded memory. */
import { DbpruneError, ErrorCodes, throwIfAborted } from '../../core/errors.js';
import { integerOption } from '../../core/validate.js';
import type { RandomAccessReader } from '../storage/index.js';
import { toFloat32 } from './float16.js';
import { formatError, openForRead, readHeaderFrom, readNpyHeader } from './header.js';

/** One chunk of rows from {@link readNpyRows}. */
export interface NpyRowBatch {
  /** Index of the first row in the file. */
  start: number;
  rows: number;
  /**
   * `rows × cols` float32 values, row-major. Freshly allocated (the consumer may keep it), unless
   * the reader was given a `pool`: then it may be a recycled buffer, which the consumer hands back
   * with `pool.release(data)` once it no longer reads it.
   */
  data: Float32Array;
}

/**
 * Recycles equal-sized Float32Arrays between a reader and a consumer that knows when it is done
 * with a batch, so a long pass keeps a few buffers instead of leaving one per batch to the GC
 * (at 4096 × 512 floats, 8 MB each). Holds at most `maxFree` idle buffers (default 4, 1..64).
 *
 * With `maxLive` (1..4096; default unbounded) it also bounds the buffers handed out and not yet
 * released: {@link acquireWhenFree} waits while `maxLive` are out, so a reader cannot run further
 * ahead of its consumer than that (the streaming path's peak RSS, issue 16). Every buffer acquired
 * must then be released exactly once, and {@link close} ends all waiting (a torn-down pipeline).
 */
export class Float32ArrayPool {
  private readonly free: Float32Array[] = [];
  private readonly waiting = new Set<() => void>();
  private out = 0;
  private closed = false;
  private readonly maxLive: number;
  constructor(
    private readonly maxFree = 4,
    maxLive?: number,
  ) {
    integerOption(maxFree, 'maxFree', { min: 1, max: 64 });
    this.maxLive = maxLive === undefined ? Infinity : integerOption(maxLive, 'maxLive', { min: 1, max: 4096 });
  }

  /** Buffers acquired and not yet released. */
  get live(): number {
    return this.out;
  }

  /** An idle buffer of exactly `length` floats (contents unspecified), or a new one. Never waits. */
  acquire(length: number): Float32Array {
    this.out++;
    const i = this.free.findIndex((a) => a.length === length);
    return i >= 0 ? this.free.splice(i, 1)[0] : new Float32Array(length);
  }

  /**
   * As {@link acquire}, after waiting while `maxLive` buffers are out (no wait without `maxLive`
   * or once the pool is closed). Throws ERR_DBPRUNE_ABORTED when `signal` fires.
   */
  async acquireWhenFree(length: number, signal?: AbortSignal): Promise<Float32Array> {
    while (this.out >= this.maxLive && !this.closed) {
      throwIfAborted(signal);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiting.delete(wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.waiting.add(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    throwIfAborted(signal);
    return this.acquire(length);
  }

  /**
   * Hands a buffer back; the caller must not touch it afterwards. A full pool makes room by
   * dropping an idle buffer of another length (a file's shorter last batch), else drops `a`.
   */
  release(a: Float32Array): void {
    if (this.out > 0) this.out--;
    this.wakeOne();
    if (a.byteOffset !== 0 || a.length * 4 !== a.buffer.byteLength || a.length === 0) return;
    if (this.free.length >= this.maxFree) {
      const other = this.free.findIndex((b) => b.length !== a.length);
      if (other < 0) return;
      this.free.splice(other, 1);
    }
    this.free.push(a);
  }

  /** Ends every wait in {@link acquireWhenFree}, now and later (idempotent). */
  close(): void {
    this.closed = true;
    for (const wake of [...this.waiting]) wake();
  }

  private wakeOne(): void {
    const first = this.waiting.values().next();
    if (!first.done) first.value();
  }
}

/** Options of {@link readNpyRows}: rows per batch (default 8192; 1 … 2^24), an optional buffer pool and a signal. */
export interface ReadNpyRowsOptions {
  /** Rows per yielded batch. Default 8192; 1 … 2^24. */
  batchRows?: number;
  /**
   * Recycle batch buffers (see {@link Float32ArrayPool}); the consumer releases each batch's `data`
   * exactly once. A pool with `maxLive` also bounds how far the reader runs ahead.
   */
  pool?: Float32ArrayPool;
  signal?: AbortSignal;
}

/** Reads `buf.length` bytes at `pos` or until EOF; returns the bytes read. */
function readFully(fh: RandomAccessReader, buf: Uint8Array, pos: number, signal?: AbortSignal): Promise<number> {
  return fh.read(buf, pos, signal);
}

/**
 * Streams the rows of a C-ordered `.npy` file as float32 batches (float16/float64/int inputs are
 * converted). Reads one batch ahead, so at most two batches are in memory at a time (plus those the
 * consumer keeps). With a `pool`, batch buffers come from it, and a pool with `maxLive` makes the
 * read-ahead wait until the consumer has released a buffer.
 *
 * Options: `batchRows` (default 8192, 1 … 2^24), `pool`, `signal`.
 *
 * @throws ERR_DBPRUNE_NPY_FORMAT (context.file) for Fortran order or an unsupported dtype/header.
 * @throws ERR_DBPRUNE_NPY_TRUNCATED (context.file, context.row = first missing row) when the file
 *   ends before the rows its header promises — after yielding every complete row it does have.
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file does not exist.
 * @throws ERR_DBPRUNE_ABORTED when `signal` fires.
 */
export async function* readNpyRows(path: string, options: ReadNpyRowsOptions = {}): AsyncGenerator<NpyRowBatch> {
  const batchRows = integerOption(options.batchRows, 'batchRows', { default: 8192, min: 1, max: 2 ** 24 });
  const { signal } = options;
  throwIfAborted(signal);
  const fh = await openForRead(path, signal);
  try {
    const h = await readHeaderFrom(fh, path);
    if (h.fortranOrder && h.shape.length > 1) throw formatError(path, 'Fortran-ordered arrays are not supported (save with np.ascontiguousarray)');
    const { rows: total, cols, rowBytes } = h;
    if (rowBytes === 0) {
      // Zero-width rows: nothing to read; emit empty rows in batches.
      for (let start = 0; start < total; start += batchRows) {
        yield { start, rows: Math.min(batchRows, total - start), data: new Float32Array(0) };
      }
      return;
    }

    type Chunk = { start: number; wanted: number; rows: number; data: Float32Array };
    const readChunk = async (start: number): Promise<Chunk> => {
      const wanted = Math.min(batchRows, total - start);
      const bytes = wanted * rowBytes;
      if (h.dtype === 'float32') {
        const data = options.pool ? await options.pool.acquireWhenFree(wanted * cols, signal) : new Float32Array(wanted * cols);
        const got = await readFully(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h.headerBytes + start * rowBytes, signal);
        const rows = Math.floor(got / rowBytes);
        return { start, wanted, rows, data: rows === wanted ? data : data.slice(0, rows * cols) };
      }
      const raw = new Uint8Array(bytes);
      const out = options.pool ? await options.pool.acquireWhenFree(wanted * cols, signal) : new Float32Array(wanted * cols);
      const got = await readFully(fh, raw, h.headerBytes + start * rowBytes, signal);
      const rows = Math.floor(got / rowBytes);
      const data = rows === wanted ? out : new Float32Array(rows * cols);
      toFloat32(h.dtype, raw, rows * cols, data);
      return { start, wanted, rows, data };
    };

    let pending: Promise<Chunk> | undefined = total > 0 ? readChunk(0) : undefined;
    while (pending) {
      const chunk = await pending;
      pending = undefined;
      throwIfAborted(signal);
      const next = chunk.start + chunk.rows;
      const complete = chunk.rows === chunk.wanted;
      if (complete && next < total) {
        pending = readChunk(next);
        pending.catch(() => undefined); // surfaced when awaited
      }
      if (chunk.rows > 0) yield { start: chunk.start, rows: chunk.rows, data: chunk.data };
      if (!complete) {
        throw new DbpruneError(
          ErrorCodes.NPY_TRUNCATED,
          `${path}: file ends at row ${next} but its header promises ${total} rows`,
          { file: path, row: next, expectedRows: total },
        );
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Reads a whole (small) `.npy` matrix as float32, e.g. k×d centroids. A 1-D array reads as N×1.
 *
 * @throws the same codes as {@link readNpyRows}.
 */
export async function readNpyFloat32(path: string, options: { signal?: AbortSignal } = {}): Promise<{ data: Float32Array; rows: number; cols: number }> {
  const h = await readNpyHeader(path);
  const data = new Float32Array(h.rows * h.cols);
  for await (const b of readNpyRows(path, { batchRows: Math.max(1, Math.min(2 ** 24, h.rows)), signal: options.signal })) {
    data.set(b.data, b.start * h.cols);
  }
  return { data, rows: h.rows, cols: h.cols };
}
