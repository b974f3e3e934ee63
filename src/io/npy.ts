/**
 * NumPy `.npy` files, read and written in row chunks so that a 10 GB embedding matrix never sits in
 * memory. Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * (magic `\x93NUMPY`, version byte pair, header length (u16 for 1.0, u32 for 2.0/3.0), a Python
 * dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }` padded with spaces and
 * a newline so that the data starts at a multiple of 64 bytes).
 *
 * Rows are the first axis; a 1-D array has one column per row; a >2-D array is flattened to
 * `shape[0] × prod(shape[1:])`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { DbpruneError, ErrorCodes, checkOption, throwIfAborted } from '../core/errors.js';
import { openRandomAccess, type RandomAccessReader } from './storage/index.js';

/** Element types dbprune reads; writes support the same set. */
export type NpyDtype = 'float32' | 'float16' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'uint64';

const DESCR_TO_DTYPE: Record<string, NpyDtype> = {
  '<f4': 'float32',
  '<f2': 'float16',
  '<f8': 'float64',
  '<i4': 'int32',
  '<i8': 'int64',
  '<u8': 'uint64',
  '|u1': 'uint8',
  '|i1': 'int8',
  '<u1': 'uint8',
  '<i1': 'int8',
};

const DTYPE_TO_DESCR: Record<NpyDtype, string> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
  uint64: '<u8',
  uint8: '|u1',
  int8: '|i1',
};

const ITEM_SIZE: Record<NpyDtype, number> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int32: 4,
  int64: 8,
  uint64: 8,
  uint8: 1,
  int8: 1,
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

if (endianness() !== 'LE') {
  // Typed arrays use host byte order; every dtype we support is little-endian on disk.
  throw new DbpruneError(ErrorCodes.INTERNAL, 'dbprune .npy I/O requires a little-endian host');
}

/** What the header of a `.npy` file says. */
export interface NpyHeader {
  dtype: NpyDtype;
  /** The raw numpy `descr`, e.g. `<f4`. */
  descr: string;
  shape: number[];
  fortranOrder: boolean;
  /** Offset of the first data byte (magic + version + length + header dict). */
  headerBytes: number;
  /** Rows along the first axis (1 for a 0-d array). */
  rows: number;
  /** Elements per row: `prod(shape[1:])` (1 for 0-d and 1-d arrays). */
  cols: number;
  itemSize: number;
  /** `cols × itemSize`. */
  rowBytes: number;
  /** Header version `[major, minor]`. */
  version: [number, number];
}

function formatError(file: string, message: string): DbpruneError {
  return new DbpruneError(ErrorCodes.NPY_FORMAT, `${file}: ${message}`, { file });
}

/** Parses a header dict such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. */
function parseHeaderDict(file: string, text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const descrM = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (!descrM) {
    if (/['"]descr['"]\s*:\s*\[/.test(text)) throw formatError(file, 'structured dtypes are not supported');
    throw formatError(file, `header lacks 'descr': ${JSON.stringify(text.trim())}`);
  }
  const fortranM = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortranM) throw formatError(file, `header lacks 'fortran_order': ${JSON.stringify(text.trim())}`);
  const shapeM = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeM) throw formatError(file, `header lacks 'shape': ${JSON.stringify(text.trim())}`);
  const shape: number[] = [];
  for (const part of shapeM[1].split(',')) {
    const t = part.trim().replace(/L$/, '');
    if (t === '') continue;
    if (!/^\d+$/.test(t)) throw formatError(file, `bad shape entry ${JSON.stringify(t)}`);
    shape.push(Number(t));
  }
  return { descr: descrM[2], fortranOrder: fortranM[1] === 'True', shape };
}

/** Parses a header from the first bytes of a file (throws NPY_FORMAT if `buf` is too short). */
function parseHeader(file: string, buf: Buffer, fileSize?: number): NpyHeader {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw formatError(file, 'not a .npy file (bad magic)');
  const major = buf[6];
  const minor = buf[7];
  let lenBytes: number;
  let headerLen: number;
  if (major === 1) {
    lenBytes = 2;
    headerLen = buf.readUInt16LE(8);
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw formatError(file, 'header is truncated');
    lenBytes = 4;
    headerLen = buf.readUInt32LE(8);
  } else {
    throw formatError(file, `unsupported .npy version ${major}.${minor}`);
  }
  const headerBytes = 8 + lenBytes + headerLen;
  if (buf.length < headerBytes) {
    throw formatError(file, `header is truncated (needs ${headerBytes} bytes, file has ${fileSize ?? buf.length})`);
  }
  const text = buf.toString(major === 3 ? 'utf8' : 'latin1', 8 + lenBytes, headerBytes);
  const { descr, fortranOrder, shape } = parseHeaderDict(file, text);
  const dtype = DESCR_TO_DTYPE[descr];
  if (!dtype) throw formatError(file, `unsupported dtype ${JSON.stringify(descr)} (supported: ${Object.keys(DESCR_TO_DTYPE).join(', ')})`);
  const rows = shape.length === 0 ? 1 : shape[0];
  let cols = 1;
  for (let i = 1; i < shape.length; i++) cols *= shape[i];
  const itemSize = ITEM_SIZE[dtype];
  return {
    dtype,
    descr,
    shape,
    fortranOrder,
    headerBytes,
    rows,
    cols,
    itemSize,
    rowBytes: cols * itemSize,
    version: [major, minor],
  };
}

/** A local file or an s3:// object, read by position (an s3 read is one ranged GET). */
function openForRead(path: string, signal?: AbortSignal): Promise<RandomAccessReader> {
  return openRandomAccess(path, signal);
}

async function readHeaderFrom(fh: RandomAccessReader, path: string): Promise<NpyHeader> {
  const size = fh.size;
  let want = Math.min(size, 4096);
  for (;;) {
    const buf = Buffer.alloc(want);
    const bytesRead = await fh.read(buf, 0);
    const b = buf.subarray(0, bytesRead);
    if (b.length >= 12 && b.subarray(0, 6).equals(MAGIC)) {
      const lenBytes = b[6] === 1 ? 2 : 4;
      const need = 8 + lenBytes + (lenBytes === 2 ? b.readUInt16LE(8) : b.readUInt32LE(8));
      if (need > b.length && need <= size) {
        want = need;
        continue;
      }
    }
    return parseHeader(path, b, size);
  }
}

/**
 * Reads and parses the header of a `.npy` file (only the first few KB are read).
 *
 * Accepts header versions 1.0, 2.0 and 3.0 and the dtypes `<f4 <f2 <f8 <i4 <i8 <u8 |u1 |i1`.
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file does not exist.
 * @throws ERR_DBPRUNE_NPY_FORMAT (context.file) for a bad magic, header or unsupported dtype.
 */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  const fh = await openForRead(path);
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

/**
 * Parses a `.npy` header from its first bytes (for `.npy` data that is not a plain file, e.g. an
 * `.npz` member). `buf` must hold the whole header; `name` is used in error messages.
 * @throws ERR_DBPRUNE_NPY_FORMAT for a bad magic, header or unsupported dtype, or a short `buf`.
 */
export function parseNpyHeaderBytes(name: string, buf: Buffer): NpyHeader {
  return parseHeader(name, buf);
}

/**
 * Bytes needed to hold the whole header, from its first 12 bytes (magic, version, length), or
 * undefined when fewer than 12 bytes are given.
 */
export function npyHeaderLength(first: Buffer): number | undefined {
  if (first.length < 12) return undefined;
  return first[6] === 1 ? 10 + first.readUInt16LE(8) : 12 + first.readUInt32LE(8);
}

// ---------------------------------------------------------------------------------------------
// float16 <-> float32

let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  HALF_TABLE = t;
  return t;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
/** float32 → IEEE half bits, round to nearest even. */
function toHalf(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** Converts raw little-endian element bytes to float32. `bytes` must start at an aligned offset. */
function toFloat32(dtype: NpyDtype, bytes: Uint8Array, count: number, out: Float32Array): void {
  const buf = bytes.buffer;
  const off = bytes.byteOffset;
  switch (dtype) {
    case 'float16': {
      const src = new Uint16Array(buf, off, count);
      const t = halfTable();
      for (let i = 0; i < count; i++) out[i] = t[src[i]];
      return;
    }
    case 'float64':
      out.set(new Float64Array(buf, off, count));
      return;
    case 'int32':
      out.set(new Int32Array(buf, off, count));
      return;
    case 'int64': {
      const src = new BigInt64Array(buf, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return;
    }
    case 'uint64': {
      const src = new BigUint64Array(buf, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return;
    }
    case 'uint8':
      out.set(new Uint8Array(buf, off, count));
      return;
    case 'int8':
      out.set(new Int8Array(buf, off, count));
      return;
    case 'float32':
      out.set(new Float32Array(buf, off, count));
      return;
  }
}

/**
 * Converts `count` little-endian elements of `dtype` to float32 into `out`. `bytes` must start at an
 * offset aligned to the element size (copy it first otherwise).
 */
export function npyElementsToFloat32(dtype: NpyDtype, bytes: Uint8Array, count: number, out: Float32Array): void {
  toFloat32(dtype, bytes, count, out);
}

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
 */
export class Float32ArrayPool {
  private readonly free: Float32Array[] = [];
  constructor(private readonly maxFree = 4) {
    checkOption(Number.isInteger(maxFree) && maxFree >= 1 && maxFree <= 64, 'maxFree', 'an integer in [1, 64]', maxFree);
  }

  /** An idle buffer of exactly `length` floats (contents unspecified), or a new one. */
  acquire(length: number): Float32Array {
    const i = this.free.findIndex((a) => a.length === length);
    return i >= 0 ? (this.free.splice(i, 1)[0] as Float32Array) : new Float32Array(length);
  }

  /** Hands a buffer back; the caller must not touch it afterwards. */
  release(a: Float32Array): void {
    if (this.free.length < this.maxFree && a.byteOffset === 0 && a.length * 4 === a.buffer.byteLength) this.free.push(a);
  }
}

export interface ReadNpyRowsOptions {
  /** Rows per yielded batch. Default 8192; 1 … 2^24. */
  batchRows?: number;
  /** Recycle batch buffers (see {@link Float32ArrayPool}); the consumer releases each batch's `data`. */
  pool?: Float32ArrayPool;
  signal?: AbortSignal;
}

/** Reads `buf.length` bytes at `pos` or until EOF; returns the bytes read. */
function readFully(fh: RandomAccessReader, buf: Uint8Array, pos: number, signal?: AbortSignal): Promise<number> {
  return fh.read(buf, pos, signal);
}

/**
 * Streams the rows of a C-ordered `.npy` file as float32 batches (float16/float64/int inputs are
 * converted). Reads one batch ahead, so at most two batches are in memory at a time.
 *
 * Options: `batchRows` (default 8192, 1 … 2^24), `signal`.
 *
 * @throws ERR_DBPRUNE_NPY_FORMAT (context.file) for Fortran order or an unsupported dtype/header.
 * @throws ERR_DBPRUNE_NPY_TRUNCATED (context.file, context.row = first missing row) when the file
 *   ends before the rows its header promises — after yielding every complete row it does have.
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file does not exist.
 * @throws ERR_DBPRUNE_ABORTED when `signal` fires.
 */
export async function* readNpyRows(path: string, options: ReadNpyRowsOptions = {}): AsyncGenerator<NpyRowBatch> {
  const batchRows = options.batchRows ?? 8192;
  checkOption(Number.isInteger(batchRows) && batchRows >= 1 && batchRows <= 2 ** 24, 'batchRows', 'an integer in [1, 2^24]', batchRows);
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
        const data = options.pool ? options.pool.acquire(wanted * cols) : new Float32Array(wanted * cols);
        const got = await readFully(fh, new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h.headerBytes + start * rowBytes, signal);
        const rows = Math.floor(got / rowBytes);
        return { start, wanted, rows, data: rows === wanted ? data : data.slice(0, rows * cols) };
      }
      const raw = new Uint8Array(bytes);
      const got = await readFully(fh, raw, h.headerBytes + start * rowBytes, signal);
      const rows = Math.floor(got / rowBytes);
      const data = new Float32Array(rows * cols);
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

// ---------------------------------------------------------------------------------------------
// writing

/** A typed array a writer accepts (the right one depends on the dtype, see {@link NpyWriter.write}). */
export type NpyWritable = Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array;

function shapeLiteral(shape: readonly (number | string)[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * Builds a version-1.0 header for `descr` (a Python literal such as `'<f4'` or
 * `[('f0', '<u8'), ('f1', '<u8')]`) and `shape`, padded to `minBytes` (and to a multiple of 64).
 * @internal exported for the DataComp uid writer in manifest.ts.
 */
export function buildNpyHeader(descrLiteral: string, shape: readonly (number | string)[], minBytes = 0): Buffer {
  const dict = `{'descr': ${descrLiteral}, 'fortran_order': False, 'shape': ${shapeLiteral(shape)}, }`;
  let total = 10 + dict.length + 1;
  total = Math.max(total, minBytes);
  total = Math.ceil(total / 64) * 64;
  const headerLen = total - 10;
  if (headerLen > 0xffff) throw new DbpruneError(ErrorCodes.INTERNAL, 'npy header too long');
  const buf = Buffer.alloc(total, 0x20);
  MAGIC.copy(buf, 0);
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(headerLen, 8);
  buf.write(dict, 10, 'latin1');
  buf[total - 1] = 0x0a;
  return buf;
}

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
    checkOption(dtype in DTYPE_TO_DESCR, 'dtype', `one of ${Object.keys(DTYPE_TO_DESCR).join(', ')}`, dtype);
    checkOption(cols === null || (Number.isInteger(cols) && cols >= 1), 'cols', 'a positive integer or null', cols);
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
  checkOption(dtype in DTYPE_TO_DESCR, 'dtype', `one of ${Object.keys(DTYPE_TO_DESCR).join(', ')}`, dtype);
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
