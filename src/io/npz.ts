/**
 * NumPy `.npz` archives (a zip of `.npy` members, as `np.savez` / `np.savez_compressed` write them,
 * e.g. DataComp's per-shard `NNNNNNNN.npz` holding `l14_img`, `l14_txt`, `b32_img`, `b32_txt`),
 * read member by member as a stream of row batches: the archive is never loaded whole.
 *
 * Zip parsing and inflation are yauzl's (central directory, zip64, stored and deflated members,
 * size validation); this module only cuts the inflated bytes of one member into `.npy` rows.
 * Several members of one archive may be streamed at the same time (they are independent reads).
 * An `s3://` archive is read with ranged GETs (storage/zip-reader.ts): the central directory from
 * the object's tail, then each member's bytes as one streamed range; it is never downloaded whole.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { npyElementsToFloat32, npyHeaderLength, parseNpyHeaderBytes, type NpyHeader, type NpyRowBatch } from './npy.js';
import { openObjectZip } from './storage/zip-reader.js';
import { isS3Uri } from './storage/uri.js';

/** One `.npy` member of an archive. */
export interface NpzMember {
  /** Member name without `.npy` (`l14_img`). */
  name: string;
  /** `stored` (method 0) or `deflated` (method 8). */
  compression: 'stored' | 'deflated';
  uncompressedSize: number;
}

function npzError(path: string, message: string, cause?: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.NPY_FORMAT, `${path}: ${message}`, { file: path }, cause === undefined ? undefined : { cause });
}

/** An opened `.npz`: its member list (from the central directory); close it when done. */
export class NpzFile {
  private constructor(
    readonly path: string,
    private readonly zip: yauzl.ZipFile,
    private readonly entries: Map<string, yauzl.Entry>,
  ) {}

  /**
   * Opens an archive (a local file or an `s3://` object) and reads its central directory.
   * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when the file or object does not exist; ERR_DBPRUNE_NPY_FORMAT
   *   when it is not a readable zip; ERR_DBPRUNE_STORAGE* when the object store fails.
   */
  static async open(path: string, signal?: AbortSignal): Promise<NpzFile> {
    let zip: yauzl.ZipFile;
    const options: yauzl.Options = { lazyEntries: true, autoClose: false };
    try {
      zip = isS3Uri(path) ? await openObjectZip(path, options, signal) : await yauzl.openPromise(path, options);
    } catch (e) {
      if (e instanceof DbpruneError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${path}: no such file`, { file: path }, { cause: e });
      throw npzError(path, `not a readable .npz (zip) file (${(e as Error).message})`, e);
    }
    const entries = new Map<string, yauzl.Entry>();
    try {
      await new Promise<void>((resolve, reject) => {
        zip.on('entry', (entry: yauzl.Entry) => {
          if (entry.fileName.endsWith('.npy')) entries.set(entry.fileName.slice(0, -4), entry);
          zip.readEntry();
        });
        zip.once('end', () => resolve());
        zip.once('error', reject);
        zip.readEntry();
      });
    } catch (e) {
      zip.close();
      if (e instanceof DbpruneError) throw e;
      throw npzError(path, `corrupt zip directory (${(e as Error).message})`, e);
    }
    // Later read failures reach the member streams' consumers; a late 'error' on the archive object
    // itself must not become an uncaught exception.
    zip.removeAllListeners('error');
    zip.on('error', () => undefined);
    return new NpzFile(path, zip, entries);
  }

  /** The `.npy` members, in archive order. */
  members(): NpzMember[] {
    return [...this.entries.entries()].map(([name, e]) => ({
      name,
      compression: e.compressionMethod === 0 ? 'stored' : 'deflated',
      uncompressedSize: e.uncompressedSize,
    }));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): yauzl.Entry {
    const e = this.entries.get(name);
    if (!e) {
      throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${this.path} has no member ${name}.npy (has: ${[...this.entries.keys()].join(', ') || 'none'})`, {
        file: this.path,
        member: name,
      });
    }
    if (e.compressionMethod !== 0 && e.compressionMethod !== 8) throw npzError(this.path, `member ${name}.npy uses zip compression method ${e.compressionMethod}; only stored and deflated are supported`);
    return e;
  }

  private async stream(name: string): Promise<Readable> {
    const e = this.entry(name);
    try {
      return await this.zip.openReadStreamPromise(e);
    } catch (err) {
      if (err instanceof DbpruneError) throw err;
      throw npzError(this.path, `cannot read member ${name}.npy (${(err as Error).message})`, err);
    }
  }

  /**
   * The `.npy` header of member `name` (inflates only its first bytes).
   * @throws ERR_DBPRUNE_INPUT_FORMAT when the member is missing; ERR_DBPRUNE_NPY_FORMAT for a bad header.
   */
  async header(name: string): Promise<NpyHeader> {
    const s = await this.stream(name);
    const label = `${this.path}:${name}.npy`;
    let head = Buffer.alloc(0);
    try {
      for await (const chunk of s as AsyncIterable<Buffer>) {
        head = Buffer.concat([head, chunk]);
        const need = npyHeaderLength(head);
        if (need !== undefined && head.length >= need) break;
        if (head.length > 1 << 20) break;
      }
    } catch (e) {
      if (e instanceof DbpruneError) throw e;
      throw npzError(this.path, `cannot inflate member ${name}.npy (${(e as Error).message})`, e);
    } finally {
      s.destroy();
    }
    return checkMatrix(label, parseNpyHeaderBytes(label, head));
  }

  /**
   * Streams member `name` as float32 row batches (float16 and the other `.npy` dtypes converted),
   * `batchRows` rows each (the last shorter). Memory: one batch plus one inflated chunk.
   *
   * @throws ERR_DBPRUNE_NPY_TRUNCATED (context.file, member, row) after the complete rows when the
   *   member ends early; ERR_DBPRUNE_NPY_FORMAT for a bad header or a corrupt deflate stream;
   *   ERR_DBPRUNE_ABORTED when `signal` fires.
   */
  async *rows(name: string, options: { batchRows?: number; signal?: AbortSignal } = {}): AsyncGenerator<NpyRowBatch> {
    const batchRows = integerOption(options.batchRows, 'batchRows', { default: 8192, min: 1, max: 2 ** 24 });
    const { signal } = options;
    throwIfAborted(signal);
    const label = `${this.path}:${name}.npy`;
    const s = await this.stream(name);
    let header: NpyHeader | undefined;
    let head = Buffer.alloc(0);
    let raw = new Uint8Array(0);
    let fill = 0;
    let start = 0;
    const emit = (rows: number): NpyRowBatch => {
      const h = header as NpyHeader;
      const data = new Float32Array(rows * h.cols);
      npyElementsToFloat32(h.dtype, raw, rows * h.cols, data);
      const b = { start, rows, data };
      start += rows;
      fill = 0;
      return b;
    };
    try {
      for await (const chunk0 of s as AsyncIterable<Buffer>) {
        throwIfAborted(signal);
        let chunk = chunk0;
        if (!header) {
          head = Buffer.concat([head, chunk]);
          const need = npyHeaderLength(head);
          if (need === undefined || head.length < need) continue;
          header = checkMatrix(label, parseNpyHeaderBytes(label, head));
          chunk = head.subarray(need);
          raw = new Uint8Array(Math.max(1, Math.min(batchRows, header.rows)) * header.rowBytes);
          if (header.rowBytes === 0) break;
        }
        let off = 0;
        while (off < chunk.length) {
          const rowsLeft = header.rows - start;
          const batchBytes = Math.min(batchRows, rowsLeft) * header.rowBytes;
          if (batchBytes === 0) break; // trailing bytes past the promised rows: ignored, as numpy does
          const take = Math.min(batchBytes - fill, chunk.length - off);
          raw.set(chunk.subarray(off, off + take), fill);
          fill += take;
          off += take;
          if (fill === batchBytes) yield emit(batchBytes / header.rowBytes);
        }
      }
    } catch (e) {
      if (e instanceof DbpruneError) throw e;
      throw npzError(this.path, `cannot inflate member ${name}.npy (${(e as Error).message})`, e);
    } finally {
      s.destroy();
    }
    if (!header) throw npzError(label, 'member ends inside its .npy header');
    if (header.rowBytes === 0) {
      for (let r = 0; r < header.rows; r += batchRows) yield { start: r, rows: Math.min(batchRows, header.rows - r), data: new Float32Array(0) };
      return;
    }
    const complete = Math.floor(fill / header.rowBytes);
    if (complete > 0) {
      fill = complete * header.rowBytes;
      yield emit(complete);
    }
    if (start < header.rows) {
      throw new DbpruneError(ErrorCodes.NPY_TRUNCATED, `${label}: member ends at row ${start} but its header promises ${header.rows} rows`, {
        file: this.path,
        member: name,
        row: start,
        expectedRows: header.rows,
      });
    }
  }

  /** Closes the archive (idempotent). Open member streams are destroyed by their generators. */
  close(): void {
    if (this.zip.isOpen) this.zip.close();
  }
}

function checkMatrix(label: string, h: NpyHeader): NpyHeader {
  if (h.fortranOrder && h.shape.length > 1) throw new DbpruneError(ErrorCodes.NPY_FORMAT, `${label}: Fortran-ordered arrays are not supported`, { file: label });
  return h;
}
