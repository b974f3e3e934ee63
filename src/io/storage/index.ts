/**
 * dbprune's storage API: one set of functions for local paths and `s3://bucket/key` URIs. Readers
 * stream (ranged GETs where a format needs random access), writers produce {@link OutputObject}s
 * that appear under their final name only at `commit()`. The S3 backend (and the AWS SDK) is
 * loaded on the first s3:// location.
 *
 * For other modules: take a location string, call these functions, never `node:fs` directly, and
 * the location may be s3://. Configure S3 with {@link configureS3} (the CLI does, from its flags).
 * Sets of outputs replaced together (OutputSet) write to {@link stagingLocation}s and move them into
 * place with {@link publishStaged} (S3 has no rename: a server-side copy, then a delete).
 */
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { localBackend } from './local.js';
import type { OpenReadOptions, OutputObject, RandomAccessReader, StorageBackend, StorageEntry, StorageStat } from './types.js';
import { forgetStaging, STALE_STAGING_MS, stagedAt } from './staging.js';
import { isS3Uri } from './uri.js';

export * from './types.js';
export * from './uri.js';
export { configureS3, resolveS3Settings, type S3Settings, type ResolvedS3Settings } from './s3-config.js';
export { finalNameOf, stagingLocation, STALE_STAGING_MS } from './staging.js';

let s3: Promise<StorageBackend> | undefined;

async function backendFor(location: string): Promise<StorageBackend> {
  if (!isS3Uri(location)) return localBackend;
  s3 ??= import('./s3.js').then((m) => m.s3Backend);
  return s3;
}

/**
 * Streams the bytes of a file or object (optionally the byte range [start, end)).
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND (context.file) when nothing is there (or the bucket does not
 *   exist); ERR_DBPRUNE_STORAGE_AUTH when access is refused; ERR_DBPRUNE_STORAGE otherwise.
 */
export async function openRead(location: string, opts: OpenReadOptions = {}): Promise<Readable> {
  return (await backendFor(location)).openRead(location, opts);
}

/** Positional reads of a file or object (`pread`, or one ranged GET per read). Same errors as {@link openRead}. */
export async function openRandomAccess(location: string, signal?: AbortSignal): Promise<RandomAccessReader> {
  return (await backendFor(location)).openRandomAccess(location, signal);
}

/** What is at `location` (a file/object, a directory/prefix), or `undefined`. */
export async function statLocation(location: string, signal?: AbortSignal): Promise<StorageStat | undefined> {
  return (await backendFor(location)).stat(location, signal);
}

/** Every file/object under a directory or key prefix, recursively, in key order (S3 listings are paged). */
export async function* listLocation(prefix: string, signal?: AbortSignal): AsyncGenerator<StorageEntry> {
  yield* (await backendFor(prefix)).list(prefix, signal);
}

/** Whether a file/object or directory/prefix exists at `location`. */
export async function locationExists(location: string, signal?: AbortSignal): Promise<boolean> {
  return (await statLocation(location, signal)) !== undefined;
}

/** Creates an output folder (recursively); a no-op for s3:// prefixes, which need no creating. */
export async function ensureOutputDir(location: string): Promise<void> {
  if (!isS3Uri(location)) await mkdir(location, { recursive: true });
}

/** Reads a whole (small) file or object: JSON, configs, centroids, a model. */
export async function readLocation(location: string, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await openRead(location, { signal })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const pending = new Set<OutputObject>();

/**
 * Opens an output: write to `.stream`, then `commit()` (or `abort()`). A local parent folder must
 * exist (see {@link ensureOutputDir}); on S3 a multipart upload starts. Until commit nothing is under `location`.
 * Every output still open is aborted by {@link abortPendingWrites}.
 */
export async function openWrite(location: string): Promise<OutputObject> {
  const out = await (await backendFor(location)).openWrite(location);
  pending.add(out);
  return {
    location: out.location,
    stream: out.stream,
    async commit() {
      try {
        await out.commit();
      } finally {
        pending.delete(out);
      }
    },
    async abort() {
      pending.delete(out);
      await out.abort();
    },
  };
}

/** Deletes a file or object; nothing happens when it is not there. */
export async function removeLocation(location: string): Promise<void> {
  await (await backendFor(location)).remove(location);
}

/** Staged objects moved into place at once by {@link publishStaged}. */
const PUBLISH_CONCURRENCY = 4;

/**
 * Moves staged outputs (from {@link stagingLocation}) to their final locations, a few at a time
 * (S3: server-side copies, then the staged objects are deleted). Resolves when all are in place.
 * @throws ERR_DBPRUNE_STORAGE naming the final location of the first move that failed (no further
 *   move starts; what moved stays moved).
 */
export async function publishStaged(moves: readonly { staged: string; final: string }[]): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < moves.length && errors.length === 0) {
      const m = moves[next++];
      try {
        await (await backendFor(m.final)).move(m.staged, m.final);
        forgetStaging(m.staged);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PUBLISH_CONCURRENCY, moves.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/** Deletes staged outputs that will not be published (a failed run); never throws. */
export async function discardStaged(staged: readonly string[]): Promise<void> {
  await Promise.allSettled(
    staged.map(async (s) => {
      await removeLocation(s);
      forgetStaging(s);
    }),
  );
}

/**
 * Deletes the staged objects directly under `dir` (an s3:// prefix) that a killed run left, i.e.
 * those made more than `maxAgeMs` ago. Resolves with how many were deleted. A no-op for local
 * folders (OutputSet cleans its own temp files there).
 */
export async function removeStaleStaging(dir: string, maxAgeMs = STALE_STAGING_MS, now = Date.now()): Promise<number> {
  if (!isS3Uri(dir)) return 0;
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  let removed = 0;
  try {
    for await (const e of listLocation(prefix)) {
      if (e.location.slice(prefix.length).includes('/')) continue;
      const at = stagedAt(e.location);
      if (at !== undefined && now - at > maxAgeMs) {
        await removeLocation(e.location);
        removed++;
      }
    }
  } catch (e) {
    // A missing bucket is an output problem here, not a missing input.
    if (e instanceof DbpruneError && e.code === ErrorCodes.INPUT_NOT_FOUND) throw new DbpruneError(ErrorCodes.STORAGE, e.message, e.context, { cause: e });
    throw e;
  }
  return removed;
}

/** Writes a whole (small) output at once: stats.json, report.html, a subset .npy. */
export async function writeLocation(location: string, data: string | Uint8Array): Promise<void> {
  const out = await openWrite(location);
  try {
    await new Promise<void>((resolve, reject) => {
      out.stream.once('error', reject);
      out.stream.end(data, () => resolve());
    });
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}

/**
 * Aborts every output opened with {@link openWrite} and not yet committed (temp files removed,
 * multipart uploads aborted). The CLI calls it when a command fails, so a failed run leaves no
 * partial object behind.
 */
export async function abortPendingWrites(): Promise<void> {
  const open = [...pending];
  pending.clear();
  await Promise.allSettled(open.map((o) => o.abort()));
}
