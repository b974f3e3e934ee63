/**
 * Where ingest's manifest segments go (OUT in state-store.ts): a local folder or an s3:// prefix.
 * The state store's commit protocol and recovery call this interface; the two implementations
 * differ in how a segment reaches its final name and in what locks OUT.
 *
 * - **Local folder**: the segment is written to `OUT/.part-<seq>.<ext>.tmp`, fsynced, renamed to
 *   `OUT/part-<seq>.<ext>` (never over an existing one) and OUT is fsynced. OUT is locked by
 *   `OUT/.dbprune-ingest.lock` (a pid lock, like STATE/LOCK).
 * - **s3:// prefix**: the segment is streamed straight to its final, deterministic name
 *   `OUT/part-<seq>.<ext>` as a multipart upload (the manifest writer's; the object appears only
 *   when the writer closes, i.e. before the local commit record that names it); its size and
 *   SHA-256 for the record are read back over a streamed GET. An object numbered above the last
 *   valid commit is an orphan of a killed run: recovery deletes it (and the next commit of that
 *   number would overwrite it anyway); readers never count it (they stop at `committed.json`'s seq).
 *   There is no lock object (S3 has no atomic create-if-absent that every store supports): the
 *   state folder's `STATE/LOCK` is the lock, and the owner record refuses another state folder.
 *   The owner record and `committed.json` are PUT whole.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { hashFile } from '../../src/io/hash.js';
import { pathExists } from '../../src/io/fs.js';
import { prepareOutputDir } from '../../src/io/output-set.js';
import { hashLocation } from '../../src/io/storage/hash-location.js';
import { isS3Uri, joinLocation, listLocation, readLocation, removeLocation, statLocation, writeLocation } from '../../src/io/storage/index.js';
import { PART_RE, type FileSum } from './commit-record.js';
import { checkFileSum, checkSum, fsyncDir, fsyncFile, stateError, writeStateFile } from './durable.js';
import { releasePidLock, takePidLock } from './pid-lock.js';

/** Names of the output folder's lock and owner files (hidden: readers take `part-*` only). */
export const OUT_LOCK = '.dbprune-ingest.lock';
export const OUT_OWNER = '.dbprune-ingest.json';

/** OUT's owner record: the state folder whose commits OUT holds. */
export interface OwnerRecord {
  stateId?: unknown;
  state?: unknown;
}

export interface SegmentOut {
  /** OUT: a local folder or an s3:// prefix (no trailing slash). */
  readonly location: string;
  /** Where the owner record is (for messages). */
  readonly ownerLocation: string;
  /** Creates OUT and takes its lock (local), or checks that the bucket is there (s3://). */
  lock(): Promise<void>;
  /** Releases what {@link lock} took. */
  unlock(): Promise<void>;
  /** Removes what a killed writer left that is never a committed segment (temp files). */
  removeLeftovers(): Promise<void>;
  /** Names (not locations) of the `part-<seq>.<ext>` segments in OUT, sorted. */
  listParts(): Promise<string[]>;
  /** The owner record, or undefined when OUT has none. @throws ERR_DBPRUNE_STATE when unreadable. */
  readOwner(): Promise<OwnerRecord | undefined>;
  writeOwner(record: OwnerRecord): Promise<void>;
  /** Where the caller writes segment `file` before {@link publish}: a temp file in OUT, or (s3://) the final object. */
  writePath(file: string): string;
  /** Puts a written segment under its final name durably; resolves with its size and SHA-256. */
  publish(writtenPath: string, file: string): Promise<Omit<FileSum, 'file'>>;
  /** Checks a committed segment's size and SHA-256. @throws ERR_DBPRUNE_STATE when missing or different. */
  check(file: string, sum: Omit<FileSum, 'file'>): Promise<void>;
  /** Deletes a segment (no error when it is not there). */
  remove(file: string): Promise<void>;
  /** Makes the removals durable (fsync of the folder; nothing on s3://). */
  sync(): Promise<void>;
  /** Replaces `committed.json` whole. */
  writeIndex(text: string): Promise<void>;
}

/** The {@link SegmentOut} for `location` (an s3:// URI or a local folder). */
export function segmentOut(location: string): SegmentOut {
  return isS3Uri(location) ? s3SegmentOut(location.replace(/\/+$/, '')) : localSegmentOut(location);
}

function parseOwner(location: string, text: string): OwnerRecord {
  try {
    return JSON.parse(text) as OwnerRecord;
  } catch (e) {
    throw stateError(location, `unreadable owner record (${(e as Error).message})`, e);
  }
}

function localSegmentOut(dir: string): SegmentOut {
  const ownerPath = join(dir, OUT_OWNER);
  return {
    location: dir,
    ownerLocation: ownerPath,
    async lock() {
      await mkdir(dir, { recursive: true });
      await takePidLock(join(dir, OUT_LOCK), `output folder ${dir}`);
    },
    unlock: () => releasePidLock(join(dir, OUT_LOCK)),
    async removeLeftovers() {
      await prepareOutputDir(dir); // temporary files of atomic writes a killed process left
      for (const name of await readdir(dir)) {
        if (name.startsWith('.part-') && name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
      }
    },
    listParts: async () => (await readdir(dir)).filter((n) => PART_RE.test(n)).sort(),
    async readOwner() {
      let text: string;
      try {
        text = await readFile(ownerPath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw stateError(ownerPath, `unreadable owner record (${(e as Error).message})`, e);
      }
      return parseOwner(ownerPath, text);
    },
    writeOwner: (record) => writeStateFile(ownerPath, `${JSON.stringify(record)}\n`),
    writePath: (file) => join(dir, `.${file}.tmp`),
    async publish(writtenPath, file) {
      await fsyncFile(writtenPath);
      const sum = await hashFile(writtenPath);
      if (await pathExists(join(dir, file))) {
        throw stateError(join(dir, file), "a segment of this number exists already and is not this state's to overwrite");
      }
      await rename(writtenPath, join(dir, file));
      await fsyncDir(dir);
      return sum;
    },
    check: (file, sum) => checkFileSum(join(dir, file), sum),
    remove: (file) => rm(join(dir, file), { force: true }),
    sync: () => fsyncDir(dir),
    writeIndex: (text) => writeStateFile(join(dir, 'committed.json'), text),
  };
}

function s3SegmentOut(prefix: string): SegmentOut {
  const at = (file: string): string => joinLocation(prefix, file);
  const ownerUri = at(OUT_OWNER);
  return {
    location: prefix,
    ownerLocation: ownerUri,
    // A missing bucket fails here: ERR_DBPRUNE_STORAGE naming the prefix.
    lock: () => prepareOutputDir(prefix),
    unlock: () => Promise.resolve(),
    removeLeftovers: () => Promise.resolve(), // objects appear whole; orphans above the last commit go in recovery
    async listParts() {
      const names: string[] = [];
      for await (const e of listLocation(`${prefix}/`)) {
        const name = e.location.slice(prefix.length + 1);
        if (!name.includes('/') && PART_RE.test(name)) names.push(name);
      }
      return names.sort();
    },
    async readOwner() {
      let bytes: Buffer;
      try {
        bytes = await readLocation(ownerUri);
      } catch (e) {
        if (e instanceof DbpruneError && e.code === ErrorCodes.INPUT_NOT_FOUND) return undefined;
        throw e;
      }
      return parseOwner(ownerUri, bytes.toString('utf8'));
    },
    writeOwner: (record) => writeLocation(ownerUri, `${JSON.stringify(record)}\n`),
    writePath: at,
    async publish(writtenPath, file) {
      if (writtenPath !== at(file)) throw stateError(at(file), `the segment was written to ${writtenPath}, not under its final name`);
      // Read back what the store holds: the sums the commit record will name.
      return hashLocation(at(file));
    },
    async check(file, sum) {
      const uri = at(file);
      // Only "not there" makes the commit invalid: an unreachable store is a failure of this run,
      // not a corrupt commit (recovery would otherwise fall back and delete newer segments).
      const st = await statLocation(uri);
      if (st?.kind !== 'file') throw stateError(uri, 'missing (no such object)');
      if (st.size !== sum.bytes) throw stateError(uri, `size ${st.size} != recorded ${sum.bytes} (half-written)`);
      checkSum(uri, await hashLocation(uri), sum);
    },
    remove: (file) => removeLocation(at(file)),
    sync: () => Promise.resolve(),
    writeIndex: (text) => writeLocation(at('committed.json'), text),
  };
}

