/**
 * Shard fetches share the download stage's retry policy (src/net/retry.ts): a 429/503 with a
 * Retry-After is retried after the server's delay, not the backoff, and a Retry-After above
 * `retryMaxDelayMs` fails the shard at once. Real loopback server, real tar bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { fetchShardBytes, shardsToSamples } from '../../src/stages/fetch-shard.js';
import type { ImageSample } from '../../src/core/sample.js';
import { makeTar, runThrough, sampleMembers, startServer } from './image-fixtures.js';

let tar: Buffer;
let keys: string[];
let server: Awaited<ReturnType<typeof startServer>>;
const times = new Map<string, number[]>();

beforeAll(async () => {
  const m = await sampleMembers(4, 'r_');
  tar = await makeTar(m.members);
  keys = m.keys;
  server = await startServer((req, res) => {
    const path = req.url ?? '/';
    const seen = times.get(path) ?? [];
    seen.push(performance.now());
    times.set(path, seen);
    if (path === '/busy.tar' && seen.length === 1) return void res.writeHead(429, { 'retry-after': '1' }).end('slow down');
    if (path === '/maintenance.tar') return void res.writeHead(503, { 'retry-after': '3600' }).end('come back in an hour');
    res.writeHead(200, { 'content-length': String(tar.length) }).end(tar);
  });
});
afterAll(() => server.close());

const LOOP = { allowPrivate: true };

describe('shard fetches: the shared retry policy', () => {
  it('waits for a 429 Retry-After (not the 1 ms backoff) and then reads the shard whole', async () => {
    const out = await runThrough<ImageSample>([`${server.url}/busy.tar`], shardsToSamples({ ...LOOP, retryBaseMs: 1 }));
    expect(out.map((s) => s.key)).toEqual(keys);
    const [first, second] = times.get('/busy.tar') ?? [];
    expect(second - first).toBeGreaterThanOrEqual(950);
  });

  it('fails at once when Retry-After is above retryMaxDelayMs, saying so', async () => {
    const t0 = performance.now();
    let err: unknown;
    try {
      for await (const _ of fetchShardBytes(`${server.url}/maintenance.tar`, { ...LOOP, retryMaxDelayMs: 10_000 })) void _;
    } catch (e) {
      err = e;
    }
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(err).toMatchObject({ code: ErrorCodes.DOWNLOAD, context: { status: 503, attempts: 1 } });
    expect((err as Error).message).toMatch(/Retry-After 3600 s is above retryMaxDelayMs 10000/);
    expect(times.get('/maintenance.tar')).toHaveLength(1);
  });

  it('validates retryMaxDelayMs', () => {
    expect(() => shardsToSamples({ retryMaxDelayMs: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
