/**
 * Durable state for long-running ingestion (`dbprune ingest`): an append-only, checksummed input
 * journal and atomic commits of (manifest segment, state snapshot) pairs.
 *
 * Layout (STATE is the state folder, OUT the output folder or s3:// prefix; `<seq>` is the 12-digit
 * commit number):
 *
 *     STATE/LOCK                         pid of the process that owns the folder (stale locks are taken over)
 *     STATE/id                           a random identity of this state folder (written once)
 *     STATE/config.json                  the configuration the folder was created with (checked on restart)
 *     STATE/journal.jsonl                one line per accepted input: `<json>\t<sha256(json)[0:16]>\n`
 *     STATE/inputs/<sha256>.<ext>        bodies of URL batches posted to the listener (fsynced before journaling)
 *     STATE/states/state-<seq>.json      the state a commit ends on (JSON, opaque to this module)
 *     STATE/states/extra-<seq>/          optional extra state files (the SemDeDup index)
 *     STATE/commits/commit-<seq>.json    commit records; the newest valid one is the current state
 *     STATE/corrupt/                     commit records found invalid at start, kept for inspection
 *     STATE/tmp/                         temporary files (removed at start; atomic writes leave `.NAME.tmp-PID-N` beside
 *                                        their target, removed at start when PID is dead: src/io/output-set.ts)
 *     OUT/part-<seq>.<ext>               the manifest segment committed by commit <seq>
 *     OUT/committed.json                 `{ seq, segments }` of the last commit, for readers (derived)
 *     OUT/.dbprune-ingest.lock           pid of the process writing OUT (like STATE/LOCK; local OUT only)
 *     OUT/.dbprune-ingest.json           `{ stateId, state }`: the state folder whose commits OUT holds
 *
 * **Commit protocol** ({@link StateStore.commit}): the segment is put under its final name
 * `OUT/part-<seq>.<ext>` (segment-out.ts: locally written to `OUT/.part-<seq>.<ext>.tmp`, fsynced,
 * renamed, OUT fsynced; on s3:// a multipart upload completed at that name, then read back for its
 * sums); the state JSON is written
 * atomically into `STATE/states` and the extra files (written to `STATE/tmp`) are fsynced and
 * renamed there, and the folder is fsynced; then the commit record — naming the segment, state and
 * extra files with their sizes and SHA-256 — is written atomically as
 * `STATE/commits/commit-<seq>.json`, which ends the commit. Every whole-file write here is the
 * project's one atomic write (`writeFileAtomic`, src/io/output-set.ts: a temporary file beside the
 * target, fsynced, renamed, folder fsynced; see durable.ts). **The rename of the commit record is the commit point**: a kill
 * at any instant leaves either the previous commit or this one, never a mix.
 *
 * **Recovery** ({@link StateStore.open}): commit records are tried newest first. A record is valid
 * when its own checksum matches, its state file and extra files exist with the recorded sizes and
 * checksums, and its segment (if any) exists with the recorded size and checksum. Invalid records
 * are reported (`problems`, code ERR_DBPRUNE_STATE, each naming the file and the reason) and moved
 * to `STATE/corrupt/`; the newest valid one is used (an object store that cannot be reached is a
 * failure of the run, not an invalid record). Segments, states and records numbered after
 * it are uncommitted and deleted, as are temp files. Readers of OUT take `part-*` files numbered up
 * to `committed.json`'s `seq` (a file numbered above it may belong to a commit in flight).
 *
 * **One writer per output folder.** OUT is locked like STATE (an s3:// OUT has no lock object: the
 * state folder's LOCK is the lock), and it records which state folder
 * owns its segments: a state folder that is not the owner (a second ingest with another `--state`, or
 * a state folder deleted and started afresh) is refused with ERR_DBPRUNE_STATE instead of deleting or
 * overwriting segments committed by another state. A local commit never renames over an existing
 * segment; on s3:// the segment of a new number is written at its final name (recovery removed
 * any orphan of that number).
 *
 * Only the newest `keep` commits keep their state files (older records and states are deleted;
 * segments are never deleted), so a corrupt newest state falls back to one of those.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { integerOption, stringOption, checkOption } from '../../src/core/validate.js';
import { hashFile, sha256Hex } from '../../src/io/hash.js';
import { pathExists } from '../../src/io/fs.js';
import { prepareOutputDir } from '../../src/io/output-set.js';
import { COMMIT_RE, PART_RE, recordBody, seqName, STATE_RE, type CommitRecord, type FileSum, type RecoveredCommit, type StateProblem } from './commit-record.js';
import { checkFileSum, fsyncDir, fsyncFile, stateError, writeStateFile } from './durable.js';
import { releasePidLock, takePidLock } from './pid-lock.js';
import { segmentOut, type SegmentOut } from './segment-out.js';

export type { InputKind, JournalEntry } from './journal.js';
export { InputJournal } from './journal.js';
export type { CommitRecord, FileSum, RecoveredCommit, StateProblem } from './commit-record.js';

export { OUT_LOCK, OUT_OWNER } from './segment-out.js';

export interface StateStoreOptions {
  /** State folder (created). Required. */
  dir: string;
  /** Output folder (created) or s3:// prefix for manifest segments. Required. */
  outDir: string;
  /** Segment file extension without dot (`parquet`, `arrow`, `jsonl`). Required. */
  segmentExt: string;
  /** Commits whose state files are kept (fallbacks for a corrupt newest state). Default 3, 1..1000. */
  keep?: number;
  /** Non-fatal reports (recovery problems) for the user. */
  warn?: (line: string) => void;
}

/**
 * Atomic commits of manifest segments and state snapshots, and recovery of the last good commit
 * (see the module comment for the layout, protocol and recovery rules). One process per folder:
 * `STATE/LOCK` holds the owner's pid; {@link open} throws ERR_DBPRUNE_STATE when a live process
 * holds it and takes over a stale one.
 */
export class StateStore<T = unknown> {
  readonly dir: string;
  readonly outDir: string;
  readonly segmentExt: string;
  readonly keep: number;
  /** The commit resumed from, or null on a fresh start. */
  last: RecoveredCommit<T> | null = null;
  /** Invalid commit records found at start (each was skipped and moved to STATE/corrupt). */
  readonly problems: StateProblem[] = [];
  private seq = 0;
  private kept: number[] = [];
  private committedSegments: string[] = [];
  private readonly out: SegmentOut;

  private constructor(o: StateStoreOptions, keep: number) {
    this.dir = o.dir;
    this.out = segmentOut(o.outDir);
    this.outDir = this.out.location;
    this.segmentExt = o.segmentExt;
    this.keep = keep;
  }

  /** Sequence number the next commit will get. */
  get nextSeq(): number {
    return this.seq + 1;
  }

  /**
   * Where the caller writes the next segment before {@link commit}: a temp file in a local OUT
   * (same file system), or on s3:// the segment's final object (it appears when the writer closes).
   */
  segmentTempPath(): string {
    return this.out.writePath(this.nextSegmentFile());
  }

  private nextSegmentFile(): string {
    return `part-${seqName(this.nextSeq)}.${this.segmentExt}`;
  }

  /** A fresh folder in STATE/tmp for the next commit's extra files (e.g. a dedup snapshot). */
  extraTempDir(): string {
    return join(this.dir, 'tmp', `extra-${seqName(this.nextSeq)}`);
  }

  /** The committed segment files (names in OUT), oldest first, as far as this process knows them. */
  get segments(): readonly string[] {
    return this.committedSegments;
  }

  /**
   * Opens a state folder: takes the lock, removes temp files, finds the newest valid commit
   * (`last`), reports and sets aside invalid ones (`problems`, also through `warn`), and deletes
   * everything numbered after the commit resumed from. Options: see {@link StateStoreOptions}.
   *
   * @throws ERR_DBPRUNE_INVALID_OPTION for bad options; ERR_DBPRUNE_STATE when another live process
   *   holds the folder.
   */
  static async open<T = unknown>(o: StateStoreOptions): Promise<StateStore<T>> {
    checkOption(o !== null && typeof o === 'object', 'options', 'an object', o);
    stringOption(o.dir, 'dir');
    stringOption(o.outDir, 'outDir');
    checkOption(typeof o.segmentExt === 'string' && /^[a-z]+$/.test(o.segmentExt), 'segmentExt', 'a lower-case extension', o.segmentExt);
    const keep = integerOption(o.keep, 'keep', { default: 3, min: 1, max: 1000 });
    const s = new StateStore<T>(o, keep);
    for (const d of ['commits', 'states', 'tmp', 'inputs']) await mkdir(join(o.dir, d), { recursive: true });
    await takePidLock(join(o.dir, 'LOCK'), o.dir);
    try {
      await s.out.lock();
    } catch (e) {
      await releasePidLock(join(o.dir, 'LOCK'));
      throw e;
    }
    try {
      await rm(join(o.dir, 'tmp'), { recursive: true, force: true });
      await mkdir(join(o.dir, 'tmp'), { recursive: true });
      // temporary files of atomic writes (writeStateFile) a killed process left
      for (const d of [o.dir, join(o.dir, 'commits'), join(o.dir, 'states'), join(o.dir, 'inputs')]) await prepareOutputDir(d);
      await s.out.removeLeftovers();
      await s.claimOutput();
      await s.recover(o.warn);
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  /**
   * Makes sure OUT belongs to this state folder: reads (or creates) `STATE/id` and OUT's owner
   * record. Refuses (ERR_DBPRUNE_STATE) an OUT owned by another state folder, and an OUT that holds
   * segments while this state folder has never committed (a deleted state, or segments from
   * elsewhere): recovery would delete or overwrite them.
   */
  private async claimOutput(): Promise<void> {
    const idPath = join(this.dir, 'id');
    let id = (await readFile(idPath, 'utf8').catch(() => '')).trim();
    if (!/^[0-9a-f]{32}$/.test(id)) {
      id = randomBytes(16).toString('hex');
      await writeStateFile(idPath, `${id}\n`);
    }
    const ownerPath = this.out.ownerLocation;
    const owner = await this.out.readOwner();
    const parts = await this.out.listParts();
    if (owner?.stateId === id) return;
    const refuse = (why: string): DbpruneError =>
      new DbpruneError(
        ErrorCodes.STATE,
        `${this.outDir} holds ${parts.length} committed segment(s) ${why}; refusing to delete or overwrite them: resume with the state folder that wrote them, or give another --out`,
        { file: ownerPath, out: this.outDir, state: this.dir, segments: parts.length },
      );
    if (owner !== undefined && parts.length > 0) {
      throw refuse(`of another state folder (${String(owner.state)}, id ${String(owner.stateId)}), not of ${this.dir}`);
    }
    const hasCommits = (await readdir(join(this.dir, 'commits'))).some((n) => COMMIT_RE.test(n));
    if (owner === undefined && parts.length > 0 && !hasCommits) {
      throw refuse(`that the state folder ${this.dir} does not know (it has no commit)`);
    }
    // a fresh OUT, an empty one, or one written by this state before owner records existed
    await this.out.writeOwner({ stateId: id, state: this.dir });
  }

  /** Releases the locks (call at the end; a crashed owner's locks are taken over by the next start). */
  async close(): Promise<void> {
    await this.out.unlock();
    await releasePidLock(join(this.dir, 'LOCK'));
  }

  private async recover(warn: ((line: string) => void) | undefined): Promise<void> {
    const commitsDir = join(this.dir, 'commits');
    const seqs = (await readdir(commitsDir))
      .map((n) => COMMIT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
    let chosen: RecoveredCommit<T> | null = null;
    const valid: number[] = [];
    for (const seq of seqs) {
      const file = join(commitsDir, `commit-${seqName(seq)}.json`);
      if (chosen) {
        valid.push(seq); // older records: kept as fallbacks, not re-verified
        continue;
      }
      try {
        chosen = await this.verify(file, seq);
        valid.push(seq);
      } catch (e) {
        // an unreachable object store (or refused credentials) is this run's failure, not a corrupt commit
        if (e instanceof DbpruneError && e.code !== ErrorCodes.STATE) throw e;
        const reason = e instanceof DbpruneError ? (typeof e.context.reason === 'string' ? e.context.reason : e.message) : String(e);
        this.problems.push({ code: ErrorCodes.STATE, file, reason });
        warn?.(`dbprune: state ${file} is invalid (${reason}); falling back to the previous commit [${ErrorCodes.STATE}]`);
        await mkdir(join(this.dir, 'corrupt'), { recursive: true });
        await rename(file, join(this.dir, 'corrupt', `commit-${seqName(seq)}.json.${Date.now()}`)).catch(() => undefined);
      }
    }
    const lastSeq = chosen?.record.seq ?? 0;
    if (!chosen && seqs.length > 0) {
      warn?.(`dbprune: no valid commit in ${commitsDir}; starting from the beginning of the journal [${ErrorCodes.STATE}]`);
    }
    // Everything numbered after the commit resumed from is uncommitted.
    for (const name of await this.out.listParts()) {
      const m = PART_RE.exec(name) as RegExpExecArray;
      if (Number(m[1]) > lastSeq) await this.out.remove(name);
      else this.committedSegments.push(name);
    }
    const statesDir = join(this.dir, 'states');
    for (const name of await readdir(statesDir)) {
      const m = STATE_RE.exec(name);
      if (m && Number(m[1]) > lastSeq) await rm(join(statesDir, name), { recursive: true, force: true });
    }
    for (const name of await readdir(commitsDir)) {
      const m = COMMIT_RE.exec(name);
      if (m && Number(m[1]) > lastSeq) await rm(join(commitsDir, name), { force: true });
    }
    await this.out.sync();
    await fsyncDir(statesDir);
    await fsyncDir(commitsDir);
    this.seq = lastSeq;
    this.kept = valid.filter((s) => s <= lastSeq).sort((a, b) => a - b);
    this.last = chosen;
    if (chosen) await this.writeCommittedIndex();
  }

  /** Checks one commit record and everything it names; returns it with the parsed state. */
  private async verify(file: string, seq: number): Promise<RecoveredCommit<T>> {
    let rec: CommitRecord;
    try {
      rec = JSON.parse(await readFile(file, 'utf8')) as CommitRecord;
    } catch (e) {
      throw stateError(file, `unreadable or truncated commit record (${(e as Error).message})`, e);
    }
    const { checksum, ...body } = rec;
    if (rec.version !== 1 || rec.seq !== seq || typeof checksum !== 'string' || sha256Hex(recordBody(body)) !== checksum) {
      throw stateError(file, 'commit record checksum mismatch');
    }
    const statePath = join(this.dir, 'states', rec.state.file);
    await checkFileSum(statePath, rec.state);
    let state: T;
    try {
      state = JSON.parse(await readFile(statePath, 'utf8')) as T;
    } catch (e) {
      throw stateError(statePath, `state JSON does not parse (${(e as Error).message})`, e);
    }
    let extraDir: string | null = null;
    if (rec.extra) {
      extraDir = join(this.dir, 'states', rec.extra.dir);
      for (const f of rec.extra.files) await checkFileSum(join(extraDir, f.file), f);
    }
    if (rec.segment) await this.out.check(rec.segment.file, rec.segment);
    return { record: rec, state, extraDir };
  }

  /**
   * Commits atomically: the segment written at `segment.tempPath` (if any rows), the `state`
   * (JSON-able; written as JSON) and the files in `extraDir` (a folder from {@link extraTempDir},
   * moved into the state folder). Resolves with the record once the commit is durable. Then prunes
   * state files older than the newest `keep` commits.
   *
   * @throws ERR_DBPRUNE_STATE when a file-system step fails (naming it and the cause: a removed state
   *   or output folder, a full disk, …) or when a segment of this number already exists in OUT (it is
   *   never overwritten); the previous commit stays current.
   */
  async commit(args: { segment?: { tempPath: string; rows: number }; state: T; extraDir?: string }): Promise<CommitRecord> {
    try {
      return await this.commitOnce(args);
    } catch (e) {
      if (e instanceof DbpruneError) throw e;
      const err = e as NodeJS.ErrnoException;
      const gone = err.code === 'ENOENT' ? ` (is ${this.dir} or ${this.outDir} still there?)` : '';
      throw new DbpruneError(ErrorCodes.STATE, `commit ${this.nextSeq} failed: ${err.message ?? String(e)}${gone}`, { file: err.path ?? this.dir, reason: err.code ?? 'io' }, { cause: e });
    }
  }

  private async commitOnce(args: { segment?: { tempPath: string; rows: number }; state: T; extraDir?: string }): Promise<CommitRecord> {
    const seq = this.nextSeq;
    const name = seqName(seq);
    let segment: CommitRecord['segment'] = null;
    if (args.segment) {
      const file = this.nextSegmentFile();
      const sum = await this.out.publish(args.segment.tempPath, file);
      segment = { file, bytes: sum.bytes, sha256: sum.sha256, rows: args.segment.rows };
    }
    const statesDir = join(this.dir, 'states');
    const stateJson = JSON.stringify(args.state);
    const stateFile = `state-${name}.json`;
    await writeStateFile(join(statesDir, stateFile), stateJson);
    const state: FileSum = { file: stateFile, bytes: Buffer.byteLength(stateJson), sha256: sha256Hex(stateJson) };
    let extra: CommitRecord['extra'] = null;
    if (args.extraDir) {
      const files: FileSum[] = [];
      for (const f of (await readdir(args.extraDir)).sort()) {
        const p = join(args.extraDir, f);
        await fsyncFile(p);
        files.push({ file: f, ...(await hashFile(p)) });
      }
      await fsyncDir(args.extraDir);
      const dir = `extra-${name}`;
      await rename(args.extraDir, join(statesDir, dir));
      extra = { dir, files };
    }
    await fsyncDir(statesDir);
    const body: Omit<CommitRecord, 'checksum'> = { version: 1, seq, time: Date.now(), segment, state, extra };
    const text = recordBody(body);
    const record: CommitRecord = { ...body, checksum: sha256Hex(text) };
    const commitsDir = join(this.dir, 'commits');
    await writeStateFile(join(commitsDir, `commit-${name}.json`), JSON.stringify(record));
    // ---- committed ----
    this.seq = seq;
    if (segment) this.committedSegments.push(segment.file);
    this.kept.push(seq);
    while (this.kept.length > this.keep) {
      const old = seqName(this.kept.shift() as number);
      await rm(join(commitsDir, `commit-${old}.json`), { force: true });
      await rm(join(statesDir, `state-${old}.json`), { force: true });
      await rm(join(statesDir, `extra-${old}`), { recursive: true, force: true });
    }
    await this.writeCommittedIndex();
    return record;
  }

  private async writeCommittedIndex(): Promise<void> {
    await this.out.writeIndex(`${JSON.stringify({ seq: this.seq, segments: this.committedSegments.length, last: this.committedSegments.at(-1) ?? null })}\n`);
  }

  /**
   * Reads (or, on a fresh folder, writes) `STATE/config.json`. Throws ERR_DBPRUNE_STATE naming the
   * differing fields when the folder was created with another configuration.
   */
  async checkConfig(config: Record<string, unknown>): Promise<void> {
    const path = join(this.dir, 'config.json');
    if (!(await pathExists(path))) {
      await writeStateFile(path, `${JSON.stringify(config, null, 1)}\n`);
      return;
    }
    let saved: Record<string, unknown>;
    try {
      saved = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw stateError(path, `unreadable configuration (${(e as Error).message})`, e);
    }
    const diff = Object.keys({ ...saved, ...config }).filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(config[k]));
    if (diff.length > 0) {
      const what = diff.map((k) => `${k}: ${JSON.stringify(saved[k])} → ${JSON.stringify(config[k])}`).join('; ');
      throw new DbpruneError(ErrorCodes.STATE, `${this.dir} was created with another configuration (${what}); resume with the same flags or use a new --state`, {
        file: path,
        fields: diff,
      });
    }
  }
}
