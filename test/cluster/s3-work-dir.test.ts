/**
 * The cluster mode's shared work dir on s3:// (S3WorkStore over src/io/storage) against real
 * components: redis-server and s3rver on 127.0.0.1, two `dbprune worker` processes. The outputs
 * equal single-machine `prune`, and the work dir's objects are under the s3:// prefix.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import { listLocation } from '../../src/io/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { spawnWorker, startRedis, writeClusteredParts, type CliProcess, type RedisHandle } from '../helpers/cluster.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-s3-'));
let redis: RedisHandle;
let srv: S3TestServer;
let data: { folder: string; centroids: string; total: number };
const workers: CliProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env); // the workers and the submitter inherit it
  data = await writeClusteredParts(dir, [900, 1200, 700]);
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('prune --cluster --work-dir s3://', () => {
  it('equals single-machine prune, with the work dir as objects under the prefix', async () => {
    const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3'];
    const single = join(dir, 'single');
    const s = await runCli([...args, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);
    for (let i = 0; i < 2; i++) workers.push(spawnWorker(redis.url));
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
