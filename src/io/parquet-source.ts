/** hyparquet's random-access input over a local file or an s3:// object. */
import { asyncBufferFromFile, type AsyncBuffer } from 'hyparquet';
import { isS3Uri, openRandomAccess } from './storage/index.js';

/**
 * An AsyncBuffer for hyparquet. For s3:// every `slice` is one ranged GET (the footer first, then
 * the column chunks of the row groups read), so a Parquet object is never downloaded whole.
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND / ERR_DBPRUNE_STORAGE* for a missing or unreachable object;
 *   local files throw node:fs errors (the callers wrap them).
 */
export async function openParquetBuffer(location: string): Promise<AsyncBuffer> {
  if (!isS3Uri(location)) return asyncBufferFromFile(location);
  const reader = await openRandomAccess(location);
  return {
    byteLength: reader.size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? reader.size, reader.size);
      const buf = new Uint8Array(Math.max(0, stop - start));
      const got = await reader.read(buf, start);
      return buf.buffer.slice(0, got);
    },
  };
}
