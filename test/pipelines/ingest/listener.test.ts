import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/core/errors.js';
import { isLoopbackHost, isLoopbackHostHeader, parseListenAddress, startIngestListener, tokenMatches, type IngestListener, type IngestSubmission } from '../../../pipelines/ingest/listener.js';

let listener: IngestListener | undefined;
afterEach(async () => {
  await listener?.close();
  listener = undefined;
});

const submissions: IngestSubmission[] = [];
/** The `message` of a JSON error reply. */
const messageOf = (body: string): unknown => (JSON.parse(body) as { message?: unknown }).message;
function start(opts: { host?: string; token?: string; maxBodyBytes?: number } = {}): Promise<IngestListener> {
  submissions.length = 0;
  return startIngestListener({
    ...opts,
    submit: (s) => {
      submissions.push(s);
      return Promise.resolve({ status: 202, body: { accepted: s.body.toString('utf8').split('\n').filter(Boolean).length } });
    },
    metrics: () => '# TYPE x gauge\nx 1\n',
    health: () => ({ ok: true, journal: 3 }),
  });
}

interface Res {
  status: number;
  body: string;
}

/** Sends a request to 127.0.0.1 (never to the bind address). `chunked` streams the body without Content-Length. */
function send(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve({ status: -1, body: '' }) : reject(e)));
    if (opts.body !== undefined && opts.chunked) {
      const b = Buffer.from(opts.body);
      const step = 64 * 1024;
      let o = 0;
      const pump = (): void => {
        while (o < b.length) {
          const ok = req.write(b.subarray(o, o + step));
          o += step;
          if (!ok) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    } else req.end(opts.body);
  });
}

describe('ingest listener', () => {
  it('parses listen addresses and recognises loopback', () => {
    expect(parseListenAddress('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListenAddress('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(parseListenAddress(':0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(() => parseListenAddress('host:99999')).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com']) expect(isLoopbackHost(h)).toBe(false);
    expect(tokenMatches('secret-token', 'secret-token')).toBe(true);
    expect(tokenMatches('secret-tokeN', 'secret-token')).toBe(false);
    expect(tokenMatches(undefined, 'secret-token')).toBe(false);
  });

  it('refuses to bind beyond loopback without a token', async () => {
    await expect(start({ host: '0.0.0.0' })).rejects.toMatchObject({ code: ErrorCodes.USAGE });
  });

  it('bound beyond loopback, checks the token on every request', async () => {
    listener = await start({ host: '0.0.0.0', token: 's3cret-token-value' });
    const port = listener.port;
    expect((await send(port, '/healthz')).status).toBe(401);
    expect((await send(port, '/metrics')).status).toBe(401);
    expect((await send(port, '/shards', { method: 'POST', body: 'http://h/0.tar\n' })).status).toBe(401);
    expect((await send(port, '/healthz', { headers: { authorization: 'Bearer wrong-token-value' } })).status).toBe(401);
    expect(submissions).toHaveLength(0);
    const ok = await send(port, '/healthz', { headers: { authorization: 'Bearer s3cret-token-value' } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ status: 'ok', journal: 3 });
    const m = await send(port, '/metrics', { headers: { 'x-dbprune-token': 's3cret-token-value' } });
    expect(m.status).toBe(200);
    expect(m.body).toContain('x 1');
    const p = await send(port, '/shards', { method: 'POST', headers: { authorization: 'Bearer s3cret-token-value', 'content-type': 'text/plain' }, body: 'http://h/0.tar\nhttp://h/1.tar\n' });
    expect(p.status).toBe(202);
    expect(JSON.parse(p.body)).toEqual({ accepted: 2 });
    expect(submissions[0]).toMatchObject({ route: 'shards', contentType: 'text/plain' });
  });

  it('answers 413 to oversized bodies, declared or streamed, without calling submit', async () => {
    listener = await start({ maxBodyBytes: 1024 });
    const port = listener.port;
    const big = Buffer.alloc(4096, 'a');
    const declared = await send(port, '/urls', { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: big });
    expect(declared.status).toBe(413);
    const streamed = await send(port, '/urls', { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: Buffer.alloc(2 * 1024 * 1024, 'b'), chunked: true });
    expect([413, -1]).toContain(streamed.status); // 413, or a reset once the server closed the connection
    expect(submissions).toHaveLength(0);
    const small = await send(port, '/urls', { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: 'http://h/a.jpg\n' });
    expect(small.status).toBe(202);
    expect(submissions).toHaveLength(1);
  });

  it('answers 404 and 405 for unknown paths and wrong methods', async () => {
    listener = await start();
    expect((await send(listener.port, '/nope')).status).toBe(404);
    expect((await send(listener.port, '/shards')).status).toBe(405);
    expect((await send(listener.port, '/metrics', { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('refuses cross-origin browser requests: a foreign Origin, a rebound Host, a CORS-simple POST without a token', async () => {
    listener = await start();
    const port = listener.port;
    const own = listener.url;
    // the request of the issue: a page on evil.example POSTs text/plain
    const evil = await send(port, '/shards', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' }, body: 'http://h/0.tar\n' });
    expect(evil.status).toBe(403);
    expect(messageOf(evil.body)).toMatch(/cross-origin/);
    // a foreign Origin is refused whatever the content type, and on GETs too
    expect((await send(port, '/shards', { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: '[]' })).status).toBe(403);
    expect((await send(port, '/metrics', { headers: { origin: 'null' } })).status).toBe(403);
    // DNS rebinding: the page's own host name resolving to 127.0.0.1
    const rebound = await send(port, '/shards', { method: 'POST', headers: { host: `evil.example:${port}`, 'content-type': 'text/uri-list' }, body: 'http://h/0.tar\n' });
    expect(rebound.status).toBe(403);
    expect(messageOf(rebound.body)).toMatch(/DNS rebinding/);
    expect((await send(port, '/healthz', { headers: { host: `127.0.0.1:${port + 1}` } })).status).toBe(403);
    // a form-style or typeless POST without a token: 415, saying which header to send
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const r = await send(port, '/shards', { method: 'POST', headers: type ? { 'content-type': type } : {}, body: 'http://h/0.tar\n' });
      expect(r.status, String(type)).toBe(415);
      expect(messageOf(r.body)).toMatch(/text\/uri-list/);
    }
    expect(submissions).toHaveLength(0);
    // what scripts and curl send is accepted: no Origin (or our own), loopback Host, a non-simple type
    expect((await send(port, '/shards', { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: 'http://h/0.tar\n' })).status).toBe(202);
    expect((await send(port, '/shards', { method: 'POST', headers: { origin: own, host: `localhost:${port}`, 'content-type': 'application/json' }, body: '["http://h/1.tar"]' })).status).toBe(202);
    expect((await send(port, '/healthz', { headers: { host: `[::1]:${port}` } })).status).toBe(200);
    expect(submissions.map((x) => x.contentType)).toEqual(['text/uri-list', 'application/json']);
    // fetch() from Node (undici) is not a browser: no Origin, so it works with a proper type
    const viaFetch = await fetch(`${own}/shards`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: 'http://h/2.tar\n' });
    expect(viaFetch.status).toBe(202);
    expect(isLoopbackHostHeader(`localhost:${port}`, port)).toBe(true);
    expect(isLoopbackHostHeader('localhost', 80)).toBe(true);
    expect(isLoopbackHostHeader(`127.0.0.1.evil.example:${port}`, port)).toBe(false);
  });

  it('with a token, any content type is accepted but a foreign Origin still is not', async () => {
    listener = await start({ token: 's3cret-token-value' });
    const auth = { authorization: 'Bearer s3cret-token-value' };
    expect((await send(listener.port, '/shards', { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'http://h/0.tar\n' })).status).toBe(202);
    expect((await send(listener.port, '/shards', { method: 'POST', headers: { ...auth, origin: 'http://evil.example' }, body: 'http://h/0.tar\n' })).status).toBe(403);
  });
});

