/**
 * The shared work dir of a distributed run, behind one small interface so that another storage
 * (s3://) can slot in: every read, atomic write, listing and removal the cluster code does goes
 * through here. This implementation is a local (or network-mounted) file system.
 *
 * Atomicity: `write` puts the bytes in a unique temp file beside the target and renames it, so a
 * reader sees either nothing or the whole file, and two executions of the same job never interleave.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { DbpruneError, ErrorCodes, UsageError } from '../core/errors.js';
import { pathExists } from '../io/fs.js';
import { isS3Uri } from '../io/storage/index.js';
import { S3WorkStore } from './s3-work-store.js';

/** Suffix of in-flight temp files (swept by {@link WorkStore.sweepTemp}). */
export const TEMP_SUFFIX = '.tmp';

export interface WorkStore {
  /** Where the store lives (for messages and for workers: they open the same root). */
  readonly root: string;
  read(path: string): Promise<Buffer>;
  /** The file, or undefined when it does not exist. */
  readIfExists(path: string): Promise<Buffer | undefined>;
  /** The file as text, or undefined when it does not exist. */
  readTextIfExists(path: string): Promise<string | undefined>;
  /** Writes the whole file atomically (temp + rename), creating folders. */
  write(path: string, data: Uint8Array | string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Names (not paths) of the entries of a folder; [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Removes a file or folder tree; no error when missing. */
  remove(path: string): Promise<void>;
  /** Removes temp files left under `dir` (by killed writers); returns how many. */
  sweepTemp(dir: string): Promise<number>;
}

/** Opens the work dir at `root` (a path or s3:// prefix every worker sees; s3: see s3-work-store.ts). */
export function openWorkStore(root: string): WorkStore {
  if (isS3Uri(root)) return new S3WorkStore(root.replace(/\/+$/, ''));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(root)) throw new UsageError(`--work-dir ${root}: only file-system paths and s3:// prefixes are supported`, { option: 'work-dir' });
  return new LocalWorkStore(isAbsolute(root) ? root : resolve(root));
}

class LocalWorkStore implements WorkStore {
  constructor(readonly root: string) {}

  private full(path: string): string {
    return join(this.root, path);
  }

  async read(path: string): Promise<Buffer> {
    try {
      return await readFile(this.full(path));
    } catch (e) {
      throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `cannot read ${this.full(path)}: ${(e as Error).message}`, { file: this.full(path) }, { cause: e });
    }
  }

  async readTextIfExists(path: string): Promise<string | undefined> {
    return (await this.readIfExists(path))?.toString('utf8');
  }

  async readIfExists(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.full(path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `cannot read ${this.full(path)}: ${(e as Error).message}`, { file: this.full(path) }, { cause: e });
    }
  }

  async write(path: string, data: Uint8Array | string): Promise<void> {
    const target = this.full(path);
    const tmp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`;
    try {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `cannot write ${target}: ${(e as Error).message}`, { file: target }, { cause: e });
    }
  }

  exists(path: string): Promise<boolean> {
    return pathExists(this.full(path));
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await readdir(this.full(dir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async remove(path: string): Promise<void> {
    await rm(this.full(path), { recursive: true, force: true });
  }

  async sweepTemp(dir: string): Promise<number> {
    let removed = 0;
    const walk = async (d: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(this.full(d), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const rel = join(d, e.name);
        if (e.isDirectory()) await walk(rel);
        else if (e.name.endsWith(TEMP_SUFFIX)) {
          await rm(this.full(rel), { force: true });
          removed++;
        }
      }
    };
    await walk(dir);
    return removed;
  }
}
