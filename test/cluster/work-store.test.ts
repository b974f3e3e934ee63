/**
 * The work-dir store (atomic writes, listing, temp sweep), the part marker with checksums, and the
 * --cluster URL parsing: the pieces the distributed jobs rely on, without Redis.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeConnection, parseClusterUrl } from '../../src/cluster/connection.js';
import { readPartFiles, writePartFiles } from '../../src/cluster/run-spec.js';
import { openWorkStore } from '../../src/cluster/work-store.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-work-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('work store', () => {
  it('writes atomically (no temp file left), reads, lists and sweeps temp files of killed writers', async () => {
    const store = openWorkStore(dir);
    await store.write('run/a/part.json', '{"x":1}');
    expect((await store.read('run/a/part.json')).toString()).toBe('{"x":1}');
    expect(await store.readTextIfExists('run/a/missing.json')).toBeUndefined();
    expect(await store.list('run/a')).toEqual(['part.json']);
    expect(await store.list('nothing')).toEqual([]);
    writeFileSync(join(dir, 'run', 'a', 'part.json.123-abcd.tmp'), 'half'); // a writer killed mid-write
    expect(await store.sweepTemp('run')).toBe(1);
    expect(readdirSync(join(dir, 'run', 'a'))).toEqual(['part.json']);
    await expect(store.read('run/none')).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CLUSTER_WORK_DIR' });
  });

  it('a part is done only when its marker exists and every checksum matches', async () => {
    const store = openWorkStore(dir);
    await writePartFiles(store, { 'r/p.rec': Buffer.from([1, 2, 3, 4]), 'r/p.json': '{}' }, 'r/p.done');
    expect((await readPartFiles(store, 'r/p.done'))?.get('r/p.rec')).toEqual(Buffer.from([1, 2, 3, 4]));
    writeFileSync(join(dir, 'r', 'p.rec'), Buffer.from([1, 2, 3, 5])); // corrupted after the fact
    expect(await readPartFiles(store, 'r/p.done')).toBeUndefined();
    expect(await readPartFiles(store, 'r/p.done', ['r/p.json'])).toBeDefined(); // only what was asked is verified
    expect(await readPartFiles(store, 'r/none.done')).toBeUndefined();
  });

  it('opens s3:// prefixes (S3WorkStore; see test/cluster/s3-work-dir.test.ts) and refuses other URLs', () => {
    expect(openWorkStore('s3://bucket/work/').root).toBe('s3://bucket/work');
    expect(() => openWorkStore('gs://bucket/work')).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_USAGE' }));
  });
});

describe('--cluster URL', () => {
  it('parses redis://[user:password@]host[:port][/db] and never prints the password', () => {
    const c = parseClusterUrl('redis://me:s%40cret@10.0.0.5:6380/2');
    expect(c).toMatchObject({ host: '10.0.0.5', port: 6380, db: 2, username: 'me', password: 's@cret', maxRetriesPerRequest: null });
    expect(describeConnection(c)).toBe('redis://10.0.0.5:6380/2');
    expect(parseClusterUrl('redis://localhost')).toMatchObject({ host: 'localhost', port: 6379, db: 0 });
    for (const bad of ['http://x:1', 'not a url', 'redis://h:1/x']) expect(() => parseClusterUrl(bad)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_USAGE' }));
  });
});
