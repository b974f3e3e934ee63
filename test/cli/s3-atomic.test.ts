/**
 * Set-level replacement on s3:// (s3rver on loopback): an output set stages its objects beside
 * the final ones and moves them into place only at commit; a run that fails (a server fault on the
 * last object it writes) leaves the earlier run's objects exactly as they were, and no staged
 * object behind.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutputSet, prepareOutputDir } from '../../src/io/output-set.js';
import { listLocation, openWrite, readLocation, STALE_STAGING_MS, writeLocation } from '../../src/io/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { dbpSmallDir } from '../helpers/fixture.js';
import { startFaultProxy, startS3Server, type S3TestServer } from '../helpers/s3.js';

let srv: S3TestServer;

beforeAll(async () => {
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
}, 120_000);

afterAll(async () => {
  await srv?.stop();
});

/** Relative key → content of every object under a prefix. */
async function snapshot(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of listLocation(prefix)) out.set(e.location.slice(prefix.length), (await readLocation(e.location)).toString('base64'));
  return out;
}

async function writeStream(location: string, text: string): Promise<void> {
  const out = await openWrite(location);
  await new Promise<void>((r) => out.stream.end(text, () => r()));
  await out.commit();
}

describe('output sets on s3://', { timeout: 240_000 }, () => {
  it('stage beside the final objects and move them into place only at commit', async () => {
    await writeLocation('s3://bucket/set/a.txt', 'old a');
    await writeLocation('s3://bucket/set/b.txt', 'old b');
    const set = new OutputSet();
    const staged = set.file('s3://bucket/set/a.txt');
    expect(staged).toMatch(/^s3:\/\/bucket\/set\/\.a\.txt\.tmp-/);
    await writeStream(staged, 'new a');
    await set.writeFile('s3://bucket/set/b.txt', 'new b');
    // Mid-run a reader sees the earlier objects, and the staged ones as dot-named temporaries.
    const mid = await snapshot('s3://bucket/set/');
    expect(mid.get('a.txt')).toBe(Buffer.from('old a').toString('base64'));
    expect(mid.get('b.txt')).toBe(Buffer.from('old b').toString('base64'));
    expect([...mid.keys()].filter((k) => k.includes('.tmp-')).length).toBe(2);
    await set.commit();
    const after = await snapshot('s3://bucket/set/');
    expect([...after.keys()].sort()).toEqual(['a.txt', 'b.txt']);
    expect((await readLocation('s3://bucket/set/a.txt')).toString()).toBe('new a');
    expect((await readLocation('s3://bucket/set/b.txt')).toString()).toBe('new b');

    const failing = new OutputSet();
    await writeStream(failing.file('s3://bucket/set/a.txt'), 'never a');
    await failing.writeFile('s3://bucket/set/c.txt', 'never c');
    await failing.abort();
    expect([...(await snapshot('s3://bucket/set/')).keys()].sort()).toEqual(['a.txt', 'b.txt']);
    expect((await readLocation('s3://bucket/set/a.txt')).toString()).toBe('new a');
  });

  it("the next run into a prefix deletes a killed run's staged objects older than the limit, and only those", async () => {
    const old = (Date.now() - STALE_STAGING_MS - 60_000).toString(36);
    const fresh = (Date.now() - 60_000).toString(36);
    await writeLocation(`s3://bucket/killed/.manifest.parquet.tmp-4242-${old}-1`, 'debris');
    await writeLocation(`s3://bucket/killed/.stats.json.tmp-4242-${fresh}-2`, 'another run, still going');
    await writeLocation(`s3://bucket/killed/sub/.x.tmp-4242-${old}-3`, 'not directly under the prefix');
    await writeLocation('s3://bucket/killed/manifest.parquet', 'earlier output');
    await prepareOutputDir('s3://bucket/killed');
    expect([...(await snapshot('s3://bucket/killed/')).keys()].sort()).toEqual([`.stats.json.tmp-4242-${fresh}-2`, 'manifest.parquet', `sub/.x.tmp-4242-${old}-3`]);
  });

  it('a prune that fails on its last object (report.html) leaves the earlier run exactly as it was', async () => {
    const args = (keep: string): string[] => [
      'prune', '--embeddings', join(dbpSmallDir, 'embeddings.npy'), '--keys', join(dbpSmallDir, 'keys.txt'),
      '--centroids', join(dbpSmallDir, 'centroids.npy'), '--keep', keep, '-q', '--out', 's3://bucket/atomic',
    ];
    const first = await runCli(args('0.3'), { env: srv.env, timeoutMs: 120_000 });
    expect(first.code, first.stderr).toBe(0);
    const before = await snapshot('s3://bucket/atomic/');
    expect([...before.keys()].sort()).toEqual(['kept.txt', 'manifest.parquet', 'report.html', 'stats.json']);

    const proxy = await startFaultProxy(srv.endpoint, (req) => (req.method === 'PUT' && /report\.html/.test(req.url ?? '') ? 'reset' : undefined));
    try {
      const second = await runCli(args('0.5'), { env: { ...srv.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '2' }, timeoutMs: 120_000 });
      expect(second.code).toBe(1);
      const lines = second.stderr.trim().split('\n');
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(/s3:\/\/bucket\/atomic\/report\.html.*\[ERR_DBPRUNE_STORAGE\]$/);
      expect(proxy.faults).toBeGreaterThanOrEqual(2);
    } finally {
      await proxy.stop();
    }
    const after = await snapshot('s3://bucket/atomic/');
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [k, v] of before) expect(after.get(k), k).toBe(v);
  });
});
