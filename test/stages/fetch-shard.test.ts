import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { ErrorCodes } from '../../src/core/errors.js';
import { fetchShardBytes, shardsToSamples } from '../../src/stages/fetch-shard.js';
import { shardSource } from '../../src/stages/shard-source.js';
import { makeTar, runThrough, sampleMembers, startServer, tempDir, writeFile } from './image-fixtures.js';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const SHARDS = 3;
const PER = 12;
const tars: Buffer[] = [];
const keys: string[][] = [];
let tmp: ReturnType<typeof tempDir>;
let server: Awaited<ReturnType<typeof startServer>>;
const hits = new Map<string, number>();

beforeAll(async () => {
  tmp = tempDir();
  for (let s = 0; s < SHARDS; s++) {
    const m = await sampleMembers(PER, `s${s}_`);
    tars.push(await makeTar(m.members));
    keys.push(m.keys);
    writeFile(tmp.dir, `0000${s}.tar`, tars[s]);
  }
  server = await startServer((req, res) => {
    const path = req.url ?? '/';
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    if (path.startsWith('/redir/')) {
      res.writeHead(302, { location: decodeURIComponent(path.slice('/redir/'.length)) });
      res.end();
      return;
    }
    if (path.startsWith('/trickle/')) {
      // one byte every 100 ms, forever: within any gap timeout, but far below any useful rate
      res.writeHead(200, { 'content-length': String(tars[0].length) });
      let i = 0;
      const t = setInterval(() => res.write(tars[0].subarray(i, ++i)), 100);
      res.on('close', () => clearInterval(t));
      return;
    }
    const m = /\/(ok|flaky|reset|slow)\/0000(\d)\.tar$/.exec(path);
    if (!m) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    const tar = tars[Number(m[2])];
    if (m[1] === 'flaky' && n === 1) {
      res.statusCode = 500;
      res.end('try again');
      return;
    }
    res.setHeader('content-length', String(tar.length));
    if (m[1] === 'reset') {
      res.write(tar.subarray(0, Math.floor(tar.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (m[1] === 'slow') {
      res.write(tar.subarray(0, 1024)); // then stall forever
      return;
    }
    res.end(tar);
  });
});

afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

/** The test server is on loopback, which the SSRF guard refuses by default. */
const LOOP = { allowPrivate: true };

const allKeys = (): string[] => keys.flat();

describe('shardsToSamples', () => {
  it('local paths and http URLs give the same samples, in shard order', async () => {
    const local = await runThrough<ImageSample>(shardSource({ inputs: `${tmp.dir}/0000{0..2}.tar` }), shardsToSamples(LOOP));
    const remote = await runThrough<ImageSample>(
      shardSource({ inputs: `${server.url}/ok/0000{0..2}.tar` }),
      shardsToSamples({ ...LOOP, concurrency: 3, readAhead: 2 }),
    );
    expect(local.map((s) => s.key)).toEqual(allKeys());
    expect(remote.map((s) => s.key)).toEqual(allKeys());
    for (let i = 0; i < local.length; i++) {
      expect(remote[i].image).toEqual(local[i].image);
      expect(remote[i].caption).toBe(local[i].caption);
      expect(remote[i].shard).toBe(`${server.url}/ok/${local[i].shard?.slice(-9)}`);
    }
  });

  it('a 404 shard gives one error row; the other shards pass whole', async () => {
    const shards = [`${server.url}/ok/00000.tar`, `${server.url}/missing/00009.tar`, `${server.url}/ok/00001.tar`];
    const out = await runThrough<ImageSample>(shards.map((shard) => ({ shard })), shardsToSamples({ ...LOOP, retries: 0 }));
    expect(out).toHaveLength(2 * PER + 1); // rows in (2 shards' samples + 1 failed shard) = rows out
    const err = out[PER];
    expect(err.key).toBe('00009.tar:shard');
    expect(err.error).toMatchObject({ reason: 'error:download', code: ErrorCodes.DOWNLOAD });
    expect(err.error?.message).toContain('404');
    expect(err.error?.message).toContain(shards[1]);
    expect(out.filter((s) => s.error)).toHaveLength(1);
  });

  it('a reset mid-shard gives the samples read so far plus one error row, without hanging', async () => {
    const out = await runThrough<ImageSample>([{ shard: `${server.url}/reset/00002.tar` }, { shard: `${tmp.dir}/00000.tar` }], shardsToSamples(LOOP));
    const errIdx = out.findIndex((s) => s.error);
    expect(errIdx).toBeGreaterThan(0);
    expect(errIdx).toBeLessThan(PER);
    expect(out[errIdx]).toMatchObject({ key: '00002.tar:shard', error: { reason: 'error:download' } });
    expect(out.slice(0, errIdx).map((s) => s.key)).toEqual(keys[2].slice(0, errIdx));
    expect(out.slice(errIdx + 1).map((s) => s.key)).toEqual(keys[0]);
    expect(hits.get('/reset/00002.tar')).toBe(1); // bytes were passed on: no retry
  });

  it('retries a 500 and then reads the whole shard', async () => {
    const out = await runThrough<ImageSample>([{ shard: `${server.url}/flaky/00001.tar` }], shardsToSamples({ ...LOOP, retryBaseMs: 5 }));
    expect(out.map((s) => s.key)).toEqual(keys[1]);
    expect(out.every((s) => !s.error)).toBe(true);
    expect(hits.get('/flaky/00001.tar')).toBe(2);
  });

  it('a stalled body times out into an error row', async () => {
    const out = await runThrough<ImageSample>([`${server.url}/slow/00000.tar`], shardsToSamples({ ...LOOP, timeoutMs: 300, retries: 0 }));
    expect(out.at(-1)).toMatchObject({ key: '00000.tar:shard', error: { reason: 'error:download' } });
    expect(out.filter((s) => s.error)).toHaveLength(1);
  });

  it('a missing local file and a non-tar file become error rows', async () => {
    const junk = writeFile(tmp.dir, 'junk.tar', Buffer.from('this is not a tar archive '.repeat(50)));
    const out = await runThrough<ImageSample>([`${tmp.dir}/nope.tar`, junk], shardsToSamples(LOOP));
    expect(out.map((s) => [s.key, s.error?.reason])).toEqual([
      ['nope.tar:shard', 'error:download'],
      ['junk.tar:shard', 'error:untar'],
    ]);
  });

  it('enforces maxShardBytes', async () => {
    const out = await runThrough<ImageSample>([`${server.url}/ok/00000.tar`], shardsToSamples({ ...LOOP, maxShardBytes: 1000 }));
    expect(out).toHaveLength(1);
    expect(out[0].error?.message).toMatch(/maxShardBytes/);
  });

  it('stops with ERR_DBPRUNE_ABORTED when the signal fires', async () => {
    const ac = new AbortController();
    const seen: ImageSample[] = [];
    const sink = new Writable({
      objectMode: true,
      write(s: ImageSample, _e, cb) {
        seen.push(s);
        if (seen.length === 3) ac.abort();
        cb();
      },
    });
    await expect(pipeline(shardSource({ inputs: `${tmp.dir}/0000{0..2}.tar` }), shardsToSamples({ signal: ac.signal, readAhead: 1 }), sink)).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
    });
  });

  it('rejects bad options at construction', () => {
    expect(() => shardsToSamples({ concurrency: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => shardsToSamples({ retries: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});

describe('SSRF guard on shard fetches (issue #11 item 11)', () => {
  const collect = async (url: string, opts: Parameters<typeof fetchShardBytes>[1]): Promise<unknown> => {
    try {
      for await (const _ of fetchShardBytes(url, opts)) void _;
      return undefined;
    } catch (e) {
      return e;
    }
  };

  it('refuses a loopback shard URL by default, before connecting', async () => {
    const before = hits.get('/ok/00001.tar') ?? 0;
    const out = await runThrough<ImageSample>([`${server.url}/ok/00001.tar`], shardsToSamples());
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ key: '00001.tar:shard', error: { reason: 'error:ssrf', code: ErrorCodes.SSRF } });
    expect(hits.get('/ok/00001.tar') ?? 0).toBe(before);
  });

  it('checks every redirect hop: a trusted host cannot redirect to a private or metadata address', async () => {
    const trusted = { allowPrivateHosts: ['127.0.0.1'], retries: 0 };
    const port = new URL(server.url).port;
    // 127.0.0.2 is loopback too (and nothing listens there); 169.254.169.254 is the cloud metadata address.
    for (const target of [`http://127.0.0.2:${port}/ok/00000.tar`, 'http://169.254.169.254/latest/meta-data/']) {
      const e = await collect(`${server.url}/redir/${encodeURIComponent(target)}`, trusted);
      expect(e).toMatchObject({ code: ErrorCodes.SSRF });
      expect((e as Error).message).toContain(target);
    }
    // a host name is judged by the addresses it resolves to, at connect time
    const lookup = ((_h: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) => cb(null, [{ address: '127.0.0.1', family: 4 }])) as never;
    const e = await collect(`${server.url}/redir/${encodeURIComponent(`http://metadata.test:${port}/ok/00000.tar`)}`, { ...trusted, lookup });
    expect(e).toMatchObject({ code: ErrorCodes.SSRF });
    // a redirect that stays on the trusted host is followed
    const chunks: Buffer[] = [];
    for await (const c of fetchShardBytes(`${server.url}/redir/${encodeURIComponent('/ok/00002.tar')}`, trusted)) chunks.push(c);
    expect(Buffer.concat(chunks).equals(tars[2])).toBe(true);
  });
});

describe('slow shards (issue #11 item 8)', () => {
  it('a trickling shard fails on minBytesPerSecond and the shards behind it come out', { timeout: 10_000 }, async () => {
    const t0 = Date.now();
    const shards = [`${server.url}/trickle/00000.tar`, `${server.url}/ok/00001.tar`, `${server.url}/ok/00002.tar`];
    const out = await runThrough<ImageSample>(shards, shardsToSamples({ ...LOOP, concurrency: 2, retries: 0, minBytesPerSecond: 1000, rateWindowMs: 500 }));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(out[0]).toMatchObject({ key: '00000.tar:shard', error: { reason: 'error:download', code: ErrorCodes.DOWNLOAD } });
    expect(out[0].error?.message).toMatch(/minBytesPerSecond/);
    expect(out.slice(1).map((s) => s.key)).toEqual([...keys[1], ...keys[2]]);
  });

  it('validates the rate options', () => {
    expect(() => shardsToSamples({ minBytesPerSecond: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => shardsToSamples({ rateWindowMs: 10 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});

describe('fetchShardBytes', () => {
  it('streams a URL byte for byte', async () => {
    const chunks: Buffer[] = [];
    for await (const c of fetchShardBytes(`${server.url}/ok/00002.tar`, LOOP)) chunks.push(c);
    expect(Buffer.concat(chunks).equals(tars[2])).toBe(true);
  });
});
