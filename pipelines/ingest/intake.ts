/**
 * Ingest's intake: every way an input reaches the journal — stdin lines, a watched folder, HTTP
 * posts (`POST /shards`, `POST /urls`; see listener.ts) — checked, then appended to the input journal,
 * which fixes its place in the processing order for good.
 *
 * {@link IngestIntake} needs only an {@link IntakeJournal} (the real {@link InputJournal}, or an
 * in-memory fake in tests). A journal that cannot take inputs any more (ERR_DBPRUNE_STATE: the state
 * folder was deleted) is fatal: `onFatal` is called and the input is refused.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { DbpruneError, ErrorCodes, isDbpruneError } from '../../src/core/errors.js';
import { isUrl, naturalCompare } from '../../src/io/glob.js';
import { sha256Hex } from '../../src/io/hash.js';
import { writeFileAtomic } from '../../src/io/output-set.js';
import { urlListFormatFromPath, type UrlListFormat } from '../../src/io/url-list.js';
import type { IngestReply, IngestSubmission } from './listener.js';
import type { IngestMode } from './options.js';
import type { InputJournal, InputKind, JournalEntry } from './journal.js';

/** What the intake needs of the journal. */
export type IntakeJournal = Pick<InputJournal, 'append' | 'indexOf' | 'get' | 'wake'>;

/** Which kind of input a path/URL is, by its extension; undefined when unknown. */
export function inputKindOf(src: string): InputKind | undefined {
  let p = src;
  if (isUrl(src)) {
    try {
      p = new URL(src).pathname;
    } catch {
      return undefined;
    }
  }
  const lower = p.toLowerCase();
  if (lower.endsWith('.tar')) return 'shard';
  if (lower.endsWith('.npy')) return 'embeddings';
  if (urlListFormatFromPath(lower) !== undefined) return 'urls';
  return undefined;
}

/** Content types of a posted URL list, and the list format each means. */
export const URL_CONTENT_TYPES: Readonly<Record<string, UrlListFormat>> = {
  'text/uri-list': 'txt',
  'text/plain': 'txt', // only with a token: the listener refuses CORS-simple types without one
  'application/x-ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/json-lines': 'jsonl',
  'text/csv': 'csv',
  'text/tab-separated-values': 'tsv',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
};

/** Names in a watched folder that are never inputs (hidden, partial, img2dataset metadata, key lists). */
function watchable(name: string): boolean {
  return !/^[._]/.test(name) && !/\.(tmp|part|partial|crdownload)$/i.test(name) && !/^\d+\.parquet$/i.test(name) && !/_stats\.json$/i.test(name) && !/\.keys\.txt$/i.test(name);
}

export interface IngestIntakeOptions {
  journal: IntakeJournal;
  mode: IngestMode;
  /** The state folder: posted URL lists are stored in `STATE/inputs/<sha256>.<ext>` before journaling. */
  stateDir: string;
  /** With `exitWhenDone`, a watched folder is done once a scan finds nothing new. */
  exitWhenDone: boolean;
  warn: (line: string) => void;
  /** The journal cannot take inputs any more (state folder gone): end the run with `e`. */
  onFatal: (e: unknown) => void;
}

/** The result of offering one input line. */
export interface AcceptResult {
  entry?: JournalEntry;
  duplicate?: boolean;
  error?: string;
}

export class IngestIntake {
  private readonly o: IngestIntakeOptions;
  private stopping = false;
  private stdinDone = true;
  private watchDone = true;
  private rl: Interface | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  /** Bodies being stored and journaled, by identity: an identical concurrent POST waits for it. */
  private readonly storing = new Map<string, Promise<JournalEntry>>();

  constructor(o: IngestIntakeOptions) {
    this.o = o;
  }

  /** Whether every finite source ended (stdin closed, the watched folder scanned empty with exitWhenDone). */
  sourcesDone(): boolean {
    return this.stdinDone && this.watchDone;
  }

  /** Stops taking inputs (offers get `stopping`, posts 503); sources are closed by {@link close}. */
  stop(): void {
    this.stopping = true;
  }

  close(): void {
    clearInterval(this.watchTimer);
    this.rl?.close();
  }

  private accepts(kind: InputKind): boolean {
    return this.o.mode === 'embeddings' ? kind === 'embeddings' : kind !== 'embeddings';
  }

  /** Offers one input line (a path or URL; blank and `#` lines are ignored) from `via`. */
  async accept(raw: string, via: string): Promise<AcceptResult> {
    const t = raw.trim();
    if (t.length === 0 || t.startsWith('#')) return {};
    const src = isUrl(t) ? t : resolvePath(t);
    const kind = inputKindOf(src);
    const mode = this.o.mode;
    if (!kind || !this.accepts(kind)) return { error: `${t}: not an input of ${mode} mode (${mode === 'images' ? '.tar shards, URL lists' : '.npy files'})` };
    if (kind !== 'shard' && isUrl(src)) return { error: `${t}: ${kind === 'urls' ? 'URL lists' : '.npy files'} must be local files` };
    if (!isUrl(src) && !(await stat(src).catch(() => undefined))?.isFile()) return { error: `${t}: no such file` };
    if (this.stopping) return { error: 'stopping' };
    try {
      return await this.o.journal.append({ kind, src, id: src, via });
    } catch (e) {
      if (!(isDbpruneError(e) && e.code === ErrorCodes.STATE)) throw e;
      // the state folder cannot take inputs any more (deleted?): stop, coded, instead of warning forever
      this.o.warn(`dbprune ingest: ${e.message} [${e.code}]; stopping`);
      this.o.onFatal(e);
      return { error: 'stopping' };
    }
  }

  /** Reads input lines from `input` until it ends or intake stops. */
  readLines(input: NodeJS.ReadableStream): void {
    this.stdinDone = false;
    const lines = createInterface({ input, crlfDelay: Infinity });
    this.rl = lines;
    const read = async (): Promise<void> => {
      try {
        for await (const line of lines) {
          if (this.stopping) break;
          const r = await this.accept(line, 'stdin');
          if (r.error && r.error !== 'stopping') this.o.warn(`dbprune ingest: refused ${r.error}`);
        }
      } catch (e) {
        this.o.warn(`dbprune ingest: stdin failed: ${(e as Error).message}`);
      } finally {
        this.stdinDone = true;
        this.o.journal.wake();
      }
    };
    void read();
  }

  /**
   * Polls `dir` every `pollMs`: a file is taken once its size and mtime are unchanged over one poll
   * (in natural name order; see {@link IngestOptions.watch} for the names ignored).
   */
  watch(dir: string, pollMs: number): void {
    this.watchDone = false;
    const sizes = new Map<string, string>();
    let scanning = false;
    const scan = async (): Promise<void> => {
      if (scanning || this.stopping) return;
      scanning = true;
      try {
        await this.scanOnce(dir, sizes);
      } catch (e) {
        this.o.warn(`dbprune ingest: cannot scan ${dir}: ${(e as Error).message}`);
      } finally {
        scanning = false;
      }
    };
    void scan();
    this.watchTimer = setInterval(() => void scan(), pollMs);
  }

  private async scanOnce(dir: string, sizes: Map<string, string>): Promise<void> {
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile() && watchable(d.name))
      .map((d) => d.name)
      .sort(naturalCompare);
    let pending = 0;
    for (const name of names) {
      const p = join(dir, name);
      const kind = inputKindOf(p);
      if (!kind || !this.accepts(kind) || this.o.journal.indexOf(p) !== undefined) continue;
      const st = await stat(p).catch(() => undefined);
      if (!st) continue;
      const sig = `${st.size}:${st.mtimeMs}`;
      if (sizes.get(p) !== sig) {
        sizes.set(p, sig);
        pending++;
        continue;
      }
      sizes.delete(p);
      const r = await this.accept(p, 'watch');
      if (r.error && r.error !== 'stopping') this.o.warn(`dbprune ingest: refused ${r.error}`);
    }
    if (pending === 0 && !this.watchDone && this.o.exitWhenDone) {
      this.watchDone = true;
      this.o.journal.wake();
    }
  }

  /** Handles one HTTP post (the listener's `submit`): 202 journaled, 200 duplicate, 4xx refused, 503 stopping. */
  async submit(s: IngestSubmission): Promise<IngestReply> {
    try {
      return await this.submitOnce(s);
    } catch (e) {
      // The input was not journaled, so it is not acknowledged: the caller gets the coded error.
      // A state folder that cannot take inputs any more ends the run (coded, exit 1).
      if (isDbpruneError(e) && e.code === ErrorCodes.STATE) {
        this.o.warn(`dbprune ingest: ${e.message} [${e.code}]; stopping`);
        this.o.onFatal(e);
      }
      throw e;
    }
  }

  private async submitOnce(s: IngestSubmission): Promise<IngestReply> {
    if (this.stopping) return { status: 503, body: { error: 'stopping' } };
    if (this.o.mode !== 'images') return { status: 400, body: { error: `this ingest takes .npy embeddings, not ${s.route === 'shards' ? 'shards' : 'URL lists'}` } };
    return s.route === 'shards' ? this.submitShards(s) : this.submitUrlList(s);
  }

  private async submitShards(s: IngestSubmission): Promise<IngestReply> {
    let list: string[];
    try {
      list = shardListOf(s);
    } catch (e) {
      return { status: 400, body: { error: 'bad body', message: (e as Error).message } };
    }
    list = list.map((x) => x.trim()).filter((x) => x.length > 0 && !x.startsWith('#'));
    const bad = list.filter((x) => !isUrl(x) || inputKindOf(x) !== 'shard');
    if (list.length === 0 || bad.length > 0) return { status: 400, body: { error: 'expected http(s) URLs of .tar shards, one a line', rejected: bad } };
    const accepted: { i: number; src: string; duplicate: boolean }[] = [];
    for (const src of list) {
      const r = await this.o.journal.append({ kind: 'shard', src, id: src, via: 'listen' });
      accepted.push({ i: r.entry.i, src, duplicate: r.duplicate });
    }
    return { status: 202, body: { accepted } };
  }

  private async submitUrlList(s: IngestSubmission): Promise<IngestReply> {
    const fmt = URL_CONTENT_TYPES[s.contentType];
    if (!fmt) return { status: 415, body: { error: 'unsupported content type for a URL list', supported: Object.keys(URL_CONTENT_TYPES) } };
    if (s.body.length === 0) return { status: 400, body: { error: 'empty body' } };
    const hex = sha256Hex(s.body);
    const id = `sha256:${hex}`;
    const known = this.o.journal.indexOf(id);
    if (known !== undefined) return { status: 200, body: { accepted: [{ i: known, src: this.o.journal.get(known)?.src, duplicate: true }] } };
    const pending = this.storing.get(id);
    if (pending) {
      const entry = await pending;
      return { status: 200, body: { accepted: [{ i: entry.i, src: entry.src, duplicate: true }] } };
    }
    const p = this.storeUrlBody(s, fmt, hex, id);
    this.storing.set(id, p);
    try {
      const entry = await p;
      return { status: 202, body: { accepted: [{ i: entry.i, src: entry.src, duplicate: false }] } };
    } finally {
      this.storing.delete(id);
    }
  }

  /** Stores a posted URL list durably (fsynced, renamed into STATE/inputs) and journals it. */
  private async storeUrlBody(s: IngestSubmission, fmt: UrlListFormat, hex: string, id: string): Promise<JournalEntry> {
    const path = join(this.o.stateDir, 'inputs', `${hex}.${fmt}`);
    try {
      await writeFileAtomic(path, s.body);
    } catch (e) {
      throw new DbpruneError(ErrorCodes.STATE, `cannot store the posted URL batch as ${path}: ${(e as Error).message} (was the state folder removed?); not accepted`, { file: path }, { cause: e });
    }
    return (await this.o.journal.append({ kind: 'urls', src: path, id, via: 'listen' })).entry;
  }
}

/** The shard URLs of a `POST /shards` body: a JSON array of strings (or `{ shards: [...] }`), else one a line. */
function shardListOf(s: IngestSubmission): string[] {
  if (s.contentType !== 'application/json') return s.body.toString('utf8').split('\n');
  const j = JSON.parse(s.body.toString('utf8')) as unknown;
  const arr = Array.isArray(j) ? (j as unknown[]) : (j as { shards?: unknown } | null)?.shards;
  if (!Array.isArray(arr) || !arr.every((x) => typeof x === 'string')) throw new Error('expected a JSON array of strings');
  return arr;
}
