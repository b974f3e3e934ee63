/**
 * The append-only input journal of `dbprune ingest` (`STATE/journal.jsonl`; layout and protocol:
 * state-store.ts): one line per accepted input, `<json>\t<sha256(json)[0:16]>\n`, fsynced before
 * the input is acknowledged; the line order is the processing order.
 */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';
import { sha256Hex } from '../../src/io/hash.js';
import { stateError } from './durable.js';


/** What kind of input a journal entry is. */
export type InputKind = 'shard' | 'urls' | 'embeddings';

/** One accepted input. Its index `i` fixes its place in the processing order for good. */
export interface JournalEntry {
  /** Position in the journal (0, 1, …) = processing order. */
  i: number;
  kind: InputKind;
  /** Path or URL of the input (absolute path for local files). */
  src: string;
  /** Identity used to refuse a second submission of the same input (the path/URL, or `sha256:<hex>` of a posted body). */
  id: string;
  /** Where it came from: `watch`, `stdin`, `listen`, or `api`. */
  via: string;
  /** Acceptance time, ms since the epoch. */
  t: number;
}

const JOURNAL_SUM = 16;

function journalLine(e: JournalEntry): string {
  const json = JSON.stringify(e);
  return `${json}\t${sha256Hex(json).slice(0, JOURNAL_SUM)}\n`;
}

/**
 * The append-only input journal (`STATE/journal.jsonl`). Every line is fsynced before
 * {@link append} resolves, so an acknowledged input survives any crash, and the line order is the
 * processing order. Duplicates (same `id`) are refused, so feeding the same list again after a
 * restart adds nothing.
 */
export class InputJournal {
  private readonly list: JournalEntry[] = [];
  private readonly ids = new Map<string, number>();
  private fh: FileHandle | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private waiters: (() => void)[] = [];
  private closed = false;
  /** Set when the journal file vanished under us: every later append fails with it. */
  private gone: DbpruneError | undefined;

  private constructor(readonly path: string) {}

  /**
   * Opens (creating) the journal and reads it. A torn last line (no newline, bad checksum or bad
   * JSON: a crash during an append that was never acknowledged) is cut off and reported through
   * `warn`. Throws ERR_DBPRUNE_STATE (context.file, context.line) when any earlier line is corrupt
   * or the indices are not 0, 1, 2, … — processing order could not be trusted.
   */
  static async open(path: string, opts: { warn?: (line: string) => void } = {}): Promise<InputJournal> {
    const j = new InputJournal(path);
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw stateError(path, `cannot read the journal (${(e as Error).message})`, e);
    }
    let good = 0; // bytes of valid lines
    let offset = 0;
    const lines = text.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n];
      const last = n === lines.length - 1;
      if (last && line.length === 0) break;
      const entry = last ? undefined : parseJournalLine(line);
      if (!entry || entry.i !== j.list.length) {
        const restEmpty = lines.slice(n + 1).every((l) => l.length === 0);
        if (restEmpty) {
          opts.warn?.(`dbprune: ${path}: dropping a torn last journal line (an input whose intake was interrupted and never acknowledged) [${ErrorCodes.STATE}]`);
          break;
        }
        throw new DbpruneError(ErrorCodes.STATE, `${path}: journal line ${n + 1} is corrupt (${entry ? `index ${entry.i}, expected ${j.list.length}` : 'bad checksum or JSON'}); the input order cannot be trusted`, {
          file: path,
          line: n + 1,
        });
      }
      j.list.push(entry);
      j.ids.set(entry.id, entry.i);
      offset += Buffer.byteLength(line, 'utf8') + 1;
      good = offset;
    }
    j.fh = await open(path, 'a+');
    const size = (await j.fh.stat()).size;
    if (size !== good) {
      await j.fh.truncate(good);
      await j.fh.sync();
    }
    return j;
  }

  /** Entries so far. */
  get size(): number {
    return this.list.length;
  }

  /** Entry `i`, or undefined when not (yet) journaled. */
  get(i: number): JournalEntry | undefined {
    return this.list[i];
  }

  /** Index of the entry with this identity, or undefined. */
  indexOf(id: string): number | undefined {
    return this.ids.get(id);
  }

  /**
   * Appends an input (fsynced before resolving) unless one with the same `id` exists. Appends are
   * serialised. Resolves with the entry and whether it was a duplicate. Throws
   * ERR_DBPRUNE_INTERNAL after {@link close}.
   */
  append(e: Omit<JournalEntry, 'i' | 't'> & { t?: number }): Promise<{ entry: JournalEntry; duplicate: boolean }> {
    const p = this.chain.then(async () => {
      if (this.gone) throw this.gone;
      if (this.closed || !this.fh) throw new DbpruneError(ErrorCodes.INTERNAL, 'journal append after close', { file: this.path });
      const known = this.ids.get(e.id);
      if (known !== undefined) return { entry: this.list[known], duplicate: true };
      const entry: JournalEntry = { i: this.list.length, kind: e.kind, src: e.src, id: e.id, via: e.via, t: e.t ?? Date.now() };
      await this.fh.write(journalLine(entry));
      await this.fh.datasync();
      await this.checkStillOnDisk();
      this.list.push(entry);
      this.ids.set(entry.id, entry.i);
      this.wake();
      return { entry, duplicate: false };
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Throws ERR_DBPRUNE_STATE (and refuses every later append) when the journal file this process
   * appends to is no longer the one at `path` (the state folder was deleted, moved or replaced): an
   * append to it would be acknowledged yet lost.
   */
  private async checkStillOnDisk(): Promise<void> {
    const mine = await (this.fh as FileHandle).stat();
    const there = await stat(this.path).catch(() => undefined);
    if (there && there.ino === mine.ino && there.dev === mine.dev && mine.nlink > 0) return;
    this.gone = new DbpruneError(ErrorCodes.STATE, `${this.path} was removed or replaced while in use (was the state folder deleted?); the input was not journaled`, {
      file: this.path,
      reason: 'journal-gone',
    });
    throw this.gone;
  }

  /** Resolves at the next append or {@link wake} (a waiter re-checks `size` and its own conditions). */
  changed(): Promise<void> {
    return new Promise<void>((r) => this.waiters.push(r));
  }

  /** Wakes every {@link changed} waiter (e.g. when a source ends). */
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async close(): Promise<void> {
    await this.chain;
    this.closed = true;
    this.wake();
    await this.fh?.close();
    this.fh = undefined;
  }
}

function parseJournalLine(line: string): JournalEntry | undefined {
  const tab = line.lastIndexOf('\t');
  if (tab < 0) return undefined;
  const json = line.slice(0, tab);
  if (sha256Hex(json).slice(0, JOURNAL_SUM) !== line.slice(tab + 1)) return undefined;
  try {
    const e = JSON.parse(json) as JournalEntry;
    if (!Number.isInteger(e.i) || typeof e.src !== 'string' || typeof e.id !== 'string' || !['shard', 'urls', 'embeddings'].includes(e.kind)) return undefined;
    return e;
  } catch {
    return undefined;
  }
}
