/**
 * A zip archive (an `.npz`) on object storage, opened by yauzl through ranged reads: yauzl asks for
 * the end-of-central-directory record and the directory entries with many small reads, and for each
 * member's bytes with one range. Small reads are served from a few cached blocks (one ranged GET of
 * 64 KiB covers the tail with the whole directory of a DataComp npz), member bytes are streamed
 * straight from one ranged GET, so an archive is never downloaded whole.
 *
 * Written by hand on yauzl's documented `RandomAccessReader` extension point: yauzl does the zip
 * parsing (zip64, inflating, size checks); this only maps its reads onto the storage API.
 */
import { PassThrough, pipeline, type Readable } from 'node:stream';
import yauzl from 'yauzl';
import { openRandomAccess, openRead } from './index.js';
import type { RandomAccessReader as StorageReader } from './types.js';

/** Reads up to this many bytes go through the block cache; longer ones are fetched as asked. */
const SMALL_READ = 64 * 1024;
/** Cached blocks kept (most recent first). */
const CACHED_BLOCKS = 4;

interface Block {
  start: number;
  bytes: Buffer;
}

class ObjectZipReader extends yauzl.RandomAccessReader {
  private readonly blocks: Block[] = [];

  constructor(
    private readonly object: StorageReader,
    private readonly signal: AbortSignal | undefined,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const out = new PassThrough();
    openRead(this.object.location, { start, end, signal: this.signal }).then(
      (body) => {
        if (out.destroyed) body.destroy();
        else pipeline(body, out, () => undefined); // errors reach yauzl through `out`
      },
      (e: unknown) => out.destroy(e as Error),
    );
    return out;
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    this.readAt(buffer, offset, length, position).then(
      (n) => callback(null, n),
      (e: unknown) => callback(e as Error),
    );
  }

  private async readAt(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const target = buffer.subarray(offset, offset + length);
    if (length > SMALL_READ) return this.object.read(target, position, this.signal);
    let block = this.blocks.find((b) => b.start <= position && position + length <= b.start + b.bytes.length);
    if (!block) {
      const end = Math.min(this.object.size, position + Math.max(length, SMALL_READ));
      const bytes = Buffer.alloc(Math.max(0, end - position));
      const got = await this.object.read(bytes, position, this.signal);
      block = { start: position, bytes: bytes.subarray(0, got) };
      this.blocks.unshift(block);
      this.blocks.length = Math.min(this.blocks.length, CACHED_BLOCKS);
    }
    const from = position - block.start;
    const n = Math.min(length, block.bytes.length - from);
    block.bytes.copy(target, 0, from, from + n);
    return n;
  }

  override close(callback: (err: Error | null) => void): void {
    this.blocks.length = 0;
    this.object.close().then(
      () => callback(null),
      (e: unknown) => callback(e as Error),
    );
  }
}

/**
 * Opens the zip archive at `location` (an `s3://` object, or any location the storage API reads).
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND / ERR_DBPRUNE_STORAGE* from the storage API; yauzl's plain
 *   errors for a malformed archive (the caller names the file).
 */
export async function openObjectZip(location: string, options: yauzl.Options, signal?: AbortSignal): Promise<yauzl.ZipFile> {
  const object = await openRandomAccess(location, signal);
  return yauzl.fromRandomAccessReaderPromise(new ObjectZipReader(object, signal), object.size, options);
}
