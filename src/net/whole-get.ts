/**
 * One GET attempt of a body read whole (an image), through a guarded undici Agent: either a
 * redirect hop (the caller checks and follows the Location) or the decoded body. Everything that
 * can go wrong becomes a {@link FetchFailure} saying whether a retry may help: HTTP errors
 * (408/429/5xx retryable, with Retry-After on 429/503), X-Robots-Tag refusals, non-image
 * Content-Type, bodies above the cap (declared or received), truncated bodies, undecodable
 * Content-Encoding, timeouts, resets and the SSRF guard's refusal at connect time.
 */
import type { Agent } from 'undici';
import { request } from 'undici';
import { ContentDecodingError, decodeContentEncoding } from './content-decoding.js';
import { FetchFailure } from './fetch-failure.js';
import { isSsrfError } from './guard.js';
import { abortedError, describeError } from './http.js';
import { contentTypeProblem, robotsDisallowed } from './response-policy.js';
import { honoursRetryAfter, isRetryableNetworkError, isRetryableStatus, parseRetryAfter } from './retry.js';

/** The outcome of one attempt. */
export type WholeGetHop = { kind: 'redirect'; location: string; status: number } | { kind: 'body'; body: Buffer; status: number; contentType?: string };

/** What one attempt needs; validated by the caller. */
export interface WholeGetOptions {
  agent: Agent;
  headers: Record<string, string>;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** The whole attempt (connect + headers + body), ms. */
  totalTimeoutMs: number;
  /** Largest body, bytes (compressed and decompressed alike). */
  maxBodyBytes: number;
  /** Refuse a declared Content-Type that is not an image. */
  checkContentType: boolean;
  /** X-Robots-Tag directives that refuse the body (lower case); empty = no check. */
  directives: ReadonlySet<string>;
  /** Our crawler token (lower case), for `token: directive` forms. */
  token?: string;
  signal?: AbortSignal;
}

type Headers = Record<string, string | string[] | undefined>;

const headerOf = (headers: Headers, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/** Maps a thrown error of the request or body to a failure (or the abort error when `signal` fired). */
function classifyNetworkError(e: unknown, url: URL, o: WholeGetOptions, attemptSignal: AbortSignal, got: number, declared: number | undefined, status?: number): Error {
  if (e instanceof FetchFailure) return e;
  if (o.signal?.aborted) return abortedError(o.signal);
  if (isSsrfError(e)) return new FetchFailure('error:ssrf', `refused ${url.href}: ${describeError(e)}`, false);
  const st = status === undefined ? '' : ` (HTTP ${status})`;
  if (attemptSignal.aborted) {
    return new FetchFailure('error:download', `timed out after totalTimeoutMs ${o.totalTimeoutMs} fetching ${url.href}${got > 0 ? ` (${got} bytes received)` : ''}${st}`, true, status);
  }
  if (declared !== undefined && got < declared) {
    return new FetchFailure('error:download', `truncated body from ${url.href}: received ${got} of ${declared} bytes: ${describeError(e)}${st}`, true, status);
  }
  return new FetchFailure('error:download', `fetching ${url.href} failed: ${describeError(e)}${st}`, isRetryableNetworkError(e), status);
}

/** The checks on a 2xx answer's headers: robots, Content-Type, declared size. Returns the declared length. */
function checkHeaders(url: URL, status: number, headers: Headers, o: WholeGetOptions): number | undefined {
  const robots = headers['x-robots-tag'];
  if (robots !== undefined && robotsDisallowed(Array.isArray(robots) ? robots : [robots], o.directives, o.token)) {
    throw new FetchFailure('error:robots', `X-Robots-Tag "${Array.isArray(robots) ? robots.join(', ') : robots}" of ${url.href} disallows use (HTTP ${status})`, false, status);
  }
  if (o.checkContentType) {
    const p = contentTypeProblem(headerOf(headers, 'content-type'));
    if (p) throw new FetchFailure('error:download', `${p}: ${url.href} (HTTP ${status})`, false, status);
  }
  const cl = headerOf(headers, 'content-length');
  const declared = cl === undefined ? undefined : Number(cl);
  if (declared !== undefined && Number.isFinite(declared) && declared > o.maxBodyBytes) {
    throw new FetchFailure('error:download', `Content-Length ${declared} of ${url.href} is above maxBodyBytes ${o.maxBodyBytes} (HTTP ${status})`, false, status);
  }
  return declared !== undefined && Number.isFinite(declared) ? declared : undefined;
}

/**
 * One attempt at `url`. `onBytes` is told of every body chunk as it arrives (a byte budget).
 * Rejects with {@link FetchFailure}, or ERR_DBPRUNE_ABORTED when `o.signal` fires.
 */
export async function wholeGet(url: URL, o: WholeGetOptions, onBytes: (n: number) => void): Promise<WholeGetHop> {
  const timeout = AbortSignal.timeout(o.totalTimeoutMs);
  const attemptSignal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, {
      method: 'GET',
      dispatcher: o.agent,
      signal: attemptSignal,
      headersTimeout: o.headersTimeoutMs,
      bodyTimeout: o.bodyTimeoutMs,
      // undici 7 applies backpressure by pausing its HTTP/1 parser, and a server that closes the
      // connection while the parser is paused crashes the process (`assert(!this.paused)` in
      // Parser.finish, nodejs/undici#5360, fixed in undici 8 only, which needs Node >= 22.19).
      // Bodies here are read whole (at most maxBodyBytes, enforced below), so they never need
      // backpressure: with a high-water mark no body reaches, `push` never returns false and the
      // parser is never paused. Streamed bodies (shards) use node:http: src/net/http-stream.ts.
      highWaterMark: Number.MAX_SAFE_INTEGER,
      headers: o.headers,
    });
  } catch (e) {
    throw classifyNetworkError(e, url, o, attemptSignal, 0, undefined);
  }
  const { body, statusCode: status, headers } = res;
  body.on('error', () => undefined);
  try {
    if (status >= 300 && status < 400 && status !== 304) {
      const location = headerOf(headers, 'location');
      await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      if (!location) throw new FetchFailure('error:download', `HTTP ${status} without Location from ${url.href}`, false, status);
      return { kind: 'redirect', location, status };
    }
    if (status < 200 || status >= 300) {
      await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      const retryAfterMs = honoursRetryAfter(status) ? parseRetryAfter(headerOf(headers, 'retry-after')) : undefined;
      throw new FetchFailure('error:download', `HTTP ${status} from ${url.href}`, isRetryableStatus(status), status, retryAfterMs);
    }
    const declared = checkHeaders(url, status, headers, o);
    const chunks: Buffer[] = [];
    let got = 0;
    try {
      for await (const c of body as AsyncIterable<Buffer>) {
        got += c.length;
        if (got > o.maxBodyBytes) {
          throw new FetchFailure('error:download', `body of ${url.href} is larger than maxBodyBytes ${o.maxBodyBytes} (HTTP ${status})`, false, status);
        }
        chunks.push(c);
        onBytes(c.length);
      }
    } catch (e) {
      throw classifyNetworkError(e, url, o, attemptSignal, got, declared, status);
    }
    if (declared !== undefined && got !== declared) {
      throw new FetchFailure('error:download', `truncated body from ${url.href}: received ${got} of ${declared} bytes (HTTP ${status})`, true, status);
    }
    const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    try {
      const decoded = await decodeContentEncoding(raw, headerOf(headers, 'content-encoding'), o.maxBodyBytes, { url: url.href, status });
      return { kind: 'body', body: decoded, status, contentType: headerOf(headers, 'content-type') };
    } catch (e) {
      if (e instanceof ContentDecodingError) throw new FetchFailure('error:download', e.message, false, status);
      throw e;
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
}
