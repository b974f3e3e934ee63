/** Writing `.npy` files: streamed by rows ({@link NpyWriter}) or whole ({@link writeNpy}). */
import { open, type FileHandle } from 'node:fs/promises';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { checkOption, choiceOption, integerOption } from '../../core/validate.js';
import { toHalf } from './float16.js';
import { DTYPE_TO_DESCR, NPY_DTYPES, buildNpyHeader, type NpyDtype } from './header.js';

/** A typed array a writer accepts (the right one depends on the dtype, see {@link NpyWriter.write}). */
export type NpyWritable = Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array;

function checkWritable(dtype: NpyDtype, data: NpyWritable): void {
  const ok =
    ((dtype === 'float32' || dtype === 'float16' || dtype === 'float64') && (data instanceof Float32Array || data instanceof Float64Array)) ||
    (dtype === 'int32' && data instanceof Int32Array) ||
    (dtype === 'int64' && data instanceof BigInt64Array) ||
    (dtype === 'uint64' && data instanceof BigUint64Array) ||
    (dtype === 'uint8' && data instanceof Uint8Array) ||
    (dtype === 'int8' && data instanceof Int8Array);
  checkOption(ok, 'data', `a typed array matching dtype ${dtype}`, data.constructor.name);
}

/** Encodes `data` as the bytes of `dtype` (a view when no conversion is needed). */
function encode(dtype: NpyDtype, data: NpyWritable): Uint8Array {
  if (dtype === 'float16') {
    const out = new Uint16Array(data.length);
    const src = data as Float32Array | Float64Array;
    for (let i = 0; i < src.length; i++) out[i] = toHalf(src[i]);
    return new Uint8Array(out.buffer);
  }
  if (dtype === 'float32' && data instanceof Float64Array) {
    const f = Float32Array.from(data);
    return new Uint8Array(f.buffer);
  }
  if (dtype === 'float64' && data instanceof Float32Array) {
    const f = Float64Array.from(data);
    return new Uint8Array(f.buffer);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Streams rows into a `.npy` file without knowing the row count up front: the header is written
 * with room for a 20-digit row count and patched by {@link NpyWriter.close}.
 *
 * `cols = null` writes a 1-D array `(N,)`; otherwise `(N, cols)`.
 */
export class NpyWriter {
  private rowsWritten = 0;
  private pos: number;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly dtype: NpyDtype,
    readonly cols: number | null,
    private readonly fh: FileHandle,
    private readonly headerBytes: number,
  ) {
    this.pos = headerBytes;
  }

  /**
   * Creates (truncates) `path` and writes a provisional header.
   * @param dtype element type on disk (float32 default use; float16 rounds to nearest even).
   * @param cols elements per row (≥ 1), or `null` for a 1-D array.
   * @throws ERR_DBPRUNE_INVALID_OPTION for a bad dtype/cols.
   */
  static async create(path: string, dtype: NpyDtype, cols: number | null): Promise<NpyWriter> {
    choiceOption(dtype, 'dtype', NPY_DTYPES);
    if (cols !== null) integerOption(cols, 'cols', { min: 1 });
    // Room for a 20-digit row count, so that close() can patch the header in place.
    const widest = '9'.repeat(20);
    const headerBytes = buildNpyHeader(`'${DTYPE_TO_DESCR[dtype]}'`, cols === null ? [widest] : [widest, cols]).length;
    const fh = await open(path, 'w');
    const w = new NpyWriter(path, dtype, cols, fh, headerBytes);
    await w.writeHeader();
    return w;
  }

  /** Rows written so far. */
  get rows(): number {
    return this.rowsWritten;
  }

  private async writeHeader(): Promise<void> {
    const shape = this.cols === null ? [this.rowsWritten] : [this.rowsWritten, this.cols];
    const header = buildNpyHeader(`'${DTYPE_TO_DESCR[this.dtype]}'`, shape, this.headerBytes);
    if (header.length !== this.headerBytes) throw new DbpruneError(ErrorCodes.INTERNAL, 'npy header size changed');
    await this.fh.write(header, 0, header.length, 0);
  }

  /**
   * Appends whole rows. `data.length` must be a multiple of `cols`. Accepts Float32Array/Float64Array
   * for float dtypes, Int32Array for int32, BigInt64Array for int64, BigUint64Array for uint64,
   * Uint8Array/Int8Array for uint8/int8.
   * @throws ERR_DBPRUNE_INVALID_OPTION for a mismatched array type or partial row.
   */
  async write(data: NpyWritable): Promise<void> {
    if (this.closed) throw new DbpruneError(ErrorCodes.INTERNAL, `${this.path}: write after close`, { file: this.path });
    checkWritable(this.dtype, data);
    const cols = this.cols ?? 1;
    checkOption(data.length % cols === 0, 'data.length', `a multiple of cols (${cols})`, data.length);
    const bytes = encode(this.dtype, data);
    let off = 0;
    while (off < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, off, bytes.length - off, this.pos + off);
      off += bytesWritten;
    }
    this.pos += bytes.length;
    this.rowsWritten += data.length / cols;
  }

  /** Patches the row count into the header and closes the file. Idempotent. */
  async close(): Promise<{ rows: number }> {
    if (!this.closed) {
      this.closed = true;
      try {
        await this.writeHeader();
      } finally {
        await this.fh.close();
      }
    }
    return { rows: this.rowsWritten };
  }
}

/**
 * Writes a small array in one go. `shape` must multiply to `data.length` (`[]` for a scalar).
 * @throws ERR_DBPRUNE_INVALID_OPTION when shape and data disagree or the array type mismatches dtype.
 */
export async function writeNpy(path: string, data: NpyWritable, shape: readonly number[], dtype: NpyDtype = 'float32'): Promise<void> {
  choiceOption(dtype, 'dtype', NPY_DTYPES);
  const n = shape.reduce((a, b) => a * b, 1);
  checkOption(shape.every((s) => Number.isInteger(s) && s >= 0) && n === data.length, 'shape', `non-negative integers multiplying to ${data.length}`, shape);
  checkWritable(dtype, data);
  const header = buildNpyHeader(`'${DTYPE_TO_DESCR[dtype]}'`, shape);
  const body = encode(dtype, data);
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(Buffer.concat([header, body]));
  } finally {
    await fh.close();
  }
}
