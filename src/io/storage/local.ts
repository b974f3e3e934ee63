/** The local-disk storage backend (node:fs). */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import type { OpenReadOptions, OutputObject, RandomAccessReader, StorageBackend, StorageEntry, StorageStat } from './types.js';

function notFound(path: string, e: unknown): DbpruneError {
  return new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${path}: no such file`, { file: path }, { cause: e });
}

function isEnoent(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Streams a file (callers check their own AbortSignal between chunks). */
async function openRead(path: string, opts: OpenReadOptions = {}): Promise<Readable> {
  // Open first so that a missing file fails here, not on the first read.
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw isEnoent(e) ? notFound(path, e) : e;
  });
  return createReadStream('', {
    fd: fh,
    start: opts.start,
    end: opts.end === undefined ? undefined : opts.end - 1,
    highWaterMark: 1 << 20,
  });
}

async function openRandomAccess(path: string): Promise<RandomAccessReader> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw isEnoent(e) ? notFound(path, e) : e;
  });
  const size = (await fh.stat()).size;
  return {
    location: path,
    size,
    async read(buf, position) {
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
    },
    close: () => fh.close(),
  };
}

async function statLocal(path: string): Promise<StorageStat | undefined> {
  try {
    const s = await stat(path);
    return { kind: s.isDirectory() ? 'directory' : 'file', size: s.isDirectory() ? 0 : s.size };
  } catch {
    return undefined;
  }
}

async function* listLocal(prefix: string): AsyncGenerator<StorageEntry> {
  let entries;
  try {
    entries = await readdir(prefix, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const full = join(prefix, e.name);
    const s = await statLocal(full);
    if (s?.kind === 'directory') yield* listLocal(full);
    else if (s) yield { location: full, size: s.size };
  }
}

/**
 * Writes to a temp file beside the target (`.name.tmp-<pid>-<n>`) and renames it into place at
 * commit, so a reader never sees half a file and a failed run leaves none.
 */
let tmpCounter = 0;
async function openWrite(path: string): Promise<OutputObject> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${tmpCounter++}`);
  const stream = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  await once(stream, 'open'); // a missing folder or a refused file fails here, not on the first write
  let state: 'open' | 'committed' | 'aborted' = 'open';
  return {
    location: path,
    stream,
    async commit() {
      if (state !== 'open') return;
      if (!stream.writableEnded) stream.end();
      await finished(stream);
      await rename(tmp, path);
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      stream.destroy();
      await finished(stream).catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    },
  };
}

export const localBackend: StorageBackend = {
  openRead,
  openRandomAccess,
  stat: statLocal,
  list: listLocal,
  openWrite,
  remove: (path) => rm(path, { force: true }),
  move: (from, to) => rename(from, to),
};
