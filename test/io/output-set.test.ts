/** The output set: temporary names beside the final paths, renamed into place only at commit. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeptKeysWriter, createManifestWriter, createUidSubsetWriter } from '../../src/io/manifest.js';
import { OutputSet, prepareOutputDir, removeTempFilesSync, writeFileAtomic } from '../../src/io/output-set.js';
import { tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-outset-');
afterAll(() => tmp.cleanup());

describe('OutputSet', () => {
  it('commit renames every file into place and removes the stale ones it replaces', async () => {
    const dir = join(tmp.dir, 'commit');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), 'old a');
    writeFileSync(join(dir, 'stale.txt'), 'old');
    writeFileSync(join(dir, 'other.txt'), 'not ours');
    const set = new OutputSet();
    await set.writeFile(join(dir, 'a.txt'), 'new a');
    writeFileSync(set.file(join(dir, 'b.txt')), 'new b');
    set.replaces(join(dir, 'stale.txt'));
    set.replaces(join(dir, 'a.txt'));
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('old a'); // nothing visible before commit
    expect(await set.commit()).toEqual([join(dir, 'a.txt'), join(dir, 'b.txt')]);
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.txt', 'other.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('new a');
  });

  it('abort removes the temporary files and leaves the final paths alone', async () => {
    const dir = join(tmp.dir, 'abort');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), 'old a');
    const set = new OutputSet();
    await set.writeFile(join(dir, 'a.txt'), 'new a');
    set.replaces(join(dir, 'a.txt'));
    set.file(join(dir, 'never-written.txt'));
    await set.abort();
    expect(readdirSync(dir)).toEqual(['a.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('old a');
    expect(() => set.file(join(dir, 'c.txt'))).toThrow(/aborted/);
  });

  it('a file reserved but never written fails commit with ERR_DBPRUNE_OUTPUT naming it, and nothing is replaced', async () => {
    const dir = join(tmp.dir, 'missing');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.txt'), 'old a');
    const set = new OutputSet();
    await set.writeFile(join(dir, 'a.txt'), 'new a');
    set.file(join(dir, 'b.txt'));
    await expect(set.commit()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT', context: { file: join(dir, 'b.txt') } });
    expect(readdirSync(dir)).toEqual(['a.txt']);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('old a');
  });

  it('removeTempFilesSync (forced exit) deletes the temporary files of open sets', async () => {
    const dir = join(tmp.dir, 'forced');
    mkdirSync(dir);
    const set = new OutputSet();
    await set.writeFile(join(dir, 'a.txt'), 'x');
    expect(readdirSync(dir)).toHaveLength(1);
    removeTempFilesSync();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('prepareOutputDir removes the temporary files of dead processes, not those of live ones', async () => {
    const dir = join(tmp.dir, 'debris');
    mkdirSync(dir);
    const dead = `.manifest.parquet.tmp-${2 ** 22 + 1}-3`; // above Linux's pid_max: never a live process
    const live = `.kept.txt.tmp-${process.pid}-9`;
    for (const n of [dead, live, 'keep.me', '.hidden']) writeFileSync(join(dir, n), 'x');
    await prepareOutputDir(dir);
    expect(readdirSync(dir).sort()).toEqual(['.hidden', live, 'keep.me'].sort());
  });

  it('writeFileAtomic replaces a file; prepareOutputDir refuses a file with ERR_DBPRUNE_OUTPUT', async () => {
    const p = join(tmp.dir, 'one.json');
    await writeFileAtomic(p, '1');
    await writeFileAtomic(p, '2');
    expect(readFileSync(p, 'utf8')).toBe('2');
    await expect(prepareOutputDir(p)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT', context: { file: p } });
    await expect(prepareOutputDir(join(p, 'sub'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT' });
    await prepareOutputDir(join(tmp.dir, 'new', 'deep'));
    expect(existsSync(join(tmp.dir, 'new', 'deep'))).toBe(true);
  });
});

describe('writers report what the disk refused (/dev/full: every write fails with ENOSPC)', () => {
  const row = { key: 'k', shard: null, url: null, caption: null, uid: null, decision: 'keep' as const, reason: 'dbp' as const, cluster: 0, distance: 0.5, duplicate_of: null, error: null };
  for (const format of ['jsonl', 'parquet', 'arrow'] as const) {
    it(`${format} manifest → ERR_DBPRUNE_OUTPUT naming the file`, async () => {
      const w = createManifestWriter('/dev/full', format);
      const done = (async () => {
        await w.write([row, row]);
        await w.close();
      })();
      await expect(done).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT', context: { file: '/dev/full' } });
    });
  }
  it('kept.txt and kept_uids.npy → ERR_DBPRUNE_OUTPUT', async () => {
    const kept = createKeptKeysWriter('/dev/full');
    await expect((async () => (await kept.write(['a', 'b']), await kept.close()))()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT' });
    const uids = createUidSubsetWriter('/dev/full');
    await uids.write(['0123456789abcdef0123456789abcdef']);
    await expect(uids.close()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT' });
  });
});
