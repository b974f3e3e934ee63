import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { statusOfReason, type ImageSample, type SampleRef } from '../../src/core/sample.js';
import type { UrlRef } from '../../src/io/url-list.js';
import { contentTypeProblem, robotsDisallowed } from '../../src/net/response-policy.js';
import { parseRetryAfter } from '../../src/net/retry.js';
import { download, sniffImage, type DownloadEvent, type DownloadOptions } from '../../src/stages/download.js';

let server: Server;
let base: string;
let port: number;
let jpeg: Buffer;
let png: Buffer;
const hits = new Map<string, number[]>(); // path → request times (ms)
const userAgents: string[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const u = new URL(req.url ?? '/', 'http://x');
  const path = u.pathname;
  const times = hits.get(path + u.search) ?? [];
  times.push(Date.now());
  hits.set(path + u.search, times);
  userAgents.push(String(req.headers['user-agent']));
  const n = times.length;
  const img = (body: Buffer = jpeg, type = 'image/jpeg'): void => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  };
  switch (path) {
    case '/ok.jpg':
      return img();
    case '/ok.png':
      return img(png, 'image/png');
    case '/octet':
      return img(jpeg, 'application/octet-stream');
    case '/slow':
      setTimeout(() => img(), 3000).unref();
      return;
    case '/404':
      res.writeHead(404, { 'content-type': 'text/html' });
      return void res.end('not found');
    case '/500':
      res.writeHead(500);
      return void res.end('boom');
    case '/flaky':
      if (n === 1) {
        res.writeHead(500);
        return void res.end('first time fails');
      }
      return img();
    case '/429':
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '1' });
        return void res.end('slow down');
      }
      return img();
    case '/429-long':
      res.writeHead(429, { 'retry-after': '3600' });
      return void res.end('come back in an hour');
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      return void res.end();
    case '/redirect':
      res.writeHead(301, { location: `/ok.jpg` });
      return void res.end();
    case '/to-private':
      res.writeHead(302, { location: 'http://10.0.0.1/secret.jpg' });
      return void res.end();
    case '/to-localhost':
      res.writeHead(302, { location: `http://localhost:${port}/ok.jpg` });
      return void res.end();
    case '/to-v6':
      res.writeHead(302, { location: `http://[::1]:${port}/ok.jpg` });
      return void res.end();
    case '/to-file':
      res.writeHead(302, { location: 'file:///etc/passwd' });
      return void res.end();
    case '/huge-length':
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(50 * 1024 * 1024 * 1024) });
      res.write(jpeg.subarray(0, 100));
      return; // never finishes; the client must give up at the headers
    case '/big': {
      res.writeHead(200, { 'content-type': 'image/jpeg' }); // chunked, no length
      const chunk = Buffer.alloc(64 * 1024, 1);
      chunk.set(jpeg.subarray(0, 3));
      let sent = 0;
      const more = (): void => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('error', () => undefined);
      return more();
    }
    case '/truncated':
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(jpeg.length) });
      res.write(jpeg.subarray(0, Math.floor(jpeg.length / 2)), () => res.socket?.destroy());
      return;
    case '/html':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end('<html>hello</html>');
    case '/not-image':
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      return void res.end('this is plain text pretending to be a jpeg');
    case '/gzip': {
      const gz = gzipSync(jpeg);
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-encoding': 'gzip', 'content-length': gz.length });
      return void res.end(gz);
    }
    case '/robots':
      res.setHeader('x-robots-tag', 'noai');
      return img();
    case '/robots-other-bot':
      res.setHeader('x-robots-tag', 'otherbot: noai, noimageai');
      return img();
    case '/robots-our-bot':
      res.setHeader('x-robots-tag', ['index', 'mybot: noimageai']);
      return img();
    default:
      res.writeHead(404);
      res.end();
  }
}

beforeAll(async () => {
  jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg().toBuffer();
  png = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).png().toBuffer();
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** Fast, explicit options for loopback tests. */
const FAST: DownloadOptions = { allowPrivate: true, retries: 2, retryBaseMs: 5, headersTimeoutMs: 400, bodyTimeoutMs: 400, concurrency: 8 };

async function run(refs: (UrlRef | SampleRef)[], opts: DownloadOptions = FAST): Promise<ImageSample[]> {
  const out: ImageSample[] = [];
  await pipeline(
    Readable.from(refs, { objectMode: true }),
    download(opts),
    new Writable({
      objectMode: true,
      write(s: ImageSample, _e, cb) {
        out.push(s);
        cb();
      },
    }),
  );
  return out;
}

const ref = (path: string, i = 0): UrlRef => ({ key: String(i).padStart(9, '0'), shard: '00000', url: path.includes('://') ? path : base + path, caption: `c${i}` });

async function one(path: string, opts: DownloadOptions = FAST): Promise<ImageSample> {
  const [s] = await run([ref(path)], opts);
  return s;
}

describe('download: successes', () => {
  it('fetches images, sniffs the format, fills the img2dataset sidecar', async () => {
    const refs = [ref('/ok.jpg', 0), ref('/ok.png', 1), ref('/octet', 2), ref('/redirect', 3)];
    refs[0].extra = { license: 'cc-by' };
    const out = await run(refs);
    expect(out.map((s) => s.key)).toEqual(refs.map((r) => r.key));
    expect(out.map((s) => s.imageExt)).toEqual(['jpg', 'png', 'jpg', 'jpg']);
    expect(out.every((s) => !s.error)).toBe(true);
    expect(out[0].image?.equals(jpeg)).toBe(true);
    expect(out[0].caption).toBe('c0');
    expect(out[0].json).toMatchObject({ license: 'cc-by', key: refs[0].key, url: refs[0].url, caption: 'c0', status: 'success', error_message: null, http_status: 200, bytes: jpeg.length });
    expect(out[0].json?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out[3].json?.final_url).toBe(`${base}/ok.jpg`);
  });

  it('decodes gzip content-encoding', async () => {
    const s = await one('/gzip');
    expect(s.error).toBeUndefined();
    expect(s.image?.equals(jpeg)).toBe(true);
  });

  it('sends an identifiable user agent with the token', async () => {
    await one('/ok.jpg', { ...FAST, userAgentToken: 'mybot' });
    expect(userAgents.at(-1)).toMatch(/^dbprune\/\S+ \(compatible; mybot; \+https?:\/\//);
  });
});

describe('download: failures are rows with the right reason', () => {
  it('404 → error:download naming URL and status, not retried', async () => {
    const s = await one('/404');
    expect(s.error).toMatchObject({ reason: 'error:download', code: ErrorCodes.DOWNLOAD });
    expect(s.error?.message).toContain(`${base}/404`);
    expect(s.error?.message).toContain('HTTP 404');
    expect(s.json).toMatchObject({ status: 'failed_to_download', http_status: 404 });
    expect(hits.get('/404')).toHaveLength(1);
    expect(s.image).toBeUndefined();
  });

  it('500 → retried, then error:download', async () => {
    const events: DownloadEvent[] = [];
    const s = await one('/500', { ...FAST, onEvent: (e) => events.push(e) });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/HTTP 500.*after 3 attempts/);
    expect(hits.get('/500')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(2);
  });

  it('500 then 200 → retried and succeeds', async () => {
    const s = await one('/flaky');
    expect(s.error).toBeUndefined();
    expect(s.json?.status).toBe('success');
    expect(hits.get('/flaky')).toHaveLength(2);
  });

  it('429 with Retry-After → waits for it, slows the host down, then succeeds', async () => {
    const events: DownloadEvent[] = [];
    const s = await one('/429', { ...FAST, onEvent: (e) => events.push(e) });
    expect(s.error).toBeUndefined();
    const [t1, t2] = hits.get('/429') as number[];
    expect(t2 - t1).toBeGreaterThanOrEqual(900); // Retry-After: 1 honoured (a lower bound only)
    const slow = events.find((e) => e.type === 'slowdown');
    expect(slow).toMatchObject({ type: 'slowdown', host: `127.0.0.1:${port}`, retryAfterMs: 1000, status: 429 });
    expect((slow as { intervalMs: number }).intervalMs).toBeGreaterThan(0);
  });

  it('429 with a Retry-After above retryMaxDelayMs fails at once', async () => {
    const s = await one('/429-long', { ...FAST, retryMaxDelayMs: 5000 });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/HTTP 429.*Retry-After 3600 s/);
    expect(hits.get('/429-long')).toHaveLength(1);
  });

  it('slow response → timeout error:download', async () => {
    const s = await one('/slow', { ...FAST, retries: 0, headersTimeoutMs: 150 });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/timeout/i);
    expect(s.error?.message).toContain('/slow');
  });

  it('redirect loop → error:download after maxRedirects', async () => {
    const s = await one('/loop', { ...FAST, maxRedirects: 3 });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/too many redirects/);
    expect(hits.get('/loop')).toHaveLength(4);
  });

  it('huge Content-Length → error:download before reading the body', async () => {
    const s = await one('/huge-length');
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/Content-Length 53687091200 .* above maxBodyBytes/);
  });

  it('body larger than the cap → error:download', async () => {
    const s = await one('/big', { ...FAST, maxBodyBytes: 1024 * 1024 });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/larger than maxBodyBytes 1048576/);
  });

  it('truncated body → error:download (retried, then reported)', async () => {
    const s = await one('/truncated', { ...FAST, retries: 1 });
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/truncated|other side closed|terminated/i);
    expect(hits.get('/truncated')).toHaveLength(2);
  });

  it('wrong content type → error:download', async () => {
    const s = await one('/html');
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/content type text\/html is not an image/);
  });

  it('non-image bytes → error:download', async () => {
    const s = await one('/not-image');
    expect(s.error?.reason).toBe('error:download');
    expect(s.error?.message).toMatch(/is not an image/);
  });

  it('X-Robots-Tag noai → error:robots; other bots’ directives do not apply; ours do', async () => {
    const s = await one('/robots');
    expect(s.error).toMatchObject({ reason: 'error:robots', code: ErrorCodes.ROBOTS });
    expect((await one('/robots-other-bot', { ...FAST, userAgentToken: 'mybot' })).error).toBeUndefined();
    expect((await one('/robots-our-bot', { ...FAST, userAgentToken: 'mybot' })).error?.reason).toBe('error:robots');
    expect((await one('/robots', { ...FAST, disallowedHeaderDirectives: [] })).error).toBeUndefined();
  });

  it('bad input rows → error:input, passed through', async () => {
    const out = await run([
      { key: 'a' },
      { key: 'b', url: 'not a url' },
      { key: 'c', url: 'x', error: { reason: 'error:input', message: 'row 3 has no url' } },
    ]);
    expect(out.map((s) => s.error?.reason)).toEqual(['error:input', 'error:input', 'error:input']);
    expect(out[2].error?.message).toBe('row 3 has no url');
  });
});

describe('download: SSRF guard', () => {
  const GUARDED: DownloadOptions = { ...FAST, allowPrivate: false };

  it('refuses loopback, private, link-local and IPv6 literals when allowPrivate is not given', async () => {
    const urls = [
      `${base}/ok.jpg`,
      'http://10.1.2.3/x.jpg',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/x.jpg',
      'http://[fc00::1]/x.jpg',
      'http://[::ffff:127.0.0.1]/x.jpg',
      'http://0x7f.0.0.1/x.jpg', // WHATWG URL normalises to 127.0.0.1
      'ftp://example.com/x.jpg',
      'file:///etc/passwd',
    ];
    const before = hits.get('/ok.jpg')?.length ?? 0;
    const out = await run(urls.map((u, i) => ({ key: String(i), url: u })), { ...FAST, allowPrivate: undefined });
    expect(out.map((s) => s.error?.reason)).toEqual(urls.map(() => 'error:ssrf'));
    expect(out.every((s) => s.error?.code === ErrorCodes.SSRF)).toBe(true);
    expect(hits.get('/ok.jpg')?.length ?? 0).toBe(before); // no request reached the server
  });

  it('refuses a host name resolving to a private address, at connect time', async () => {
    const lookup: LookupFunction = (_host, options, cb) => {
      if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
      else cb(null, '127.0.0.1', 4);
    };
    const s = await one(`http://rebind.test:${port}/ok.jpg`, { ...GUARDED, lookup });
    expect(s.error?.reason).toBe('error:ssrf');
    expect(s.error?.message).toMatch(/rebind\.test resolves to 127\.0\.0\.1 \(loopback\)/);
    // the same resolver is fine once private targets are allowed
    expect((await one(`http://rebind.test:${port}/ok.jpg`, { ...FAST, lookup })).error).toBeUndefined();
  });

  it('refuses redirects to private targets (each hop is checked)', async () => {
    const opts = { ...GUARDED, allowPrivateHosts: ['127.0.0.1'] }; // the test server itself is exempt
    expect((await one('/redirect', opts)).error).toBeUndefined();
    for (const p of ['/to-private', '/to-localhost', '/to-v6', '/to-file']) {
      const s = await one(p, opts);
      expect(s.error?.reason, p).toBe('error:ssrf');
      expect(s.error?.message, p).toContain(`redirected from ${base}${p}`);
    }
  });
});

describe('download: stream behaviour', () => {
  it('rows in = rows out, in input order, with a mix of outcomes', async () => {
    const paths = ['/ok.jpg', '/404', '/ok.png', '/html', '/gzip', '/not-image', '/robots', '/ok.jpg', '/500', '/redirect'];
    const refs: (UrlRef | SampleRef)[] = [];
    for (let i = 0; i < 60; i++) refs.push(ref(paths[i % paths.length], i));
    refs.push({ key: 'no-url' });
    const out = await run(refs, { ...FAST, retries: 0, concurrency: 4, reorderWindow: 8 });
    expect(out.map((s) => s.key)).toEqual(refs.map((r) => r.key));
    const unordered = await run(refs, { ...FAST, retries: 0, ordered: false });
    expect(unordered.map((s) => s.key).sort()).toEqual(refs.map((r) => r.key).sort());
  });

  it('a slow consumer: downloads that finish while the stage waits on it are still emitted (no hang at the end)', { timeout: 20_000 }, async () => {
    // The consumer takes 25 ms a sample, so the last downloads complete while the stage is held
    // at a yield; nothing else wakes it for them once the source has ended.
    const refs = Array.from({ length: 24 }, (_, i) => ref('/ok.jpg', i));
    for (const ordered of [true, false]) {
      const out: string[] = [];
      await pipeline(
        Readable.from(refs, { objectMode: true }),
        download({ ...FAST, concurrency: 8, ordered }),
        new Writable({
          objectMode: true,
          highWaterMark: 1,
          write(s: ImageSample, _e, cb) {
            out.push(s.key);
            setTimeout(cb, 25);
          },
        }),
      );
      expect(ordered ? out : [...out].sort()).toEqual(refs.map((r) => r.key));
    }
  });

  it('accepts batches (arrays) as urlListBatches yields them', async () => {
    const batches = [[ref('/ok.jpg', 0), ref('/404', 1)], [ref('/ok.png', 2)]];
    const out: ImageSample[] = [];
    await pipeline(Readable.from(batches, { objectMode: true }), download(FAST), async (src: AsyncIterable<ImageSample>) => {
      for await (const s of src) out.push(s);
    });
    expect(out.map((s) => s.key)).toEqual(['000000000', '000000001', '000000002']);
  });

  it('fails with ERR_DBPRUNE_ABORTED on abort', async () => {
    const ac = new AbortController();
    const p = run([ref('/slow', 0), ref('/slow', 1)], { ...FAST, headersTimeoutMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  });

  it('validates options', () => {
    expect(() => download({ concurrency: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => download({ concurrency: 2000 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => download({ maxRedirects: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => download({ userAgentToken: 'bad token\n' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});

describe('download helpers', () => {
  it('sniffs image signatures', () => {
    expect(sniffImage(jpeg)).toBe('jpg');
    expect(sniffImage(png)).toBe('png');
    expect(sniffImage(Buffer.from('GIF89a....'))).toBe('gif');
    expect(sniffImage(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('webp');
    expect(sniffImage(Buffer.from('<html>'))).toBeUndefined();
    expect(sniffImage(Buffer.alloc(0))).toBeUndefined();
  });

  it('parses X-Robots-Tag, Retry-After, Content-Type and maps statuses', () => {
    const d = new Set(['noai', 'noimageai']);
    expect(robotsDisallowed(['noindex, noai'], d)).toBe(true);
    expect(robotsDisallowed(['googlebot: noai'], d, 'mybot')).toBe(false);
    expect(robotsDisallowed(['MyBot: NoImageAI'], d, 'mybot')).toBe(true);
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1) - 5000)).toBe(5000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(contentTypeProblem('image/webp')).toBeUndefined();
    expect(contentTypeProblem('application/octet-stream')).toBeUndefined();
    expect(contentTypeProblem('application/json')).toMatch(/not an image/);
    expect(statusOfReason('error:decode')).toBe('failed_to_resize');
    expect(statusOfReason('error:ssrf')).toBe('failed_to_download');
    expect(statusOfReason('dbp')).toBe('success');
  });
});
