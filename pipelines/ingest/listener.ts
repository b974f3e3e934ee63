/**
 * The HTTP side of `dbprune ingest --listen`: a small node:http server that accepts inputs and
 * serves health and metrics.
 *
 * Routes (every request checked against the token when one is set):
 * - `POST /shards`: shard URLs, one a line (text), or a JSON array of strings.
 * - `POST /urls`: one URL-list batch (text/plain one URL a line, `application/x-ndjson`/jsonl,
 *   text/csv, text/tab-separated-values, or Parquet as `application/vnd.apache.parquet`).
 * - `GET /healthz`: `{"status":"ok",…}` (503 `{"status":"stopping"}` while shutting down).
 * - `GET /metrics`: Prometheus text format 0.0.4.
 *
 * What a POST does is up to the caller's `submit`; its reply is sent as JSON. Security: binds
 * loopback by default; binding anything else requires a token, which is then required on every
 * request (`Authorization: Bearer <token>` or `X-Dbprune-Token`), compared in constant time.
 * Bodies are capped (413), and header/request/idle timeouts are set on the server.
 *
 * **Origin policy** (a web page the curator opens must not be able to drive the listener):
 * - a request carrying an `Origin` header other than the listener's own origin gets 403 (browsers
 *   send `Origin` on every cross-origin request and on every POST; curl and scripts send none);
 * - on a loopback bind, a `Host` header that does not name a loopback address with the bound port
 *   gets 403 — a DNS-rebinding page reaches 127.0.0.1 under its own host name;
 * - without a token, a POST must declare a content type a browser cannot send without a CORS
 *   preflight (which is never granted): `text/plain`, `application/x-www-form-urlencoded`,
 *   `multipart/form-data` or none at all get 415. Send `Content-Type: text/uri-list` (a list of
 *   URLs), `application/json`, `application/x-ndjson`, `text/csv`, … — e.g.
 *   `curl -H 'Content-Type: text/uri-list' --data-binary @shards.txt URL/shards`. With a token, any
 *   content type is accepted (the token already proves the caller).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { checkOption, DbpruneError, ErrorCodes, UsageError } from '../../src/core/errors.js';

/** What a POST route hands to {@link IngestListenerOptions.submit}. */
export interface IngestSubmission {
  route: 'shards' | 'urls';
  /** The request's Content-Type (lower-case, without parameters; '' when absent). */
  contentType: string;
  body: Buffer;
}

/** The reply of a route handler: HTTP status and a JSON-able body. */
export interface IngestReply {
  status: number;
  body: unknown;
}

export interface IngestListenerOptions {
  /** Address to bind. Default `127.0.0.1`. Anything that is not loopback requires `token`. */
  host?: string;
  /** Port; 0 picks a free one. Default 0; 0..65535. */
  port?: number;
  /** Shared secret required on every request (Bearer or X-Dbprune-Token). Default none; 8..4096 chars. */
  token?: string;
  /** Largest request body, bytes; larger ones get 413. Default 16 MiB; 1..1 GiB. */
  maxBodyBytes?: number;
  /** Time to receive a whole request, ms (node's `requestTimeout`). Default 30_000; 1_000..3_600_000. */
  requestTimeoutMs?: number;
  /** Time to receive the headers, ms (node's `headersTimeout`). Default 10_000; 1_000..600_000. */
  headersTimeoutMs?: number;
  /** Handles `POST /shards` and `POST /urls`. Required. */
  submit: (s: IngestSubmission) => Promise<IngestReply>;
  /** Prometheus text for `GET /metrics`. Required. */
  metrics: () => string;
  /** Body of `GET /healthz`; `ok: false` answers 503. Required. */
  health: () => { ok: boolean } & Record<string, unknown>;
}

export interface IngestListener {
  /** The bound address and port. */
  readonly host: string;
  readonly port: number;
  /** `http://host:port`. */
  readonly url: string;
  /** Stops accepting connections and closes idle ones; resolves when the server is closed. */
  close(): Promise<void>;
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (h.startsWith('::ffff:')) return isLoopbackHost(h.slice(7));
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Parses `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (host then 127.0.0.1).
 * @throws UsageError (ERR_DBPRUNE_USAGE) for anything else or a port outside 0..65535.
 */
export function parseListenAddress(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s) ?? (/^\d{1,5}$/.test(s) ? [s, undefined, '', s] : null);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new UsageError(`--listen must be HOST:PORT (e.g. 127.0.0.1:8080), got '${s}'`, { option: '--listen' });
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Content types a browser may send cross-origin without a preflight (the CORS "simple" ones), and none. */
export const SIMPLE_CONTENT_TYPES: ReadonlySet<string> = new Set(['', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);

/** True when a `Host` header names a loopback address (or `localhost`) with this port. */
export function isLoopbackHostHeader(hostHeader: string, port: number): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostHeader.trim());
  if (!m) return false;
  const p = m[2] === undefined ? 80 : Number(m[2]);
  return p === port && isLoopbackHost(m[1]);
}

/** Why a request is refused by the origin policy (see the module comment), or undefined. */
export function originRefusal(
  headers: IncomingMessage['headers'],
  bound: { host: string; port: number; url: string; loopback: boolean },
): string | undefined {
  const origin = headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== bound.url.toLowerCase()) {
    return `cross-origin request from ${JSON.stringify(origin)} refused (only ${bound.url} itself; scripts and curl send no Origin)`;
  }
  const host = headers.host;
  if (bound.loopback && host !== undefined && !isLoopbackHostHeader(host, bound.port)) {
    return `Host ${JSON.stringify(host)} is not this loopback listener (port ${bound.port}); refused (DNS rebinding)`;
  }
  return undefined;
}

/** Constant-time token comparison (both sides hashed first, so lengths leak nothing either). */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  const a = createHash('sha256').update(given ?? '').digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given !== undefined;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function requestToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  const x = req.headers['x-dbprune-token'];
  return typeof x === 'string' ? x : undefined;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Starts the listener and resolves once it is bound. Options: see {@link IngestListenerOptions}
 * (defaults and limits there). Replies: 401 without a valid token (when one is set), 404 for an
 * unknown path, 405 for a wrong method, 403 for a foreign `Origin` or (on loopback) `Host`, 415 for
 * a tokenless POST with a CORS-simple content type (see the module comment), 413 for an oversized body (the connection is closed),
 * 415/400 as `submit` decides, 500 with the error code when `submit` throws.
 *
 * @throws ERR_DBPRUNE_INVALID_OPTION for bad options; ERR_DBPRUNE_USAGE when binding beyond
 *   loopback without a token; the bind error (EADDRINUSE, …) otherwise.
 */
export async function startIngestListener(opts: IngestListenerOptions): Promise<IngestListener> {
  const host = opts.host ?? '127.0.0.1';
  checkOption(typeof host === 'string' && host.length > 0, 'host', 'a host name or address', host);
  const port = opts.port ?? 0;
  checkOption(Number.isInteger(port) && port >= 0 && port <= 65535, 'port', 'an integer in 0..65535', port);
  const { token } = opts;
  checkOption(token === undefined || (typeof token === 'string' && token.length >= 8 && token.length <= 4096), 'token', 'a string of 8..4096 characters', token === undefined ? undefined : '<redacted>');
  const maxBodyBytes = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  checkOption(Number.isInteger(maxBodyBytes) && maxBodyBytes >= 1 && maxBodyBytes <= 2 ** 30, 'maxBodyBytes', 'an integer in 1..2^30', maxBodyBytes);
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  checkOption(Number.isInteger(requestTimeoutMs) && requestTimeoutMs >= 1000 && requestTimeoutMs <= 3_600_000, 'requestTimeoutMs', 'an integer in 1000..3600000', requestTimeoutMs);
  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  checkOption(Number.isInteger(headersTimeoutMs) && headersTimeoutMs >= 1000 && headersTimeoutMs <= 600_000, 'headersTimeoutMs', 'an integer in 1000..600000', headersTimeoutMs);
  checkOption(typeof opts.submit === 'function' && typeof opts.metrics === 'function' && typeof opts.health === 'function', 'submit/metrics/health', 'functions', undefined);
  if (!isLoopbackHost(host) && token === undefined) {
    throw new UsageError(`--listen ${host} is not a loopback address: give --token (or DBPRUNE_INGEST_TOKEN) so that every request is authenticated`, { option: '--listen' });
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (token !== undefined && !tokenMatches(requestToken(req), token)) {
      res.setHeader('www-authenticate', 'Bearer');
      req.resume();
      return send(res, 401, { error: 'unauthorized', message: 'a valid token is required (Authorization: Bearer <token>)' });
    }
    const refusal = originRefusal(req.headers, bound);
    if (refusal !== undefined) {
      req.resume();
      return send(res, 403, { error: 'forbidden', message: refusal });
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/metrics') {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
      if (path === '/metrics') return send(res, 200, opts.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
      const h = opts.health();
      return send(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'stopping', ...h });
    }
    if (path !== '/shards' && path !== '/urls') {
      req.resume();
      return send(res, 404, { error: 'not found', routes: ['POST /shards', 'POST /urls', 'GET /healthz', 'GET /metrics'] });
    }
    if (req.method !== 'POST') {
      req.resume();
      return send(res, 405, { error: 'method not allowed' });
    }
    const contentType = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    if (token === undefined && SIMPLE_CONTENT_TYPES.has(contentType)) {
      req.resume();
      return send(res, 415, {
        error: 'unsupported media type',
        message: `without a token, POST ${path} needs a Content-Type a browser cannot send cross-origin, e.g. ${path === '/shards' ? 'text/uri-list or application/json' : 'text/uri-list, application/x-ndjson, text/csv'}; got ${JSON.stringify(contentType || '(none)')}`,
      });
    }
    let body: Buffer;
    try {
      body = await readBody(req, maxBodyBytes);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        send(res, 413, { error: 'payload too large', maxBodyBytes });
        res.on('finish', () => req.destroy());
        return;
      }
      throw e;
    }
    const reply = await opts.submit({ route: path === '/shards' ? 'shards' : 'urls', contentType, body });
    send(res, reply.status, reply.body);
  };

  // set once bound (the origin policy needs the port)
  const bound = { host, port, url: '', loopback: isLoopbackHost(host) };
  const server: Server = createServer({ requestTimeout: requestTimeoutMs, headersTimeout: headersTimeoutMs, maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const code = e instanceof DbpruneError ? e.code : ErrorCodes.INTERNAL;
      if (!res.headersSent) send(res, 500, { error: code, message: (e as Error)?.message ?? String(e) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.maxRequestsPerSocket = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  bound.port = boundPort;
  bound.url = `http://${shown}:${boundPort}`;
  return {
    host,
    port: boundPort,
    url: `http://${shown}:${boundPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
