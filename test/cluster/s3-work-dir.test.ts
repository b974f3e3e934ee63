/**
 * The cluster mode on s3:// against real components: redis-server and s3rver on 127.0.0.1, two
 * `dbprune worker` processes, one single-machine `prune` as the reference.
 * - The shared work dir on s3:// (S3WorkStore over src/io/storage): the outputs equal single-machine
 *   `prune`, and the work dir's objects are under the s3:// prefix.
 * - The outputs on s3:// (`--out s3://bucket/out`): the objects equal single-machine `prune`'s local
 *   files, and the default work dir (`<out>/.work`) is a prefix under the s3:// output (not a local
 *   `s3:/…` folder, as node's path.join would make it).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import { listLocation, readLocation } from '../../src/io/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { spawnWorker, startRedis, writeClusteredParts, type CliProcess, type RedisHandle } from '../helpers/cluster.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-s3-'));
let redis: RedisHandle;
let srv: S3TestServer;
let data: { folder: string; centroids: string; total: number };
const workers: CliProcess[] = [];
const single = join(dir, 'single');
let args: string[];

beforeAll(async () => {
  redis = await startRedis();
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env); // the workers and the submitter inherit it
  data = await writeClusteredParts(dir, [900, 1200, 700]);
  args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3'];
  const s = await runCli([...args, '--out', single, '-q'], { cwd: dir });
  expect(s.code, s.stderr).toBe(0);
  for (let i = 0; i < 2; i++) workers.push(spawnWorker(redis.url));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function objectNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of listLocation(prefix)) names.push(e.location.slice(prefix.length));
  return names.sort();
}

describe('prune --cluster --work-dir s3://', () => {
  it('equals single-machine prune, with the work dir as objects under the prefix', async () => {
    const out = join(dir, 'cluster');
    const c = await runCli([...args, '--out', out, '--cluster', redis.url, '--work-dir', 's3://bucket/work', '-q'], { timeoutMs: 150_000 });
    expect(c.code, c.stderr).toBe(0);
    expect(readFileSync(join(out, 'kept.txt'), 'utf8')).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
    expect(readManifest(join(out, 'manifest.parquet'))).toEqual(readManifest(join(single, 'manifest.parquet')));
    const objects: string[] = [];
    for await (const e of listLocation('s3://bucket/work/')) objects.push(e.location);
    expect(objects.length).toBeGreaterThan(3);
  }, 180_000);
});

describe('prune --cluster --out s3://', () => {
  it('writes the same outputs as single-machine prune, the work dir under the output prefix', async () => {
    const c = await runCli([...args, '--out', 's3://bucket/out', '--cluster', redis.url, '-q'], { cwd: dir, timeoutMs: 150_000 });
    expect(c.code, c.stderr).toBe(0);
    expect(existsSync(join(dir, 's3:'))).toBe(false); // no local folder named after the URI

    expect((await readLocation('s3://bucket/out/kept.txt')).toString()).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
    const manifest = join(dir, 'cluster-manifest.parquet');
    writeFileSync(manifest, await readLocation('s3://bucket/out/manifest.parquet'));
    expect(readManifest(manifest)).toEqual(readManifest(join(single, 'manifest.parquet')));
    const counts = (s: { totals: Record<string, unknown> }): Record<string, unknown> => ({ ...s.totals, seconds: 0, samples_per_sec: 0 }); // timings differ
    const stats = JSON.parse((await readLocation('s3://bucket/out/stats.json')).toString()) as { totals: Record<string, unknown> };
    const localStats = JSON.parse(readFileSync(join(single, 'stats.json'), 'utf8')) as { totals: Record<string, unknown> };
    expect(counts(stats)).toEqual(counts(localStats));
    expect(stats.totals.kept).toBeGreaterThan(0);

    const names = await objectNames('s3://bucket/out/');
    const outputs = names.filter((n) => !n.startsWith('.work/'));
    expect(outputs).toEqual(readdirSync(single).sort());
    expect(outputs).toContain('report.html');
    expect((await readLocation('s3://bucket/out/kept_uids.npy')).equals(readFileSync(join(single, 'kept_uids.npy')))).toBe(true);
    expect(names.filter((n) => n.startsWith('.work/')).length).toBeGreaterThan(3);
  }, 180_000);
});
