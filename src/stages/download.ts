/**
 * `download`: URL rows in, image samples out — img2dataset's downloader as a backpressured stage,
 * polite (per-host connection limit, Retry-After, per-host slow-down, X-Robots-Tag, an honest user
 * agent) and safe (SSRF guard checked at connect time, size caps, redirect limit).
 */
import { createHash } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import { generatorStage } from './generator-stage.js';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw, type ZlibOptions, type BrotliOptions } from 'node:zlib';
import pLimit from 'p-limit';
import { Agent, request } from 'undici';
import { ByteBudget } from '../core/byte-budget.js';
import { DbpruneError, ErrorCodes, checkOption, throwIfAborted } from '../core/errors.js';
import type { DownloadStatus, ImageSample, RowError, SampleRef } from '../core/sample.js';
import type { JsonValue, UrlRef } from '../io/url-list.js';
import { abortedError, errorCodeOf, isSsrfError, RETRYABLE_NETWORK_CODES, sleep as sleepFor, ssrfGuard } from '../net/http.js';

const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);
const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);
const brotliAsync = promisify<Buffer, BrotliOptions, Buffer>(brotliDecompress);

/** img2dataset's per-sample status, written to the sample's `json.status`. */

/** X-Robots-Tag directives that make a sample `error:robots` by default (img2dataset's list). */
export const DEFAULT_DISALLOWED_DIRECTIVES: readonly string[] = ['noai', 'noimageai', 'noindex', 'noimageindex'];

/** Version string in the default user agent. */
export const USER_AGENT_PRODUCT = 'dbprune/0.1';
const USER_AGENT_URL = '+https://www.npmjs.com/package/dbprune';

/** Something the stage did that a caller may want to log or test: a retry or a host slow-down. */
export type DownloadEvent =
  | { type: 'retry'; url: string; attempt: number; delayMs: number; status?: number; cause: string }
  | { type: 'slowdown'; host: string; intervalMs: number; retryAfterMs: number; status: number };

export interface DownloadOptions {
  /** Requests in flight at once, all hosts together. Default 32, 1..1024. */
  concurrency?: number;
  /** Open connections per origin (undici Agent `connections`). Default 8, 1..256. */
  connectionsPerHost?: number;
  /** TCP/TLS connect timeout, ms. Default 10_000, 1..600_000. */
  connectTimeoutMs?: number;
  /** Time to the response headers, ms. Default 10_000 (img2dataset's timeout), 1..600_000. */
  headersTimeoutMs?: number;
  /** Largest gap between two body chunks, ms. Default 10_000, 1..600_000. */
  bodyTimeoutMs?: number;
  /** Whole attempt (connect + headers + body), ms. Default 60_000, 1..3_600_000. */
  totalTimeoutMs?: number;
  /** Largest body, bytes (compressed and decompressed alike). Default 20 MiB, 1..2^31. A larger
   *  Content-Length fails before the body is read. */
  maxBodyBytes?: number;
  /** Redirects followed (each target SSRF-checked). Default 5, 0..20. */
  maxRedirects?: number;
  /** Retries after the first attempt for retryable failures (HTTP 408/429/5xx, connection resets,
   *  refused connections, timeouts, truncated bodies). Default 2, 0..20. */
  retries?: number;
  /** Backoff before retry i: `min(retryMaxDelayMs, retryBaseMs · 2^i)`, times a jitter in [0.5, 1].
   *  Default 500, 0..60_000. */
  retryBaseMs?: number;
  /** Cap on one backoff and on an honoured `Retry-After`, ms; a longer Retry-After fails the
   *  sample instead of waiting. Default 60_000, 0..3_600_000. */
  retryMaxDelayMs?: number;
  /** Minimum time between two requests to one host, ms (a polite floor). Default 0 (none), 0..600_000.
   *  A 429/503 doubles the host's interval (at least 250 ms, at most `maxHostIntervalMs`) and
   *  holds the host until its Retry-After; each success shrinks the interval by 10% back to this floor. */
  minHostIntervalMs?: number;
  /** Ceiling of a slowed host's interval, ms. Default 30_000, ≥ minHostIntervalMs. */
  maxHostIntervalMs?: number;
  /** X-Robots-Tag directives that skip a sample (`error:robots`), case-insensitive. Default
   *  {@link DEFAULT_DISALLOWED_DIRECTIVES}; `[]` turns the check off. */
  disallowedHeaderDirectives?: readonly string[];
  /** A token naming your crawler: put in the user agent and matched against `token: directive`
   *  forms of X-Robots-Tag. Default none. */
  userAgentToken?: string;
  /** Replaces the whole user agent. Default `dbprune/0.1 (+https://www.npmjs.com/package/dbprune)`,
   *  with `(compatible; TOKEN; …)` when a token is given. */
  userAgent?: string;
  /** Refuse bodies whose declared Content-Type is not an image (image/*, octet-stream and a few
   *  download types pass). Default true. Bytes are always sniffed for an image signature. */
  checkContentType?: boolean;
  /** Allow loopback, private, link-local, multicast, unspecified and reserved targets. Default
   *  false: such URLs and redirect targets (IP literals, and host names by the addresses they
   *  resolve to, checked at connect time) get `error:ssrf`. */
  allowPrivate?: boolean;
  /** Host names (exact, case-insensitive) exempt from the SSRF guard, e.g. an internal mirror.
   *  Default none. Targets named differently (including redirects) stay guarded. */
  allowPrivateHosts?: readonly string[];
  /** Emit in input order (default true): a completed sample waits for the ones before it, and at
   *  most `reorderWindow` samples are pending (in flight or waiting), which bounds memory. With
   *  false, samples come out as they complete (still exactly once, each carrying its key). */
  ordered?: boolean;
  /** Samples pending at once (in flight, waiting for a host, or completed but not yet emitted).
   *  Default 4 × concurrency (at least 64), concurrency..65_536. */
  reorderWindow?: number;
  /** Bytes the window may hold: images completed but not yet emitted plus bodies being received.
   *  While it is full, no new request starts except the oldest pending sample's (so one slow URL
   *  at the head cannot make completed downloads pile up). Memory is then bounded by about this
   *  plus `concurrency × maxBodyBytes` (bodies already in flight finish). Default 256 MiB,
   *  1 MiB..2^40. */
  reorderWindowBytes?: number;
  /** DNS resolver (Node `dns.lookup` signature). Default `dns.lookup`. Its answers pass through
   *  the SSRF guard like any other. */
  lookup?: LookupFunction;
  /** Called on retries and host slow-downs. Must not throw. */
  onEvent?: (e: DownloadEvent) => void;
  signal?: AbortSignal;
}

interface Resolved {
  concurrency: number;
  connectionsPerHost: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  totalTimeoutMs: number;
  maxBodyBytes: number;
  maxRedirects: number;
  retries: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
  minHostIntervalMs: number;
  maxHostIntervalMs: number;
  directives: Set<string>;
  token: string | undefined;
  userAgent: string;
  checkContentType: boolean;
  allowPrivate: boolean;
  allowHosts: string[];
  ordered: boolean;
  window: number;
  windowBytes: number;
  lookup?: LookupFunction;
  onEvent?: (e: DownloadEvent) => void;
  signal?: AbortSignal;
}

const int = (v: number, lo: number, hi: number): boolean => Number.isInteger(v) && v >= lo && v <= hi;

function resolveOptions(o: DownloadOptions): Resolved {
  const concurrency = o.concurrency ?? 32;
  checkOption(int(concurrency, 1, 1024), 'concurrency', 'an integer in 1..1024', concurrency);
  const connectionsPerHost = o.connectionsPerHost ?? 8;
  checkOption(int(connectionsPerHost, 1, 256), 'connectionsPerHost', 'an integer in 1..256', connectionsPerHost);
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  checkOption(int(connectTimeoutMs, 1, 600_000), 'connectTimeoutMs', 'an integer in 1..600000', connectTimeoutMs);
  const headersTimeoutMs = o.headersTimeoutMs ?? 10_000;
  checkOption(int(headersTimeoutMs, 1, 600_000), 'headersTimeoutMs', 'an integer in 1..600000', headersTimeoutMs);
  const bodyTimeoutMs = o.bodyTimeoutMs ?? 10_000;
  checkOption(int(bodyTimeoutMs, 1, 600_000), 'bodyTimeoutMs', 'an integer in 1..600000', bodyTimeoutMs);
  const totalTimeoutMs = o.totalTimeoutMs ?? 60_000;
  checkOption(int(totalTimeoutMs, 1, 3_600_000), 'totalTimeoutMs', 'an integer in 1..3600000', totalTimeoutMs);
  const maxBodyBytes = o.maxBodyBytes ?? 20 * 1024 * 1024;
  checkOption(int(maxBodyBytes, 1, 2 ** 31), 'maxBodyBytes', 'an integer in 1..2^31', maxBodyBytes);
  const maxRedirects = o.maxRedirects ?? 5;
  checkOption(int(maxRedirects, 0, 20), 'maxRedirects', 'an integer in 0..20', maxRedirects);
  const retries = o.retries ?? 2;
  checkOption(int(retries, 0, 20), 'retries', 'an integer in 0..20', retries);
  const retryBaseMs = o.retryBaseMs ?? 500;
  checkOption(Number.isFinite(retryBaseMs) && retryBaseMs >= 0 && retryBaseMs <= 60_000, 'retryBaseMs', 'a number in 0..60000', retryBaseMs);
  const retryMaxDelayMs = o.retryMaxDelayMs ?? 60_000;
  checkOption(Number.isFinite(retryMaxDelayMs) && retryMaxDelayMs >= 0 && retryMaxDelayMs <= 3_600_000, 'retryMaxDelayMs', 'a number in 0..3600000', retryMaxDelayMs);
  const minHostIntervalMs = o.minHostIntervalMs ?? 0;
  checkOption(Number.isFinite(minHostIntervalMs) && minHostIntervalMs >= 0 && minHostIntervalMs <= 600_000, 'minHostIntervalMs', 'a number in 0..600000', minHostIntervalMs);
  const maxHostIntervalMs = o.maxHostIntervalMs ?? Math.max(30_000, minHostIntervalMs);
  checkOption(
    Number.isFinite(maxHostIntervalMs) && maxHostIntervalMs >= minHostIntervalMs && maxHostIntervalMs <= 3_600_000,
    'maxHostIntervalMs',
    'a number in minHostIntervalMs..3600000',
    maxHostIntervalMs,
  );
  const dirs = o.disallowedHeaderDirectives ?? DEFAULT_DISALLOWED_DIRECTIVES;
  checkOption(Array.isArray(dirs) && dirs.every((d) => typeof d === 'string' && d.trim().length > 0), 'disallowedHeaderDirectives', 'a list of directive names', dirs);
  const token = o.userAgentToken?.trim();
  checkOption(token === undefined || /^[A-Za-z0-9._-]{1,64}$/.test(token), 'userAgentToken', 'a token of 1..64 letters, digits, . _ -', o.userAgentToken);
  checkOption(o.userAgent === undefined || (typeof o.userAgent === 'string' && o.userAgent.length > 0 && !/[\r\n]/.test(o.userAgent)), 'userAgent', 'a one-line string', o.userAgent);
  const userAgent =
    o.userAgent ?? (token ? `${USER_AGENT_PRODUCT} (compatible; ${token}; ${USER_AGENT_URL})` : `${USER_AGENT_PRODUCT} (${USER_AGENT_URL})`);
  const hosts = o.allowPrivateHosts ?? [];
  checkOption(Array.isArray(hosts) && hosts.every((h) => typeof h === 'string' && h.length > 0), 'allowPrivateHosts', 'a list of host names', hosts);
  const window = o.reorderWindow ?? Math.max(64, 4 * concurrency);
  checkOption(int(window, concurrency, 65_536), 'reorderWindow', `an integer in ${concurrency}..65536`, window);
  const windowBytes = o.reorderWindowBytes ?? 256 * 1024 * 1024;
  checkOption(int(windowBytes, 1024 * 1024, 2 ** 40), 'reorderWindowBytes', 'an integer in 1 MiB..2^40', windowBytes);
  checkOption(o.lookup === undefined || typeof o.lookup === 'function', 'lookup', 'a dns.lookup-like function', typeof o.lookup);
  return {
    concurrency,
    connectionsPerHost,
    connectTimeoutMs,
    headersTimeoutMs,
    bodyTimeoutMs,
    totalTimeoutMs,
    maxBodyBytes,
    maxRedirects,
    retries,
    retryBaseMs,
    retryMaxDelayMs,
    minHostIntervalMs,
    maxHostIntervalMs,
    directives: new Set(dirs.map((d) => d.trim().toLowerCase())),
    token: token?.toLowerCase(),
    userAgent,
    checkContentType: o.checkContentType ?? true,
    allowPrivate: o.allowPrivate ?? false,
    allowHosts: [...hosts],
    ordered: o.ordered ?? true,
    window,
    windowBytes,
    lookup: o.lookup,
    onEvent: o.onEvent,
    signal: o.signal,
  };
}

// ---------------------------------------------------------------------------------------------
// pure helpers (exported for tests and reuse)

/** Sniffs an image format from its first bytes: jpg, png, gif, webp, bmp, tiff, avif, heic; else undefined. */
export function sniffImage(b: Uint8Array): string | undefined {
  const at = (i: number, ...bytes: number[]): boolean => bytes.every((x, j) => b[i + j] === x);
  const ascii = (i: number, s: string): boolean => b.length >= i + s.length && [...s].every((c, j) => b[i + j] === c.charCodeAt(0));
  if (b.length >= 3 && at(0, 0xff, 0xd8, 0xff)) return 'jpg';
  if (b.length >= 8 && at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return 'gif';
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return 'webp';
  if (b.length >= 14 && ascii(0, 'BM')) return 'bmp';
  if (b.length >= 4 && (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a))) return 'tiff';
  if (ascii(4, 'ftyp')) {
    const brand = Buffer.from(b.subarray(8, 12)).toString('latin1');
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'mif1', 'msf1'].includes(brand)) return 'heic';
  }
  return undefined;
}

/**
 * True when one of the `X-Robots-Tag` values forbids the use: a value is `directives` or
 * `token: directives` (comma-separated); it applies when it names no token or names ours.
 * Same rule as img2dataset's `is_disallowed`.
 */
export function robotsDisallowed(values: readonly string[], disallowed: ReadonlySet<string>, token?: string): boolean {
  if (disallowed.size === 0) return false;
  for (const v of values) {
    const i = v.indexOf(':');
    const ua = i >= 0 ? v.slice(0, i).trim().toLowerCase() : undefined;
    const dirs = (i >= 0 ? v.slice(i + 1) : v).split(',').map((x) => x.trim().toLowerCase());
    if ((ua === undefined || ua === token) && dirs.some((d) => disallowed.has(d))) return true;
  }
  return false;
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into ms from `now`; undefined when absent/bad. */
export function parseRetryAfter(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

const OK_NON_IMAGE_TYPES = new Set([
  'application/octet-stream',
  'binary/octet-stream',
  'application/binary',
  'application/x-binary',
  'application/download',
  'application/x-download',
  'application/force-download',
  'application/unknown',
  'unknown/unknown',
]);

/** The problem with a declared Content-Type, or undefined when it may be an image. */
export function contentTypeProblem(ct: string | undefined): string | undefined {
  if (ct === undefined) return undefined;
  const mime = ct.split(';')[0].trim().toLowerCase();
  if (mime === '' || mime.startsWith('image/') || OK_NON_IMAGE_TYPES.has(mime)) return undefined;
  return `content type ${mime} is not an image`;
}


// ---------------------------------------------------------------------------------------------
// failures

type FailReason = 'error:download' | 'error:robots' | 'error:ssrf' | 'error:input';

class Fail extends Error {
  constructor(
    readonly reason: FailReason,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const CODE_OF: Record<FailReason, string> = {
  'error:download': ErrorCodes.DOWNLOAD,
  'error:robots': ErrorCodes.ROBOTS,
  'error:ssrf': ErrorCodes.SSRF,
  'error:input': ErrorCodes.INPUT_FORMAT,
};



function describe(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, i = 0; x && i < 4; x = (x as { cause?: unknown }).cause, i++) {
    const m = (x as Error).message ?? String(x);
    const c = (x as { code?: unknown }).code;
    const s = typeof c === 'string' && !m.includes(c) ? `${m} (${c})` : m;
    if (s && !parts.some((p) => p.includes(s))) parts.push(s);
  }
  return parts.join(': ') || 'unknown error';
}

// ---------------------------------------------------------------------------------------------
// the stage

interface HostState {
  nextAt: number;
  intervalMs: number;
}

interface Job {
  done: boolean;
  result?: ImageSample;
  promise: Promise<ImageSample>;
}

/**
 * Stage: consumes {@link UrlRef}s (or plain {@link SampleRef}s with `url`, or arrays of them, as
 * `urlListBatches` yields), emits exactly one {@link ImageSample} per input row: in input order by
 * default (see `ordered`), with `key`, `shard`, `url`, `caption`, `uid` copied and `json` set to
 * img2dataset's sidecar: the additional columns, then `key`, `url`, `caption`, `status`
 * (`success` | `failed_to_download`), `error_message`, `http_status`, `content_type`, `bytes`,
 * `sha256` (of the image bytes). Successful samples carry `image` (decompressed bytes) and
 * `imageExt` (sniffed: jpg, png, gif, webp, bmp, tiff, avif, heic). `failed_to_resize` is what a
 * later decode failure means; see `statusOfReason` (core/sample).
 *
 * Failures are rows, never stage errors (`error.reason`, `error.code`, `error.message` naming
 * the URL, the cause and the HTTP status):
 * - `error:input` — an input row that already has an error (passed through) or a missing/unparsable url;
 * - `error:ssrf` (`ERR_DBPRUNE_SSRF`) — not http(s), or a target (first URL or redirect) that is, or
 *   resolves to, a non-public address while `allowPrivate` is off;
 * - `error:robots` (`ERR_DBPRUNE_ROBOTS`) — X-Robots-Tag forbids it;
 * - `error:download` (`ERR_DBPRUNE_DOWNLOAD`) — HTTP errors, too many redirects, timeouts, resets,
 *   Content-Length or body above `maxBodyBytes`, truncated bodies, a non-image Content-Type,
 *   bytes that are not an image, undecodable Content-Encoding.
 * Retryable failures (408, 429, 5xx, network errors, timeouts, truncation) are retried with
 * exponential backoff and jitter; 429/503 honour Retry-After and slow that host down.
 *
 * Built on an undici Agent (per-origin connection limit; the SSRF check sits in its DNS lookup so
 * a rebinding answer is refused at connect time) and p-limit (global concurrency). The stage
 * fails only with `ERR_DBPRUNE_ABORTED` on `signal`; options are validated here
 * (`ERR_DBPRUNE_INVALID_OPTION`, defaults and limits in {@link DownloadOptions}).
 */
export function download(opts: DownloadOptions = {}): Duplex {
  const o = resolveOptions(opts);
  const { signal } = o;
  const limit = pLimit(o.concurrency);
  const budget = new ByteBudget(o.windowBytes);
  const hosts = new Map<string, HostState>();

  const guard = ssrfGuard({ allowPrivate: o.allowPrivate, allowPrivateHosts: o.allowHosts, lookup: o.lookup });

  const agent = new Agent({
    connections: o.connectionsPerHost,
    pipelining: 1,
    connect: { timeout: o.connectTimeoutMs, lookup: guard.lookup },
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
  });

  const sleep = (ms: number): Promise<void> => sleepFor(ms, signal);

  const abortError = (): DbpruneError => abortedError(signal);

  /** Waits until the host may get another request, then books the slot. */
  const gate = async (host: string): Promise<void> => {
    for (;;) {
      const now = Date.now();
      let hs = hosts.get(host);
      if (!hs) {
        if (o.minHostIntervalMs === 0) return;
        hs = { nextAt: now, intervalMs: o.minHostIntervalMs };
        hosts.set(host, hs);
        if (hosts.size > 10_000) pruneHosts(now);
      }
      if (hs.nextAt <= now) {
        hs.nextAt = now + hs.intervalMs;
        return;
      }
      await sleep(hs.nextAt - now);
    }
  };

  const pruneHosts = (now: number): void => {
    for (const [h, s] of hosts) if (s.nextAt <= now && s.intervalMs <= o.minHostIntervalMs) hosts.delete(h);
  };

  const slowDown = (host: string, retryAfterMs: number, status: number): void => {
    const now = Date.now();
    const hs = hosts.get(host) ?? { nextAt: now, intervalMs: o.minHostIntervalMs };
    hs.intervalMs = Math.min(o.maxHostIntervalMs, Math.max(250, hs.intervalMs * 2));
    hs.nextAt = Math.max(hs.nextAt, now + retryAfterMs);
    hosts.set(host, hs);
    o.onEvent?.({ type: 'slowdown', host, intervalMs: hs.intervalMs, retryAfterMs, status });
  };

  const recovered = (host: string): void => {
    const hs = hosts.get(host);
    if (!hs || hs.intervalMs <= o.minHostIntervalMs) return;
    hs.intervalMs = Math.max(o.minHostIntervalMs, hs.intervalMs * 0.9);
    if (hs.intervalMs - o.minHostIntervalMs < 1) hs.intervalMs = o.minHostIntervalMs;
  };

  const backoff = (attempt: number): number => Math.min(o.retryMaxDelayMs, o.retryBaseMs * 2 ** attempt) * (0.5 + Math.random() * 0.5);

  type Hop = { kind: 'redirect'; location: string; status: number } | { kind: 'body'; body: Buffer; status: number; contentType?: string };

  /** One HTTP attempt, inside a concurrency slot: headers, checks, body. */
  const attemptOnce = async (url: URL): Promise<Hop> => {
    let received = 0; // body bytes of this attempt, held in the byte budget until it ends
    try {
      return await attemptBody(url, (n) => {
        received += n;
        budget.add(n);
      });
    } finally {
      budget.release(received);
    }
  };

  const attemptBody = async (url: URL, onBytes: (n: number) => void): Promise<Hop> => {
    const attemptSignal = signal ? AbortSignal.any([signal, AbortSignal.timeout(o.totalTimeoutMs)]) : AbortSignal.timeout(o.totalTimeoutMs);
    let res;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: agent,
        signal: attemptSignal,
        headersTimeout: o.headersTimeoutMs,
        bodyTimeout: o.bodyTimeoutMs,
        // undici 7 applies backpressure by pausing its HTTP/1 parser, and a server that closes the
        // connection while the parser is paused crashes the process (`assert(!this.paused)` in
        // Parser.finish, nodejs/undici#5360, fixed in undici 8 only, which needs Node >= 22.19).
        // This stage reads every body whole (at most maxBodyBytes, enforced below), so it never
        // needs backpressure: with a high-water mark no body reaches, `push` never returns false
        // and the parser is never paused. Streamed bodies (shards) use node:http: src/io/http-stream.ts.
        highWaterMark: Number.MAX_SAFE_INTEGER,
        headers: { 'user-agent': o.userAgent, accept: 'image/*,*/*;q=0.8', 'accept-encoding': 'gzip, deflate, br' },
      });
    } catch (e) {
      throw classifyNetworkError(e, url, attemptSignal, 0, undefined);
    }
    const body = res.body;
    body.on('error', () => undefined);
    const status = res.statusCode;
    const header = (name: string): string | undefined => {
      const v = res.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    try {
      if (status >= 300 && status < 400 && status !== 304) {
        const location = header('location');
        await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        if (!location) throw new Fail('error:download', `HTTP ${status} without Location from ${url.href}`, false, status);
        return { kind: 'redirect', location, status };
      }
      if (status < 200 || status >= 300) {
        await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        const retryable = status === 408 || status === 429 || status >= 500;
        const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(header('retry-after')) : undefined;
        throw new Fail('error:download', `HTTP ${status} from ${url.href}`, retryable, status, retryAfterMs);
      }
      const robots = res.headers['x-robots-tag'];
      if (robots !== undefined && robotsDisallowed(Array.isArray(robots) ? robots : [robots], o.directives, o.token)) {
        throw new Fail('error:robots', `X-Robots-Tag "${Array.isArray(robots) ? robots.join(', ') : robots}" of ${url.href} disallows use (HTTP ${status})`, false, status);
      }
      const contentType = header('content-type');
      if (o.checkContentType) {
        const p = contentTypeProblem(contentType);
        if (p) throw new Fail('error:download', `${p}: ${url.href} (HTTP ${status})`, false, status);
      }
      const declared = header('content-length') === undefined ? undefined : Number(header('content-length'));
      if (declared !== undefined && Number.isFinite(declared) && declared > o.maxBodyBytes) {
        throw new Fail('error:download', `Content-Length ${declared} of ${url.href} is above maxBodyBytes ${o.maxBodyBytes} (HTTP ${status})`, false, status);
      }
      const chunks: Buffer[] = [];
      let got = 0;
      try {
        for await (const c of body) {
          got += (c as Buffer).length;
          if (got > o.maxBodyBytes) {
            throw new Fail('error:download', `body of ${url.href} is larger than maxBodyBytes ${o.maxBodyBytes} (HTTP ${status})`, false, status);
          }
          chunks.push(c as Buffer);
          onBytes((c as Buffer).length);
        }
      } catch (e) {
        if (e instanceof Fail) throw e;
        throw classifyNetworkError(e, url, attemptSignal, got, declared, status);
      }
      if (declared !== undefined && Number.isFinite(declared) && got !== declared) {
        throw new Fail('error:download', `truncated body from ${url.href}: received ${got} of ${declared} bytes (HTTP ${status})`, true, status);
      }
      let bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      bytes = await decodeContent(bytes, header('content-encoding'), url, status);
      recovered(url.host);
      return { kind: 'body', body: bytes, status, contentType };
    } finally {
      if (!body.destroyed) body.destroy();
    }
  };

  const decodeContent = async (bytes: Buffer, encoding: string | undefined, url: URL, status: number): Promise<Buffer> => {
    if (!encoding) return bytes;
    let out = bytes;
    // applied in reverse order of listing
    const codings = encoding
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s && s !== 'identity')
      .reverse();
    for (const c of codings) {
      const limits = { maxOutputLength: o.maxBodyBytes };
      try {
        if (c === 'gzip' || c === 'x-gzip') out = await gunzipAsync(out, limits);
        else if (c === 'deflate') out = (out[0] & 0x0f) === 8 && ((out[0] << 8) | out[1]) % 31 === 0 ? await inflateAsync(out, limits) : await inflateRawAsync(out, limits);
        else if (c === 'br') out = await brotliAsync(out, limits);
        else throw new Fail('error:download', `unsupported Content-Encoding ${c} from ${url.href} (HTTP ${status})`, false, status);
      } catch (e) {
        if (e instanceof Fail) throw e;
        const big = errorCodeOf(e) === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;
        throw new Fail(
          'error:download',
          big
            ? `decompressed body of ${url.href} is larger than maxBodyBytes ${o.maxBodyBytes} (HTTP ${status})`
            : `cannot decode ${c} body of ${url.href}: ${describe(e)} (HTTP ${status})`,
          false,
          status,
        );
      }
    }
    return out;
  };

  const classifyNetworkError = (e: unknown, url: URL, attemptSignal: AbortSignal, got: number, declared: number | undefined, status?: number): Error => {
    if (e instanceof Fail) return e;
    if (signal?.aborted) return abortError();
    const code = errorCodeOf(e);
    if (isSsrfError(e)) {
      return new Fail('error:ssrf', `refused ${url.href}: ${describe(e)}`, false);
    }
    const st = status === undefined ? '' : ` (HTTP ${status})`;
    if (attemptSignal.aborted) {
      return new Fail('error:download', `timed out after totalTimeoutMs ${o.totalTimeoutMs} fetching ${url.href}${got > 0 ? ` (${got} bytes received)` : ''}${st}`, true, status);
    }
    if (got > 0 || declared !== undefined) {
      if (declared !== undefined && got < declared) {
        return new Fail('error:download', `truncated body from ${url.href}: received ${got} of ${declared} bytes: ${describe(e)}${st}`, true, status);
      }
    }
    const retryable = code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
    return new Fail('error:download', `fetching ${url.href} failed: ${describe(e)}${st}`, retryable, status);
  };

  /** One hop with retries; waits for the host outside the concurrency slot. */
  const fetchHop = async (url: URL, meta: { attempts: number }, seq: number): Promise<Hop> => {
    for (let attempt = 0; ; attempt++) {
      await budget.admit(seq, signal);
      throwIfAborted(signal);
      await gate(url.host);
      meta.attempts = attempt + 1;
      try {
        // Checked again inside the slot: requests queued for a slot while the budget had room
        // must not all start once it is full (they go back to wait instead).
        const hop = await limit(() => (budget.mayStart(seq) ? attemptOnce(url) : undefined));
        if (hop === undefined) {
          attempt--;
          continue;
        }
        return hop;
      } catch (e) {
        if (!(e instanceof Fail)) throw e; // aborted
        if (!e.retryable || attempt >= o.retries) throw e;
        let delayMs = backoff(attempt);
        if (e.status === 429 || e.status === 503) {
          const ra = e.retryAfterMs;
          if (ra !== undefined && ra > o.retryMaxDelayMs) {
            throw new Fail(e.reason, `${e.message}; Retry-After ${Math.round(ra / 1000)} s is above retryMaxDelayMs ${o.retryMaxDelayMs}`, false, e.status);
          }
          if (ra !== undefined) delayMs = ra;
          slowDown(url.host, delayMs, e.status);
        }
        o.onEvent?.({ type: 'retry', url: url.href, attempt: attempt + 1, delayMs, status: e.status, cause: e.message });
        await sleep(delayMs);
      }
    }
  };

  const checkTarget = (url: URL): void => {
    const problem = guard.problem(url);
    if (problem) throw new Fail('error:ssrf', `refused ${url.href}: ${problem}`, false);
  };

  const fetchSample = async (ref: UrlRef, seq: number): Promise<ImageSample> => {
    const out: ImageSample = { key: ref.key };
    if (ref.shard !== undefined) out.shard = ref.shard;
    if (ref.url !== undefined) out.url = ref.url;
    if (ref.caption !== undefined) out.caption = ref.caption;
    if (ref.uid !== undefined) out.uid = ref.uid;
    const json: Record<string, JsonValue> = { ...(ref.extra ?? {}), key: ref.key, url: ref.url ?? null };
    if (ref.caption !== undefined) json.caption = ref.caption;
    const fail = (err: RowError, status?: number): ImageSample => {
      out.error = err;
      out.json = { ...json, status: 'failed_to_download', error_message: err.message, http_status: status ?? null };
      return out;
    };
    if (ref.error) return fail(ref.error);
    if (!ref.url) return fail({ reason: 'error:input', message: `sample ${ref.key} has no url`, code: ErrorCodes.INPUT_FORMAT });
    let url: URL;
    try {
      url = new URL(ref.url);
    } catch {
      return fail({ reason: 'error:input', message: `sample ${ref.key}: ${JSON.stringify(ref.url.slice(0, 200))} is not a valid URL`, code: ErrorCodes.INPUT_FORMAT });
    }
    const meta = { attempts: 0 };
    let redirects = 0;
    try {
      for (;;) {
        checkTarget(url);
        const hop = await fetchHop(url, meta, seq);
        if (hop.kind === 'redirect') {
          if (redirects >= o.maxRedirects) {
            throw new Fail('error:download', `too many redirects (more than maxRedirects ${o.maxRedirects}) from ${ref.url}, last ${url.href} (HTTP ${hop.status})`, false, hop.status);
          }
          redirects++;
          let next: URL;
          try {
            next = new URL(hop.location, url);
          } catch {
            throw new Fail('error:download', `bad redirect Location ${JSON.stringify(hop.location.slice(0, 200))} from ${url.href} (HTTP ${hop.status})`, false, hop.status);
          }
          url = next;
          continue;
        }
        const ext = sniffImage(hop.body);
        if (!ext) {
          const head = hop.body.subarray(0, 16).toString('hex');
          throw new Fail(
            'error:download',
            `body of ${url.href} is not an image (${hop.body.length} bytes${hop.contentType ? `, ${hop.contentType}` : ''}, starts ${head || 'empty'}) (HTTP ${hop.status})`,
            false,
            hop.status,
          );
        }
        out.image = hop.body;
        budget.add(hop.body.length); // held until the sample is emitted
        out.imageExt = ext;
        out.json = {
          ...json,
          status: 'success',
          error_message: null,
          http_status: hop.status,
          content_type: hop.contentType ?? null,
          bytes: hop.body.length,
          sha256: createHash('sha256').update(hop.body).digest('hex'),
        };
        if (redirects > 0) out.json.final_url = url.href;
        return out;
      }
    } catch (e) {
      if (!(e instanceof Fail)) {
        if (e instanceof DbpruneError && e.code === ErrorCodes.ABORTED) throw e;
        // an unexpected failure still yields the row (nothing is lost)
        return fail({ reason: 'error:download', message: `fetching ${url.href} failed: ${describe(e)}`, code: ErrorCodes.DOWNLOAD });
      }
      const attempts = meta.attempts > 1 ? ` after ${meta.attempts} attempts` : ''; // of the last hop
      const via = redirects > 0 && e.reason !== 'error:download' ? ` (redirected from ${ref.url})` : '';
      return fail({ reason: e.reason, message: `${e.message}${via}${attempts}`, code: CODE_OF[e.reason] }, e.status);
    }
  };

  return generatorStage(async function* (source: AsyncIterable<UrlRef | SampleRef | (UrlRef | SampleRef)[]>): AsyncGenerator<ImageSample> {
    const pending: Job[] = []; // ordered: input order; unordered: completion order is taken from `ready`
    const ready: ImageSample[] = [];
    let inWindow = 0;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let fatal: unknown;
    const start = (ref: UrlRef): void => {
      inWindow++;
      const job: Job = { done: false, promise: undefined as unknown as Promise<ImageSample> };
      const seq = budget.open();
      job.promise = fetchSample(ref, seq).then(
        (s) => {
          budget.finish(seq);
          job.done = true;
          job.result = s;
          if (!o.ordered) ready.push(s);
          notify();
          return s;
        },
        (e: unknown) => {
          budget.finish(seq);
          fatal ??= e;
          job.done = true;
          notify();
          throw e;
        },
      );
      job.promise.catch(() => undefined);
      if (o.ordered) pending.push(job);
    };

    const it = source[Symbol.asyncIterator]();
    let next: Promise<IteratorResult<UrlRef | SampleRef | (UrlRef | SampleRef)[]>> | undefined;
    let sourceDone = false;
    let buffered: (UrlRef | SampleRef)[] = [];
    try {
      for (;;) {
        if (fatal !== undefined) throw fatal;
        throwIfAborted(signal);
        // emit what may be emitted
        if (o.ordered) {
          while (pending.length > 0 && pending[0].done) {
            const j = pending.shift() as Job;
            inWindow--;
            budget.release(j.result?.image?.length ?? 0);
            yield j.result as ImageSample;
          }
        } else {
          while (ready.length > 0) {
            inWindow--;
            const r = ready.shift() as ImageSample;
            budget.release(r.image?.length ?? 0);
            yield r;
          }
        }
        if (fatal !== undefined) throw fatal;
        // admit more input
        while (inWindow < o.window && buffered.length > 0) start(buffered.shift() as UrlRef);
        if (sourceDone && buffered.length === 0 && inWindow === 0) break;
        const canPull = !sourceDone && buffered.length === 0 && inWindow < o.window;
        const changed = new Promise<void>((r) => (wake = r));
        if (canPull) {
          next ??= it.next();
          const r = await Promise.race([next, changed.then(() => undefined)]);
          if (r === undefined) continue; // a job finished first; `next` stays pending
          next = undefined;
          if (r.done) sourceDone = true;
          else if (Array.isArray(r.value)) buffered = r.value.slice();
          else buffered = [r.value];
        } else {
          await changed;
        }
      }
    } finally {
      wake = undefined;
      if (!sourceDone) void it.return?.()?.catch(() => undefined);
      if (fatal !== undefined || signal?.aborted) limit.clearQueue();
      // Let in-flight requests end (they are aborted by `signal`, or finish quickly), then close.
      void agent.close().catch(() => undefined);
    }
  });
}
