/** SHA-256 and size of a file or object, over a streamed read (no whole-object buffer): local or s3://. */
import { createHash } from 'node:crypto';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { openRead } from './index.js';

/**
 * Streams `location` through SHA-256.
 * @throws what {@link openRead} throws (ERR_DBPRUNE_INPUT_NOT_FOUND when nothing is there,
 *   ERR_DBPRUNE_STORAGE / STORAGE_AUTH for an object store's failures), naming the location; a
 *   read that breaks off midway is ERR_DBPRUNE_STORAGE.
 */
export async function hashLocation(location: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  const body = await openRead(location, { signal });
  try {
    for await (const c of body) {
      const chunk = c as Buffer;
      h.update(chunk);
      bytes += chunk.length;
    }
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.STORAGE, `reading ${location} failed after ${bytes} bytes: ${(e as Error).message}`, { file: location }, { cause: e });
  }
  return { sha256: h.digest('hex'), bytes };
}
