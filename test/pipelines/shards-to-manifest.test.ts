/**
 * The main streaming job end to end (real tars, real HTTP on loopback, real sharp, real ONNX, real
 * centroids): local and HTTP shards give the same manifest; faults become the right error rows with
 * rows in = rows out; memory stays bounded under a slow sink.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardsToManifest } from '../../pipelines/shards-to-manifest.js';
import { openDecisionTail } from '../../pipelines/decision-tail.js';
import type { ManifestRow } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { resolveModel } from '../../src/io/model-config.js';
import { decode } from '../../src/stages/decode.js';
import { embed } from '../../src/stages/embed.js';
import { shardsToSamples } from '../../src/stages/fetch-shard.js';
import { shardSource } from '../../src/stages/shard-source.js';
import { tap } from '../../src/stages/tap.js';
import { repoRoot } from '../helpers/fixture.js';
import { makeTar, pngClaiming, sampleMembers, solidImage, startServer, tempDir, writeFile } from '../stages/image-fixtures.js';

const shardsDir = join(repoRoot, 'data-samples', 'shards');
const model = join(repoRoot, 'data-samples', 'model');
const centroids = join(repoRoot, 'data-samples', 'centroids', 'centroids.npy');
const tmp = tempDir('dbprune-s2m-');
let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '');
    if (!/^0000\d\.tar$/.test(name)) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', 'application/x-tar');
    res.end(readFileSync(join(shardsDir, name)));
  });
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

describe('shards → manifest (streaming)', () => {
  it('shards over HTTP on loopback give the same manifest as local paths', async () => {
    const local = await shardsToManifest({ inputs: join(shardsDir, '{00000..00002}.tar'), model, centroids, keepRatio: 0.3, out: join(tmp.dir, 'local'), format: 'jsonl' });
    const remote = await shardsToManifest({ inputs: `${server.url}/{00000..00002}.tar`, fetch: { allowPrivate: true }, model, centroids, keepRatio: 0.3, out: join(tmp.dir, 'remote'), format: 'jsonl' });
    const a = readManifest(local.files.manifest as string);
    const b = readManifest(remote.files.manifest as string);
    expect(a.length).toBe(600);
    const strip = (r: ManifestRow) => ({ key: r.key, decision: r.decision, reason: r.reason, cluster: r.cluster, distance: r.distance });
    expect(b.map(strip)).toEqual(a.map(strip));
    expect(b[0].shard).toBe(`${server.url}/00000.tar`);
    expect(local.stats.totals.kept).toBeGreaterThan(0);
    expect(Math.abs(local.stats.totals.keep_ratio - 0.3)).toBeLessThan(0.05);
  });

  it('faults become error rows and rows in = rows out', async () => {
    const good = await sampleMembers(6, 'g');
    const corrupt = Buffer.from(await solidImage([10, 200, 30]));
    corrupt.fill(0x41, 20); // keeps the JPEG magic, breaks the rest
    const faults = await makeTar([
      ...good.members,
      { name: 'bad.jpg', data: corrupt },
      { name: 'bad.txt', data: 'a corrupt jpeg' },
      { name: 'noimg.txt', data: 'a caption without image' },
      { name: 'noimg.json', data: '{"key":"noimg"}' },
      { name: 'huge.png', data: pngClaiming(20000, 20000) },
    ]);
    const full = await makeTar((await sampleMembers(20, 't')).members);
    const faultsPath = writeFile(tmp.dir, 'faults.tar', faults);
    const truncPath = writeFile(tmp.dir, 'trunc.tar', full.subarray(0, Math.floor(full.length / 2) + 100));
    copyFileSync(join(shardsDir, '00003.tar'), join(tmp.dir, 'good.tar'));
    const inputs = [join(tmp.dir, 'good.tar'), faultsPath, `${server.url}/missing.tar`, truncPath];
    const r = await shardsToManifest({ inputs, fetch: { allowPrivate: true }, model, centroids, keepRatio: 0.5, out: join(tmp.dir, 'faults'), format: 'parquet' });
    const rows = readManifest(r.files.manifest as string);
    const byKey = new Map(rows.map((row) => [row.key, row]));
    expect(byKey.size).toBe(rows.length); // exactly once
    expect(byKey.get('bad')?.reason).toBe('error:decode');
    expect(byKey.get('huge')?.reason).toBe('error:decode');
    expect(byKey.get('huge')?.error).toMatch(/maxPixels/);
    expect(byKey.get('noimg')?.reason).toBe('error:missing-image');
    expect(byKey.get('missing.tar:shard')?.reason).toBe('error:download');
    expect(byKey.get('missing.tar:shard')?.error).toMatch(/404/);
    expect(byKey.get('trunc.tar:shard')?.reason).toBe('error:untar');
    const truncated = rows.filter((row) => /^t\d{4}$/.test(row.key));
    expect(truncated.length).toBeGreaterThan(0);
    expect(truncated.length).toBeLessThan(20);
    // rows in = rows out: 200 good + 6 good + 3 bad + 1 download error + the truncated shard's samples + its error row
    expect(rows.length).toBe(200 + 6 + 3 + 1 + truncated.length + 1);
    expect(r.stats.totals.samples).toBe(rows.length);
    expect(rows.filter((row) => row.reason === 'dbp').length).toBe(200 + 6 + truncated.length);
    expect(r.stats.totals.errors).toEqual({ 'error:decode': 2, 'error:missing-image': 1, 'error:download': 1, 'error:untar': 1 });
  });

  it('bounded in flight under a slow sink: memory does not grow with input length', async () => {
    const { preprocessing: pre } = await resolveModel(model);
    async function run(inputs: string[]): Promise<{ maxInFlight: number; rows: number; maxHeapMB: number }> {
      const tail = await openDecisionTail({ centroids, keepRatio: 0.3 });
      let entered = 0;
      let left = 0;
      let maxInFlight = 0;
      let maxHeap = 0;
      const slowSink = new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(rows: ManifestRow[], _e, cb) {
          left += rows.length;
          maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
          setTimeout(cb, 2);
        },
      });
      await pipeline(
        shardSource({ inputs }),
        shardsToSamples({ concurrency: 2, readAhead: 16 }),
        tap(() => {
          entered++;
          maxInFlight = Math.max(maxInFlight, entered - left);
        }),
        decode({ size: pre?.size, mean: pre?.mean, std: pre?.std, concurrency: 2 }),
        embed({ model, batchSize: 16, maxDelayMs: 5 }),
        ...tail.stages,
        slowSink,
      );
      expect(left).toBe(entered);
      return { maxInFlight, rows: left, maxHeapMB: maxHeap / 2 ** 20 };
    }
    const short = await run([join(shardsDir, '00000.tar')]);
    const long = await run(Array.from({ length: 4 }, (_, i) => join(shardsDir, `0000${i}.tar`)).concat(Array.from({ length: 2 }, (_, i) => join(shardsDir, `0000${i + 4}.tar`))));
    expect(short.rows).toBe(200);
    expect(long.rows).toBe(1200);
    // The bound comes from the stages' queues (read-ahead, decode window, micro-batches, stream
    // buffers), not from the input: six times the input must not raise it.
    expect(long.maxInFlight).toBeLessThanOrEqual(Math.max(short.maxInFlight * 1.5, 400));
    expect(long.maxInFlight).toBeLessThan(600);
    expect(long.maxHeapMB).toBeLessThan(short.maxHeapMB * 1.5 + 20);
  });
});
