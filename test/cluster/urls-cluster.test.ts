/**
 * `run --urls <list> --cluster` against real components (redis-server, two workers, a loopback
 * image server, the bundled model): the decisions equal `embed --urls` on one machine followed by
 * exact `prune` of its output, with the same img2dataset keys, and every URL that could not be
 * embedded is an error row (rows in = rows out).
 */
import { createReadStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { readTarSamples } from '../../src/io/tar.js';
import { runCli } from '../helpers/cli.js';
import { spawnWorker, startRedis, type CliProcess, type RedisHandle } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/fixture.js';
import { sendImage, startServer, tempDir } from '../stages/image-fixtures.js';

const model = join(repoRoot, 'data-samples', 'model');
const centroids = join(repoRoot, 'data-samples', 'centroids', 'centroids.npy');
const tmp = tempDir('dbprune-cluster-urls-');
let server: Awaited<ReturnType<typeof startServer>>;
let redis: RedisHandle;
const workers: CliProcess[] = [];
const images = new Map<string, ImageSample>();

beforeAll(async () => {
  for (const shard of ['00002.tar', '00003.tar']) for await (const s of readTarSamples(createReadStream(join(repoRoot, 'data-samples', 'shards', shard)))) images.set(s.key, s);
  server = await startServer((req, res) => {
    const s = images.get((req.url ?? '').replace(/^\/img\//, '').replace(/\.\w+$/, ''));
    sendImage(res, s);
  });
  redis = await startRedis();
  for (let i = 0; i < 2; i++) workers.push(spawnWorker(redis.url));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  await server.close();
  tmp.cleanup();
});

describe('run --urls --cluster', () => {
  it('equals embed --urls + exact prune on one machine; failed downloads are error rows', async () => {
    const keys = [...images.keys()].slice(0, 44);
    const lines = keys.map((k, i) => JSON.stringify({ url: `${server.url}/img/${k}.jpg`, caption: `caption ${i}` }));
    lines.splice(9, 0, JSON.stringify({ url: `${server.url}/img/missing-1.jpg`, caption: 'gone' }));
    lines.splice(30, 0, JSON.stringify({ url: `${server.url}/img/missing-2.jpg`, caption: 'gone too' }));
    const list = join(tmp.dir, 'urls.jsonl');
    writeFileSync(list, `${lines.join('\n')}\n`);
    const listFlags = ['--urls', list, '--allow-private', '--samples-per-shard', '8', '--model', model];

    const emb = join(tmp.dir, 'emb');
    const e = await runCli(['embed', ...listFlags, '--out', emb, '-q']);
    expect(e.code, e.stderr).toBe(0);
    const single = join(tmp.dir, 'single');
    const p = await runCli(['prune', '--embeddings', emb, '--centroids', centroids, '--keep', '0.3', '--out', single, '--no-report', '-q']);
    expect(p.code, p.stderr).toBe(0);

    const out = join(tmp.dir, 'cluster');
    const c = await runCli(['run', ...listFlags, '--centroids', centroids, '--keep', '0.3', '--out', out, '--no-report', '--cluster', redis.url, '-q'], { timeoutMs: 180_000 });
    expect(c.code, c.stderr).toBe(0);

    const a = readManifest(join(single, 'manifest.parquet'));
    const b = readManifest(join(out, 'manifest.parquet'));
    expect(b).toHaveLength(lines.length); // rows in = rows out
    expect(b.map((r) => r.key)).toEqual(a.map((r) => r.key)); // img2dataset keys, list order
    const pick = (r: (typeof a)[number]) => ({ key: r.key, decision: r.decision, reason: r.reason, cluster: r.cluster, distance: r.distance, url: r.url, caption: r.caption });
    const decidedA = a.filter((r) => !r.reason.startsWith('error:'));
    const decidedB = b.filter((r) => !r.reason.startsWith('error:'));
    expect(decidedB.map(pick)).toEqual(decidedA.map(pick));
    expect(decidedB.filter((r) => r.decision === 'keep').length).toBeGreaterThan(5);
    const failed = b.filter((r) => r.reason.startsWith('error:'));
    expect(failed.map((r) => r.url)).toEqual([`${server.url}/img/missing-1.jpg`, `${server.url}/img/missing-2.jpg`]);
    expect(failed.every((r) => r.reason === 'error:download')).toBe(true);
  }, 240_000);
});
