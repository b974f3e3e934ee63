/**
 * fsync helpers of ingest's state store, and its error: everything durable the store writes whole
 * goes through `writeStateFile` (= src/io/output-set.ts `writeFileAtomic`, coded ERR_DBPRUNE_STATE).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/io/output-set.js';


/** fsyncs a file (its data and size). */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a directory, making renames and creations inside it durable. No-op where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM') throw e;
  } finally {
    await fh?.close();
  }
}

/** An ERR_DBPRUNE_STATE error naming `file` and the reason. */
export function stateError(file: string, reason: string, cause?: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.STATE, `${file}: ${reason}`, { file, reason }, cause === undefined ? undefined : { cause });
}

/**
 * Writes a state or output file atomically and durably with the project's one atomic-write helper
 * ({@link writeFileAtomic}: a temporary file beside it, fsynced, renamed, folder fsynced).
 * @throws ERR_DBPRUNE_STATE naming the file (its cause: the OUTPUT error).
 */
export async function writeStateFile(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, data);
  } catch (e) {
    const why = e instanceof DbpruneError && e.cause instanceof Error ? e.cause.message : (e as Error).message;
    throw stateError(path, `cannot write (${why})`, e);
  }
}
