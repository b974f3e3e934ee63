/**
 * The `.npy` header: magic `\x93NUMPY`, version byte pair, header length (u16 for 1.0, u32 for
 * 2.0/3.0), and a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }`
 * padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
 */
import { endianness } from 'node:os';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { openRandomAccess, type RandomAccessReader } from '../storage/index.js';

/** Element types dbprune reads; writes support the same set. */
export const NPY_DTYPES = ['float32', 'float16', 'float64', 'int32', 'int64', 'uint8', 'int8', 'uint64'] as const;

/** One of {@link NPY_DTYPES}. */
export type NpyDtype = (typeof NPY_DTYPES)[number];

export const DESCR_TO_DTYPE: Record<string, NpyDtype> = {
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

export const DTYPE_TO_DESCR: Record<NpyDtype, string> = {
  float32: '<f4',
  float16: '<f2',
  float64: '<f8',
  int32: '<i4',
  int64: '<i8',
  uint64: '<u8',
  uint8: '|u1',
  int8: '|i1',
};

export const ITEM_SIZE: Record<NpyDtype, number> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int32: 4,
  int64: 8,
  uint64: 8,
  uint8: 1,
  int8: 1,
};

export const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

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

export function formatError(file: string, message: string): DbpruneError {
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
export function openForRead(path: string, signal?: AbortSignal): Promise<RandomAccessReader> {
  return openRandomAccess(path, signal);
}

export async function readHeaderFrom(fh: RandomAccessReader, path: string): Promise<NpyHeader> {
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
