/** Ingest's intake on its own (no CLI): a fake in-memory journal records what is accepted. */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DbpruneError, ErrorCodes } from '../../../src/core/errors.js';
import { IngestIntake, inputKindOf, type IntakeJournal } from '../../../pipelines/ingest/intake.js';
import type { JournalEntry } from '../../../pipelines/ingest/journal.js';
import type { IngestMode } from '../../../pipelines/ingest/options.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-intake-'));
  await mkdir(join(dir, 'state', 'inputs'), { recursive: true });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** An in-memory journal with the real one's rules: order of append, duplicates by id refused. */
class FakeJournal implements IntakeJournal {
  readonly entries: JournalEntry[] = [];
  wakes = 0;
  failWith: Error | undefined;
  append(e: Omit<JournalEntry, 'i' | 't'>): Promise<{ entry: JournalEntry; duplicate: boolean }> {
    if (this.failWith) return Promise.reject(this.failWith);
    const known = this.indexOf(e.id);
    if (known !== undefined) return Promise.resolve({ entry: this.entries[known], duplicate: true });
    const entry: JournalEntry = { ...e, i: this.entries.length, t: 0 };
    this.entries.push(entry);
    return Promise.resolve({ entry, duplicate: false });
  }
  indexOf(id: string): number | undefined {
    const i = this.entries.findIndex((x) => x.id === id);
    return i < 0 ? undefined : i;
  }
  get(i: number): JournalEntry | undefined {
    return this.entries[i];
  }
  wake(): void {
    this.wakes++;
  }
}

function intake(journal: FakeJournal, mode: IngestMode, o: { exitWhenDone?: boolean; warnings?: string[]; fatal?: unknown[] } = {}): IngestIntake {
  return new IngestIntake({
    journal,
    mode,
    stateDir: join(dir, 'state'),
    exitWhenDone: o.exitWhenDone ?? false,
    warn: (l) => o.warnings?.push(l),
    onFatal: (e) => o.fatal?.push(e),
  });
}

const until = async (ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('IngestIntake', () => {
  it('accepts inputs of its mode, refuses the others with a reason, and journals a repeat once', async () => {
    await writeFile(join(dir, 'a.tar'), 'x');
    await writeFile(join(dir, 'b.npy'), 'x');
    await writeFile(join(dir, 'c.txt'), 'http://h/1.jpg\n');
    const j = new FakeJournal();
    const it = intake(j, 'images');
    expect(await it.accept('  # a comment', 'stdin')).toEqual({});
    expect(await it.accept('', 'stdin')).toEqual({});
    expect((await it.accept(join(dir, 'a.tar'), 'stdin')).entry).toMatchObject({ i: 0, kind: 'shard', src: join(dir, 'a.tar'), via: 'stdin' });
    expect((await it.accept(join(dir, 'c.txt'), 'watch')).entry).toMatchObject({ i: 1, kind: 'urls' });
    expect(await it.accept(join(dir, 'a.tar'), 'watch')).toMatchObject({ duplicate: true, entry: { i: 0 } });
    expect((await it.accept(join(dir, 'b.npy'), 'stdin')).error).toMatch(/not an input of images mode/);
    expect((await it.accept(join(dir, 'gone.tar'), 'stdin')).error).toMatch(/no such file/);
    expect((await it.accept('http://h/list.txt', 'stdin')).error).toMatch(/URL lists must be local files/);
    expect((await it.accept('http://h/s.tar', 'stdin')).entry).toMatchObject({ kind: 'shard', src: 'http://h/s.tar' });
    it.stop();
    expect(await it.accept(join(dir, 'c.txt'), 'stdin')).toEqual({ error: 'stopping' });
    expect(j.entries.map((e) => e.i)).toEqual([0, 1, 2]);
    expect(inputKindOf('http://h/x.NPY')).toBe('embeddings');
  });

  it('reads stdin lines in order, warns about refused ones, and is done when the stream ends', async () => {
    await writeFile(join(dir, '1.npy'), 'x');
    await writeFile(join(dir, '2.npy'), 'x');
    const j = new FakeJournal();
    const warnings: string[] = [];
    const it = intake(j, 'embeddings', { warnings });
    const input = new PassThrough();
    it.readLines(input);
    expect(it.sourcesDone()).toBe(false);
    input.end(`${join(dir, '2.npy')}\n# skip\n${join(dir, 'x.tar')}\r\n${join(dir, '1.npy')}\n`);
    await until(() => it.sourcesDone());
    expect(j.entries.map((e) => e.src)).toEqual([join(dir, '2.npy'), join(dir, '1.npy')]);
    expect(warnings).toEqual([expect.stringMatching(/refused .*x\.tar: not an input of embeddings mode/)]);
    expect(j.wakes).toBeGreaterThan(0);
    it.close();
  });

  it('takes a watched file once it stopped changing, in natural order, ignoring partial and metadata names', async () => {
    const w = join(dir, 'watch');
    await mkdir(w);
    for (const n of ['10.tar', '9.tar', '.hidden.tar', '_x.tar', 'y.tar.part', '00000.parquet', 'a_stats.json', 'k.keys.txt']) await writeFile(join(w, n), 'x');
    const j = new FakeJournal();
    const it = intake(j, 'images', { exitWhenDone: true });
    it.watch(w, 30);
    try {
      await until(() => it.sourcesDone());
      expect(j.entries.map((e) => e.src)).toEqual([join(w, '9.tar'), join(w, '10.tar')]);
      expect(j.entries.every((e) => e.via === 'watch')).toBe(true);
    } finally {
      it.close();
    }
  });

  it('answers HTTP posts: shards as text or JSON, URL lists stored durably by content, bad ones refused', async () => {
    const j = new FakeJournal();
    const it = intake(j, 'images');
    const shards = await it.submit({ route: 'shards', contentType: 'text/uri-list', body: Buffer.from('http://h/0.tar\n# c\n\nhttp://h/1.tar\n') });
    expect(shards).toEqual({ status: 202, body: { accepted: [{ i: 0, src: 'http://h/0.tar', duplicate: false }, { i: 1, src: 'http://h/1.tar', duplicate: false }] } });
    const json = await it.submit({ route: 'shards', contentType: 'application/json', body: Buffer.from('{"shards":["http://h/1.tar"]}') });
    expect(json).toEqual({ status: 202, body: { accepted: [{ i: 1, src: 'http://h/1.tar', duplicate: true }] } });
    expect((await it.submit({ route: 'shards', contentType: 'application/json', body: Buffer.from('[1]') })).status).toBe(400);
    expect(await it.submit({ route: 'shards', contentType: 'text/uri-list', body: Buffer.from('/local/0.tar\n') })).toMatchObject({ status: 400, body: { rejected: ['/local/0.tar'] } });
    expect((await it.submit({ route: 'urls', contentType: 'application/pdf', body: Buffer.from('x') })).status).toBe(415);
    expect((await it.submit({ route: 'urls', contentType: 'text/uri-list', body: Buffer.alloc(0) })).status).toBe(400);
    const body = Buffer.from('http://h/a.jpg\nhttp://h/b.jpg\n');
    const [first, second] = await Promise.all([it.submit({ route: 'urls', contentType: 'text/uri-list', body }), it.submit({ route: 'urls', contentType: 'text/uri-list', body })]);
    expect([first.status, second.status].sort()).toEqual([200, 202]);
    const stored = j.entries.at(-1) as JournalEntry;
    expect(stored).toMatchObject({ i: 2, kind: 'urls', via: 'listen' });
    expect(stored.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await readFile(stored.src)).toEqual(body);
    expect(existsSync(stored.src)).toBe(true);
    it.stop();
    expect(await it.submit({ route: 'shards', contentType: 'text/uri-list', body: Buffer.from('http://h/2.tar') })).toEqual({ status: 503, body: { error: 'stopping' } });
  });

  it('refuses shards and URL lists in embeddings mode', async () => {
    const it = intake(new FakeJournal(), 'embeddings');
    expect(await it.submit({ route: 'shards', contentType: 'text/uri-list', body: Buffer.from('http://h/0.tar') })).toMatchObject({ status: 400 });
    expect(await it.submit({ route: 'urls', contentType: 'text/uri-list', body: Buffer.from('http://h/0.jpg') })).toMatchObject({ status: 400 });
  });

  it('a journal that cannot take inputs any more (ERR_DBPRUNE_STATE) is fatal, once per input, with one coded warning', async () => {
    await writeFile(join(dir, 'a.tar'), 'x');
    const j = new FakeJournal();
    j.failWith = new DbpruneError(ErrorCodes.STATE, 'journal gone', { file: 'journal.jsonl' });
    const warnings: string[] = [];
    const fatal: unknown[] = [];
    const it = intake(j, 'images', { warnings, fatal });
    expect(await it.accept(join(dir, 'a.tar'), 'watch')).toEqual({ error: 'stopping' });
    expect(fatal).toEqual([j.failWith]);
    expect(warnings).toEqual([expect.stringMatching(/journal gone \[ERR_DBPRUNE_STATE\]; stopping/)]);
    await expect(it.submit({ route: 'shards', contentType: 'text/uri-list', body: Buffer.from('http://h/0.tar') })).rejects.toMatchObject({ code: ErrorCodes.STATE });
    expect(fatal).toHaveLength(2);
    // a posted URL list whose body cannot be stored is refused with the state code too
    await rm(join(dir, 'state'), { recursive: true });
    await writeFile(join(dir, 'state'), 'not a folder');
    j.failWith = undefined;
    await expect(it.submit({ route: 'urls', contentType: 'text/uri-list', body: Buffer.from('http://h/z.jpg') })).rejects.toMatchObject({ code: ErrorCodes.STATE });
    await rename(join(dir, 'state'), join(dir, 'state.file'));
  });
});
