/**
 * fsync helpers of ingest's state store, and its error: everything durable the store writes whole
 * goes through `writeStateFile` (= src/io/output-set.ts `writeFileAtomic`, coded ERR_DBPRUNE_STATE).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { hashFile } from '../../src/io/hash.js';
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

/** Compares a file's size and SHA-256 with a commit record's. @throws ERR_DBPRUNE_STATE naming the file when missing or different. */
export async function checkFileSum(path: string, sum: { bytes: number; sha256: string }): Promise<void> {
  let got: { sha256: string; bytes: number };
  try {
    got = await hashFile(path);
  } catch (e) {
    throw stateError(path, `missing (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
  checkSum(path, got, sum);
}

/** Throws ERR_DBPRUNE_STATE naming `location` when `got` differs from the recorded `sum`. */
export function checkSum(location: string, got: { bytes: number; sha256: string }, sum: { bytes: number; sha256: string }): void {
  if (got.bytes !== sum.bytes) throw stateError(location, `size ${got.bytes} != recorded ${sum.bytes} (half-written)`);
  if (got.sha256 !== sum.sha256) throw stateError(location, 'checksum mismatch');
}
