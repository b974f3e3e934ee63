/**
 * A streamed HTTP GET with real backpressure, for bodies too large to hold (webdataset shards).
 *
 * Built on Node's own `node:http`/`node:https` client, not undici: undici 7 applies backpressure by
 * pausing its HTTP/1 parser, and a server that closes the connection while the parser is paused
 * (HTTP/1.0 without Content-Length, `Connection: close`) crashes the process with an uncatchable
 * `assert(!this.paused)` in `Parser.finish` (nodejs/undici#5360; fixed by #5474 in undici 8 only,
 * which needs Node >= 22.19). Patching undici in our own install would not reach projects that
 * install dbprune as a dependency (their install runs no patch step of ours, and npm may dedupe
 * their undici with ours). Node's client applies backpressure by stopping socket reads and ends an
 * EOF-delimited body after draining it, so it has no such state.
 *
 * What it adds over a bare `http.get`: the SSRF guard on every hop (URL check, guarded DNS
 * lookup), redirects followed by hand (each target checked), a time limit for the response
 * headers and for each wait for body data, and a minimum transfer rate. Both clocks count only the
 * time spent waiting on the network: time the consumer holds the stream back does not count.
 */
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { SsrfError, type SsrfGuard } from './guard.js';
import { honoursRetryAfter, parseRetryAfter } from './retry.js';

export interface StreamGetOptions {
  /** Limit for the response headers and for each wait for body data, ms. */
  timeoutMs: number;
  /** Minimum average rate while waiting on the network, bytes/s; 0 = no minimum. */
  minBytesPerSecond: number;
  /** The rate is checked over windows of this much waiting time, ms. */
  rateWindowMs: number;
  /** Redirects followed (each target passes the guard). */
  maxRedirects: number;
  guard: SsrfGuard;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A non-2xx final answer (with the server's Retry-After, ms, when a 429/503 sent one). */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status} for ${url}`);
  }
}

export interface StreamedResponse {
  /** The URL that answered (after redirects). */
  url: string;
  status: number;
  /** Content-Length when announced. */
  contentLength?: number;
  /** The body, chunk by chunk; the connection closes when it ends, fails or is returned early. */
  chunks: AsyncGenerator<Buffer>;
  /** Closes the connection (also when `chunks` was never iterated). Idempotent. */
  close(): void;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const timeoutError = (what: string, ms: number, url: string): Error =>
  Object.assign(new Error(`no ${what} from ${url} within ${ms} ms`), { code: 'ETIMEDOUT' });

/** One request: resolves with the response once the headers are in. */
function requestOnce(url: URL, o: StreamGetOptions): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    // agent: false = one connection per request: shards are large, and a pooled socket opened
    // under another guard setting is never reused.
    const req = send(url, { method: 'GET', agent: false, lookup: o.guard.lookup, headers: o.headers, signal: o.signal });
    const timer = setTimeout(() => req.destroy(timeoutError('response headers', o.timeoutMs, url.href)), o.timeoutMs);
    req.once('response', (res) => {
      clearTimeout(timer);
      // Later failures surface through the body iterator; keep the events handled meanwhile.
      res.on('error', () => undefined);
      resolve({ req, res });
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e); // no effect once resolved
    });
    req.end();
  });
}

/** Waits for the next chunk for at most `ms`; on timeout the response is destroyed. */
async function nextWithin(it: AsyncIterator<Buffer>, res: IncomingMessage, ms: number, url: string): Promise<IteratorResult<Buffer>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = timeoutError('body data', ms, url);
          res.destroy(e);
          reject(e);
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function* bodyChunks(res: IncomingMessage, req: ClientRequest, url: string, o: StreamGetOptions): AsyncGenerator<Buffer> {
  const it = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let windowWait = 0;
  let windowBytes = 0;
  try {
    for (;;) {
      const t0 = performance.now();
      const r = await nextWithin(it, res, o.timeoutMs, url);
      if (r.done) return;
      windowWait += performance.now() - t0;
      windowBytes += r.value.length;
      if (o.minBytesPerSecond > 0 && windowWait >= o.rateWindowMs) {
        const rate = (windowBytes * 1000) / windowWait;
        if (rate < o.minBytesPerSecond) {
          throw new DbpruneError(
            ErrorCodes.DOWNLOAD,
            `${url} arrives at ${rate.toFixed(1)} B/s, below minBytesPerSecond ${o.minBytesPerSecond} (over ${Math.round(windowWait)} ms of waiting)`,
            { url },
          );
        }
        windowWait = 0;
        windowBytes = 0;
      }
      yield r.value;
    }
  } finally {
    res.destroy();
    req.destroy();
  }
}

/**
 * GET `href`, following redirects: resolves once a 2xx answer's headers are in; its body is
 * `chunks`. Rejects with `SsrfError` (a refused target, first or redirected), `HttpStatusError`
 * (a non-2xx final answer, body discarded), an error with code `ETIMEDOUT` (no headers in time),
 * `DbpruneError` ERR_DBPRUNE_DOWNLOAD (too many redirects, a bad Location) or the socket's error.
 * `chunks` fails with `ETIMEDOUT` (a wait for data above `timeoutMs`), ERR_DBPRUNE_DOWNLOAD (rate
 * below the minimum), or the socket's error (reset, truncated body).
 */
export async function streamGet(href: string, o: StreamGetOptions): Promise<StreamedResponse> {
  let url = new URL(href);
  for (let hop = 0; ; hop++) {
    const problem = o.guard.problem(url);
    if (problem) throw new SsrfError(`refused ${url.href}${hop > 0 ? ` (redirected from ${href})` : ''}: ${problem}`);
    const { req, res } = await requestOnce(url, o);
    const status = res.statusCode ?? 0;
    if (REDIRECTS.has(status) && res.headers.location !== undefined) {
      res.destroy();
      req.destroy();
      if (hop >= o.maxRedirects) {
        throw new DbpruneError(ErrorCodes.DOWNLOAD, `too many redirects (more than ${o.maxRedirects}) from ${href}, last ${url.href} (HTTP ${status})`, { url: href });
      }
      try {
        url = new URL(res.headers.location, url);
      } catch {
        throw new DbpruneError(ErrorCodes.DOWNLOAD, `bad redirect Location ${JSON.stringify(res.headers.location.slice(0, 200))} from ${url.href}`, { url: href });
      }
      continue;
    }
    if (status < 200 || status >= 300) {
      res.destroy();
      req.destroy();
      const retryAfter = res.headers['retry-after'];
      throw new HttpStatusError(status, url.href, honoursRetryAfter(status) ? parseRetryAfter(retryAfter) : undefined);
    }
    const len = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
    const close = (): void => {
      res.destroy();
      req.destroy();
    };
    return { url: url.href, status, contentLength: Number.isFinite(len) ? len : undefined, chunks: bodyChunks(res, req, url.href, o), close };
  }
}
