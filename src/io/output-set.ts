/**
 * The output-replacement rule, in one place: every file a command writes goes to a temporary name
 * beside its final path (`.NAME.tmp-PID-N`, same folder, so the rename is atomic), and the set is
 * renamed into place only by {@link OutputSet.commit}, after everything was written and fsynced.
 * {@link OutputSet.abort} (any failure, SIGINT/SIGTERM) deletes the temporary files, so a failed run
 * leaves the previous results exactly as they were and no debris beside them.
 *
 *     const set = new OutputSet();
 *     await writeSomething(set.file(join(out, 'manifest.parquet')));   // write to the temp path
 *     await set.writeFile(join(out, 'stats.json'), json);
 *     set.replaces(join(out, 'report.html'));   // an earlier run's output this run does not write
 *     await set.commit();                        // or, on failure: await set.abort()
 *
 * {@link writeFileAtomic} is the set of one file. Ingest's state store has its own commit protocol
 * (journal + commit record, state-store.ts) and does not use this.
 *
 * s3:// final paths (src/io/storage) follow the same rule as far as S3 allows: `file()` returns a
 * staged name beside the final one (`.NAME.tmp-PID-TIME-N`, storage/staging.ts), which a writer
 * streams to as a multipart upload; {@link OutputSet.commit} moves every staged object into place
 * (server-side copies, then the staged objects are deleted) and deletes the stale ones;
 * {@link OutputSet.abort} aborts the uploads still open and deletes the staged objects. So a failed
 * run leaves the earlier objects as they were; only during the commit's copies can a reader see
 * some objects new and others old (S3 has no multi-object rename).
 */
import { closeSync, openSync, fsyncSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { abortPendingWrites, discardStaged, isS3Uri, publishStaged, removeLocation, removeStaleStaging, stagingLocation, writeLocation } from './storage/index.js';

/** Temporary file → final path, for every open set in this process ({@link removeTempFilesSync}, error messages). */
const liveTempFiles = new Map<string, string>();
let tempCounter = 0;

/** Wraps a file-system error as ERR_DBPRUNE_OUTPUT naming the file (ENOSPC, EACCES, ENOTDIR, EEXIST, ...). */
export function outputError(file: string, e: unknown, what = 'cannot write'): DbpruneError {
  if (e instanceof DbpruneError) return e;
  const err = e as NodeJS.ErrnoException;
  const final = liveTempFiles.get(file) ?? file; // name the file the user asked for, not its temporary name
  const message = (err?.message ?? String(e)).replace(/, (write|open|close) '[^']*'$/, '');
  return new DbpruneError(ErrorCodes.OUTPUT, `${what} ${final}: ${message}`, { file: final, errno: err?.code }, { cause: e });
}

const TEMP_NAME = /^\..+\.tmp-(\d+)-\d+$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Creates the output folder (and parents) before anything is written to it, and removes the
 * temporary files that a killed run (SIGKILL, power loss) left there: those of processes that no
 * longer exist on this machine (a folder shared with another host may hold a live one's: only
 * `.NAME.tmp-PID-N` names are considered).
 * @throws ERR_DBPRUNE_OUTPUT (context.file) when `dir` names a file, or cannot be created.
 */
export async function prepareOutputDir(dir: string): Promise<void> {
  if (isS3Uri(dir)) {
    await removeStaleStaging(dir); // a prefix needs no creating; a killed run's staged objects go
    return;
  }
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('exists and is not a folder'), { code: 'ENOTDIR' });
    for (const name of await readdir(dir)) {
      const m = TEMP_NAME.exec(name);
      if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await rm(join(dir, name), { force: true });
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a file of that name (or a file in its path) exists; give a folder' : (e as Error).message;
    throw new DbpruneError(ErrorCodes.OUTPUT, `output folder ${dir}: ${why}`, { file: dir, errno: code }, { cause: e });
  }
}

/** The files of one run, replaced together at {@link commit} (see the module comment). */
export class OutputSet {
  /** Final path → temporary path, in the order reserved (renamed in that order). */
  private readonly files = new Map<string, string>();
  private readonly stale = new Set<string>();
  /** s3:// final path → its staged object, in the order reserved. */
  private readonly remote = new Map<string, string>();
  private state: 'open' | 'committed' | 'aborted' = 'open';

  /** Final paths reserved so far. */
  get paths(): string[] {
    return [...this.files.keys(), ...this.remote.keys()];
  }

  /** Reserves `finalPath` and returns the temporary path to write it to (same folder; for s3:// a staged object beside it). */
  file(finalPath: string): string {
    if (this.state !== 'open') throw new DbpruneError(ErrorCodes.INTERNAL, `output set already ${this.state}`, { file: finalPath });
    if (isS3Uri(finalPath)) {
      const staged = this.remote.get(finalPath) ?? stagingLocation(finalPath);
      this.remote.set(finalPath, staged);
      return staged;
    }
    const known = this.files.get(finalPath);
    if (known) return known;
    const tmp = join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${++tempCounter}`);
    this.files.set(finalPath, tmp);
    liveTempFiles.set(tmp, finalPath);
    return tmp;
  }

  /** Writes `data` to the temporary file of `finalPath`; resolves with `finalPath`. */
  async writeFile(finalPath: string, data: string | Uint8Array): Promise<string> {
    if (isS3Uri(finalPath)) {
      await writeLocation(this.file(finalPath), data);
      return finalPath;
    }
    const tmp = this.file(finalPath);
    try {
      await writeFile(tmp, data, { flag: 'w' });
    } catch (e) {
      throw outputError(finalPath, e);
    }
    return finalPath;
  }

  /** At commit, deletes `finalPath` unless this set writes it: an earlier run's output that would otherwise sit beside the new ones. */
  replaces(finalPath: string): void {
    this.stale.add(finalPath);
  }

  /**
   * fsyncs every temporary file, renames each over its final path, removes the stale paths and
   * fsyncs the folders. Resolves with the final paths.
   * @throws ERR_DBPRUNE_OUTPUT naming the file (the temporary files left are removed).
   */
  async commit(): Promise<string[]> {
    if (this.state !== 'open') throw new DbpruneError(ErrorCodes.INTERNAL, `output set already ${this.state}`);
    try {
      for (const [finalPath, tmp] of this.files) await syncFile(tmp, finalPath);
      for (const [finalPath, tmp] of this.files) {
        try {
          await rename(tmp, finalPath);
        } catch (e) {
          throw outputError(finalPath, e, 'cannot rename into place');
        }
        liveTempFiles.delete(tmp);
      }
      await publishStaged([...this.remote].map(([final, staged]) => ({ staged, final })));
      for (const p of this.stale) {
        if (this.files.has(p) || this.remote.has(p)) continue;
        try {
          if (isS3Uri(p)) await removeLocation(p);
          else await rm(p, { force: true });
        } catch (e) {
          throw outputError(p, e, 'cannot remove the earlier run\'s');
        }
      }
      for (const dir of new Set([...this.files.keys(), ...this.stale].filter((p) => !isS3Uri(p)).map((p) => dirname(p)))) syncDir(dir);
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.state = 'committed';
    return this.paths;
  }

  /** Deletes the temporary files (never the final paths). Idempotent; never throws. */
  async abort(): Promise<void> {
    if (this.state === 'committed') return;
    this.state = 'aborted';
    for (const tmp of this.files.values()) {
      if (!liveTempFiles.has(tmp)) continue;
      await rm(tmp, { force: true }).catch(() => undefined);
      liveTempFiles.delete(tmp);
    }
    if (this.remote.size > 0) {
      await abortPendingWrites().catch(() => undefined);
      await discardStaged([...this.remote.values()]);
    }
  }
}

async function syncFile(tmp: string, finalPath: string): Promise<void> {
  let fh;
  try {
    fh = await open(tmp, 'r');
    await fh.sync();
  } catch (e) {
    throw outputError(finalPath, e);
  } finally {
    await fh?.close();
  }
}

/** fsyncs a folder so the renames in it survive a crash; a no-op where folders cannot be opened. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not supported here (e.g. Windows): the renames are still atomic, only less durable
  }
}

/** Writes one file atomically: an {@link OutputSet} of one. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<string> {
  const set = new OutputSet();
  try {
    await set.writeFile(path, data);
    await set.commit();
  } catch (e) {
    await set.abort();
    throw e;
  }
  return path;
}

/**
 * Removes the temporary files of every set still open in this process, synchronously: for a
 * forced exit (second SIGINT) or an `exit` handler, where no promise will run any more.
 */
export function removeTempFilesSync(): void {
  for (const tmp of liveTempFiles.keys()) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
  liveTempFiles.clear();
}
