import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/core/errors.js';
import { InputJournal, StateStore } from '../../../pipelines/ingest/state-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function segment(store: StateStore<{ n: number }>, text: string): Promise<{ tempPath: string; rows: number }> {
  const p = store.segmentTempPath();
  await writeFile(p, text);
  return { tempPath: p, rows: text.split('\n').filter(Boolean).length };
}

/** A folder's entries without dot-files (OUT's lock and owner record are hidden from readers). */
const visible = async (d: string): Promise<string[]> => (await readdir(d)).filter((n) => !n.startsWith('.'));

describe('InputJournal', () => {
  it('appends durably in order, refuses duplicates, and survives reopen', async () => {
    const path = join(dir, 'journal.jsonl');
    const j = await InputJournal.open(path);
    const a = await j.append({ kind: 'shard', src: '/x/0.tar', id: '/x/0.tar', via: 'stdin' });
    const b = await j.append({ kind: 'urls', src: '/x/1.txt', id: '/x/1.txt', via: 'watch' });
    const again = await j.append({ kind: 'shard', src: '/x/0.tar', id: '/x/0.tar', via: 'listen' });
    expect([a.entry.i, b.entry.i, again.entry.i, again.duplicate]).toEqual([0, 1, 0, true]);
    await j.close();
    const j2 = await InputJournal.open(path);
    expect(j2.size).toBe(2);
    expect(j2.get(1)?.src).toBe('/x/1.txt');
    expect(j2.indexOf('/x/0.tar')).toBe(0);
    await j2.close();
  });

  it('cuts a torn last line (crash during an append) and keeps appending after it', async () => {
    const path = join(dir, 'journal.jsonl');
    const j = await InputJournal.open(path);
    await j.append({ kind: 'shard', src: '/a.tar', id: '/a.tar', via: 'stdin' });
    await j.close();
    await appendFile(path, '{"i":1,"kind":"shard","src":"/b.t'); // half a line
    const warnings: string[] = [];
    const j2 = await InputJournal.open(path, { warn: (w) => warnings.push(w) });
    expect(j2.size).toBe(1);
    expect(warnings.join()).toContain(ErrorCodes.STATE);
    const r = await j2.append({ kind: 'shard', src: '/b.tar', id: '/b.tar', via: 'stdin' });
    expect(r.entry.i).toBe(1);
    await j2.close();
    const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
  });

  it('refuses a journal corrupted before its last line (ERR_DBPRUNE_STATE)', async () => {
    const path = join(dir, 'journal.jsonl');
    const j = await InputJournal.open(path);
    for (const s of ['/a.tar', '/b.tar', '/c.tar']) await j.append({ kind: 'shard', src: s, id: s, via: 'stdin' });
    await j.close();
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('/b.tar', '/B.tar'));
    await expect(InputJournal.open(path)).rejects.toMatchObject({ code: ErrorCodes.STATE, context: { line: 2 } });
  });
});

describe('StateStore', () => {
  const open = (keep = 3): Promise<StateStore<{ n: number }>> => StateStore.open<{ n: number }>({ dir: join(dir, 'st'), outDir: join(dir, 'out'), segmentExt: 'jsonl', keep });

  it('commits segment + state atomically and resumes from the newest commit', async () => {
    const s = await open();
    expect(s.last).toBeNull();
    const r1 = await s.commit({ segment: await segment(s, 'a\nb\n'), state: { n: 2 } });
    const r2 = await s.commit({ state: { n: 2 } }); // nothing new: no segment
    const r3 = await s.commit({ segment: await segment(s, 'c\n'), state: { n: 3 } });
    expect([r1.seq, r2.seq, r3.seq]).toEqual([1, 2, 3]);
    expect(r2.segment).toBeNull();
    await s.close();
    const t = await open();
    expect(t.last?.record.seq).toBe(3);
    expect(t.last?.state).toEqual({ n: 3 });
    expect(t.problems).toEqual([]);
    expect(await visible(join(dir, 'out'))).toEqual(['committed.json', 'part-000000000001.jsonl', 'part-000000000003.jsonl']);
    expect(JSON.parse(await readFile(join(dir, 'out', 'committed.json'), 'utf8'))).toMatchObject({ seq: 3 });
    await t.close();
  });

  it('deletes an uncommitted segment and temp files left by a crash', async () => {
    const s = await open();
    await s.commit({ segment: await segment(s, 'a\n'), state: { n: 1 } });
    // a crash after the segment rename but before the commit record:
    await writeFile(join(dir, 'out', 'part-000000000002.jsonl'), 'b\n');
    await writeFile(s.segmentTempPath(), 'half');
    await writeFile(join(dir, 'st', 'tmp', 'commit-000000000002.json'), '{"trunc');
    await writeFile(join(dir, 'st', 'states', 'state-000000000002.json'), '{"n":2}');
    await s.close();
    const t = await open();
    expect(t.last?.record.seq).toBe(1);
    expect(t.nextSeq).toBe(2);
    expect(await visible(join(dir, 'out'))).toEqual(['committed.json', 'part-000000000001.jsonl']);
    expect(await readdir(join(dir, 'st', 'tmp'))).toEqual([]);
    expect(existsSync(join(dir, 'st', 'states', 'state-000000000002.json'))).toBe(false);
    await t.close();
  });

  it.each([
    ['a corrupted state file', async (): Promise<void> => writeFile(join(dir, 'st', 'states', 'state-000000000003.json'), '{"n":999}')],
    ['a truncated commit record', async (): Promise<void> => truncate(join(dir, 'st', 'commits', 'commit-000000000003.json'), 40)],
    ['a half-written segment', async (): Promise<void> => truncate(join(dir, 'out', 'part-000000000003.jsonl'), 1)],
    ['a missing state file', async (): Promise<void> => rm(join(dir, 'st', 'states', 'state-000000000003.json'))],
  ])('detects %s, reports it and falls back to the last good commit', async (_what, damage) => {
    const s = await open();
    for (let n = 1; n <= 3; n++) await s.commit({ segment: await segment(s, `row${n}\n`), state: { n } });
    await s.close();
    await damage();
    const warnings: string[] = [];
    const t = await StateStore.open<{ n: number }>({ dir: join(dir, 'st'), outDir: join(dir, 'out'), segmentExt: 'jsonl', warn: (w) => warnings.push(w) });
    expect(t.last?.record.seq).toBe(2);
    expect(t.last?.state).toEqual({ n: 2 });
    expect(t.problems).toHaveLength(1);
    expect(t.problems[0]).toMatchObject({ code: ErrorCodes.STATE, file: join(dir, 'st', 'commits', 'commit-000000000003.json') });
    expect(warnings[0]).toMatch(/commit-000000000003\.json is invalid .*falling back/);
    // the bad commit's segment is uncommitted now and will be redone under seq 3
    expect(await visible(join(dir, 'out'))).toEqual(['committed.json', 'part-000000000001.jsonl', 'part-000000000002.jsonl']);
    expect(await readdir(join(dir, 'st', 'corrupt'))).toHaveLength(1);
    const r = await t.commit({ segment: await segment(t, 'row3again\n'), state: { n: 3 } });
    expect(r.seq).toBe(3);
    await t.close();
  });

  it('keeps only the newest `keep` states but never deletes segments', async () => {
    const s = await open(2);
    for (let n = 1; n <= 5; n++) await s.commit({ segment: await segment(s, `r${n}\n`), state: { n } });
    expect((await readdir(join(dir, 'st', 'commits'))).sort()).toEqual(['commit-000000000004.json', 'commit-000000000005.json']);
    expect((await readdir(join(dir, 'st', 'states'))).sort()).toEqual(['state-000000000004.json', 'state-000000000005.json']);
    expect((await readdir(join(dir, 'out'))).filter((f) => f.startsWith('part-'))).toHaveLength(5);
    await s.close();
  });

  it('moves extra state files in with checksums and verifies them on recovery', async () => {
    const s = await open();
    const extra = s.extraTempDir();
    await rm(extra, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(extra, { recursive: true }));
    await writeFile(join(extra, 'index.bin'), Buffer.from([1, 2, 3]));
    const rec = await s.commit({ state: { n: 0 }, extraDir: extra });
    expect(rec.extra?.files.map((f) => f.file)).toEqual(['index.bin']);
    await s.close();
    const t = await open();
    expect(t.last?.extraDir).toBe(join(dir, 'st', 'states', 'extra-000000000001'));
    await t.close();
    await writeFile(join(dir, 'st', 'states', 'extra-000000000001', 'index.bin'), Buffer.from([9, 9, 9]));
    const u = await open();
    expect(u.last).toBeNull();
    expect(u.problems[0].reason).toMatch(/checksum mismatch/);
    await u.close();
  });

  it('refuses a folder held by a live process and takes over a stale lock', async () => {
    const s = await open();
    await s.close();
    await writeFile(join(dir, 'st', 'LOCK'), `${process.ppid}\n`); // a live process (our parent)
    await expect(open()).rejects.toMatchObject({ code: ErrorCodes.STATE, context: { pid: process.ppid } });
    await writeFile(join(dir, 'st', 'LOCK'), '999999999\n'); // no such pid: a kill -9 leftover
    const t = await open();
    await t.close();
  });

  it('rejects a resume with another configuration', async () => {
    const s = await open();
    await s.checkConfig({ mode: 'images', keep: 0.3 });
    await s.checkConfig({ mode: 'images', keep: 0.3 });
    await expect(s.checkConfig({ mode: 'images', keep: 0.5 })).rejects.toMatchObject({ code: ErrorCodes.STATE, context: { fields: ['keep'] } });
    await s.close();
  });

  it('locks the output folder too: a second state folder on the same OUT is refused while the first runs', async () => {
    const out = join(dir, 'shared-out');
    const a = await StateStore.open({ dir: join(dir, 'sa'), outDir: out, segmentExt: 'jsonl' });
    expect((await readFile(join(out, '.dbprune-ingest.lock'), 'utf8')).trim()).toBe(String(process.pid));
    await a.close();
    expect(existsSync(join(out, '.dbprune-ingest.lock'))).toBe(false);
    await writeFile(join(out, '.dbprune-ingest.lock'), `${process.ppid}\n`); // OUT held by a live process (our parent)
    await expect(StateStore.open({ dir: join(dir, 'sb'), outDir: out, segmentExt: 'jsonl' })).rejects.toMatchObject({
      code: ErrorCodes.STATE,
      context: { pid: process.ppid, file: join(out, '.dbprune-ingest.lock') },
    });
    // the refused open released the lock on its own state folder
    expect(existsSync(join(dir, 'sb', 'LOCK'))).toBe(false);
    // a stale OUT lock (kill -9 leftover) is taken over
    await writeFile(join(out, '.dbprune-ingest.lock'), '999999999\n');
    const again = await StateStore.open({ dir: join(dir, 'sa'), outDir: out, segmentExt: 'jsonl' });
    await again.close();
  });

  it('refuses to delete or overwrite committed segments the state does not know (another --state, a deleted state)', async () => {
    const out = join(dir, 'owned-out');
    const a = await StateStore.open<{ n: number }>({ dir: join(dir, 'oa'), outDir: out, segmentExt: 'jsonl' });
    await a.commit({ segment: await segment(a, 'a1\n'), state: { n: 1 } });
    await a.close();
    const before = await readFile(join(out, 'part-000000000001.jsonl'), 'utf8');
    // a second ingest with another --state and the same --out
    await expect(StateStore.open({ dir: join(dir, 'ob'), outDir: out, segmentExt: 'jsonl' })).rejects.toMatchObject({
      code: ErrorCodes.STATE,
      context: { out, segments: 1 },
    });
    // the state folder deleted, then a restart with the same flags
    await rm(join(dir, 'oa'), { recursive: true, force: true });
    await expect(StateStore.open({ dir: join(dir, 'oa'), outDir: out, segmentExt: 'jsonl' })).rejects.toThrow(/holds 1 committed segment.*another state folder/);
    // segments from before owner records existed, and no state that knows them
    await rm(join(out, '.dbprune-ingest.json'));
    await expect(StateStore.open({ dir: join(dir, 'oc'), outDir: out, segmentExt: 'jsonl' })).rejects.toThrow(/does not know/);
    expect(await readFile(join(out, 'part-000000000001.jsonl'), 'utf8')).toBe(before);
    expect(await visible(out)).toEqual(['committed.json', 'part-000000000001.jsonl']);
    // the owner resumes normally
    const own = await StateStore.open<{ n: number }>({ dir: join(dir, 'od'), outDir: join(dir, 'od-out'), segmentExt: 'jsonl' });
    await own.commit({ segment: await segment(own, 'x\n'), state: { n: 1 } });
    await own.close();
    const resumed = await StateStore.open<{ n: number }>({ dir: join(dir, 'od'), outDir: join(dir, 'od-out'), segmentExt: 'jsonl' });
    expect(resumed.last?.record.seq).toBe(1);
    await resumed.close();
  });

  it('never renames a commit over an existing segment', async () => {
    const s = await StateStore.open<{ n: number }>({ dir: join(dir, 'ne'), outDir: join(dir, 'ne-out'), segmentExt: 'jsonl' });
    const seg = await segment(s, 'mine\n');
    await writeFile(join(dir, 'ne-out', 'part-000000000001.jsonl'), 'someone else\n');
    await expect(s.commit({ segment: seg, state: { n: 1 } })).rejects.toMatchObject({ code: ErrorCodes.STATE });
    expect(await readFile(join(dir, 'ne-out', 'part-000000000001.jsonl'), 'utf8')).toBe('someone else\n');
    await s.close();
  });

  it('an append to a journal whose state folder was deleted is refused, not acknowledged and lost', async () => {
    const d = join(dir, 'gone');
    await mkdir(d, { recursive: true });
    const j = await InputJournal.open(join(d, 'journal.jsonl'));
    await j.append({ kind: 'shard', src: 'http://h/a.tar', id: 'a', via: 'api' });
    await rm(d, { recursive: true, force: true });
    await expect(j.append({ kind: 'shard', src: 'http://h/b.tar', id: 'b', via: 'api' })).rejects.toMatchObject({ code: ErrorCodes.STATE, context: { reason: 'journal-gone' } });
    expect(j.size).toBe(1);
    await expect(j.append({ kind: 'shard', src: 'http://h/c.tar', id: 'c', via: 'api' })).rejects.toMatchObject({ code: ErrorCodes.STATE });
    await j.close();
  });

  it('a commit into a deleted state folder fails with ERR_DBPRUNE_STATE, not a bare ENOENT', async () => {
    const s = await StateStore.open<{ n: number }>({ dir: join(dir, 'del'), outDir: join(dir, 'del-out'), segmentExt: 'jsonl' });
    await rm(join(dir, 'del'), { recursive: true, force: true });
    await expect(s.commit({ state: { n: 1 } })).rejects.toMatchObject({ code: ErrorCodes.STATE });
    await s.close();
  });
});

