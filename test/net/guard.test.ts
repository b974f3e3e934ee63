/**
 * The SSRF guard and the guarded undici Agent against a real loopback server and the real
 * resolver (`localhost` resolves to a loopback address through /etc/hosts; no traffic leaves).
 */
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { guardOptions, isSsrfError, SsrfError, ssrfGuard } from '../../src/net/guard.js';
import { guardedAgent } from '../../src/net/guarded-agent.js';
import { startServer } from '../stages/image-fixtures.js';

let server: Awaited<ReturnType<typeof startServer>>;
let port = '';
let hits = 0;

beforeAll(async () => {
  server = await startServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
  });
  port = new URL(server.url).port;
});
afterAll(() => server.close());

const LIMITS = { connectionsPerHost: 2, connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000 };

/** Resolves with the lookup's answer, or its error. */
function resolveWith(lookup: LookupFunction, host: string): Promise<{ err: NodeJS.ErrnoException | null; address: string }> {
  return new Promise((resolve) => lookup(host, {}, (err, address) => resolve({ err, address: typeof address === 'string' ? address : (address[0]?.address ?? '') })));
}

describe('ssrfGuard: the URL check', () => {
  const guard = ssrfGuard(guardOptions({}));

  it('refuses non-http schemes and non-public IP literals; host names wait for the lookup', () => {
    expect(guard.problem(new URL('ftp://example.com/a.jpg'))).toMatch(/scheme ftp: is not http or https/);
    expect(guard.problem(new URL('file:///etc/passwd'))).toMatch(/scheme/);
    expect(guard.problem(new URL('http://10.0.0.1/x'))).toMatch(/10\.0\.0\.1 is a private address/);
    expect(guard.problem(new URL('http://[::1]:8080/x'))).toMatch(/::1 is a loopback address/);
    expect(guard.problem(new URL('http://169.254.169.254/latest/meta-data/'))).toMatch(/link-local/);
    expect(guard.problem(new URL('https://93.184.216.34/x'))).toBeUndefined();
    expect(guard.problem(new URL('https://example.com/x'))).toBeUndefined();
  });

  it('exempts the allowed hosts only (case-insensitive, brackets ignored), or everything with allowPrivate', () => {
    const some = ssrfGuard(guardOptions({ allowPrivateHosts: ['10.0.0.1', '[::1]'] }));
    expect(some.problem(new URL('http://10.0.0.1/x'))).toBeUndefined();
    expect(some.problem(new URL('http://[::1]/x'))).toBeUndefined();
    expect(some.problem(new URL('http://10.0.0.2/x'))).toMatch(/private/);
    expect(ssrfGuard(guardOptions({ allowPrivate: true })).problem(new URL('http://127.0.0.1/'))).toBeUndefined();
    expect(ssrfGuard(guardOptions({ allowPrivate: true })).problem(new URL('gopher://127.0.0.1/'))).toMatch(/scheme/);
  });

  it('validates its options once', () => {
    for (const bad of [{ allowPrivate: 'yes' }, { allowPrivateHosts: [''] }, { allowPrivateHosts: 'localhost' }, { lookup: 5 }]) {
      expect(() => guardOptions(bad as never), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    }
    expect(guardOptions({})).toEqual({ allowPrivate: false, allowPrivateHosts: [], lookup: undefined });
  });
});

describe('ssrfGuard: the guarded lookup (the real resolver)', () => {
  it('refuses a name that resolves to loopback, with SsrfError', async () => {
    const { err } = await resolveWith(ssrfGuard(guardOptions({})).lookup, 'localhost');
    expect(err).toBeInstanceOf(SsrfError);
    expect(isSsrfError(err)).toBe(true);
    expect(err?.message).toMatch(/localhost resolves to .* \(loopback\)/);
  });

  it('passes the name when it is an allowed host, or with allowPrivate', async () => {
    for (const o of [{ allowPrivateHosts: ['LOCALHOST'] }, { allowPrivate: true }]) {
      const { err, address } = await resolveWith(ssrfGuard(guardOptions(o)).lookup, 'localhost');
      expect(err).toBeNull();
      expect(['127.0.0.1', '::1']).toContain(address);
    }
  });

  it('refuses when any answer is not public (a rebinding resolver mixing public and private)', async () => {
    const mixed = ((_h: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) =>
      cb(null, [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ])) as unknown as LookupFunction;
    const { err } = await resolveWith(ssrfGuard(guardOptions({ lookup: mixed })).lookup, 'rebind.test');
    expect(err).toBeInstanceOf(SsrfError);
    expect(err?.message).toMatch(/10\.0\.0\.7 \(private\)/);
  });

  it('passes resolver errors through', async () => {
    const { err } = await resolveWith(ssrfGuard(guardOptions({ lookup: dnsLookup })).lookup, 'no-such-host.invalid');
    expect(err).not.toBeNull();
    expect(isSsrfError(err)).toBe(false);
  });
});

describe('guardedAgent: the check sits in the connector', () => {
  it('a request to a name resolving to loopback fails at connect time with the guard as its cause; nothing reaches the server', async () => {
    const agent = guardedAgent(ssrfGuard(guardOptions({})), LIMITS);
    const before = hits;
    try {
      const e = await request(`http://localhost:${port}/`, { dispatcher: agent }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(isSsrfError(e)).toBe(true);
      expect(hits).toBe(before);
    } finally {
      await agent.close();
    }
  });

  it('the same request passes for an allowed host', async () => {
    const agent = guardedAgent(ssrfGuard(guardOptions({ allowPrivateHosts: ['localhost'] })), LIMITS);
    try {
      const res = await request(`http://localhost:${port}/`, { dispatcher: agent });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('hello');
    } finally {
      await agent.close();
    }
  });
});
