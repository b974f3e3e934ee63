/**
 * `download`: URL rows in, image samples out — img2dataset's downloader as a backpressured stage,
 * polite (per-host connection limit, Retry-After, per-host slow-down, X-Robots-Tag, an honest user
 * agent) and safe (SSRF guard checked at connect time, size caps, redirect limit).
 *
 * This file holds the stage: options, the redirect loop and the sidecar of each sample, and the
 * ordered window. The HTTP client pieces live in src/net (guard, guarded agent, host scheduler,
 * retry policy, one whole-body attempt).
 */
import { createHash } from 'node:crypto';
import type { LookupFunction } from 'node:net';
import type { Duplex } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Agent } from 'undici';
import { ByteBudget } from '../core/byte-budget.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { sampleRef, type ImageSample, type RowError, type SampleRef } from '../core/sample.js';
import { booleanOption, checkOption, integerOption, numberOption, optionalOption, signalOption } from '../core/validate.js';
import type { JsonValue, UrlRef } from '../io/url-list.js';
import { CODE_OF_FAILURE, FetchFailure } from '../net/fetch-failure.js';
import { guardOptions, ssrfGuard, type SsrfGuard } from '../net/guard.js';
import { guardedAgent } from '../net/guarded-agent.js';
import { HostScheduler } from '../net/host-scheduler.js';
import { describeError, sleep } from '../net/http.js';
import { DEFAULT_DISALLOWED_DIRECTIVES } from '../net/response-policy.js';
import { planRetry, retryPolicy } from '../net/retry.js';
import { wholeGet, type WholeGetHop, type WholeGetOptions } from '../net/whole-get.js';
import { generatorStage } from './generator-stage.js';

/** Version string in the default user agent. */
export const USER_AGENT_PRODUCT = 'dbprune/0.1';
const USER_AGENT_URL = '+https://www.npmjs.com/package/dbprune';

/** Something the stage did that a caller may want to log or test: a retry or a host slow-down. */
export type DownloadEvent =
  | { type: 'retry'; url: string; attempt: number; delayMs: number; status?: number; cause: string }
  | { type: 'slowdown'; host: string; intervalMs: number; retryAfterMs: number; status: number };

/** Options of {@link download}: concurrency (default 32; 1..1024), connections per host (default 8; 1..256), timeouts, retries, size limits, SSRF guard and X-Robots-Tag policy. */
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
   *  {@link DEFAULT_DISALLOWED_DIRECTIVES} (src/net/response-policy.ts); `[]` turns the check off. */
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

function userAgentOf(o: DownloadOptions): { userAgent: string; token: string | undefined } {
  const token = o.userAgentToken?.trim();
  checkOption(token === undefined || /^[A-Za-z0-9._-]{1,64}$/.test(token), 'userAgentToken', 'a token of 1..64 letters, digits, . _ -', o.userAgentToken);
  checkOption(o.userAgent === undefined || (typeof o.userAgent === 'string' && o.userAgent.length > 0 && !/[\r\n]/.test(o.userAgent)), 'userAgent', 'a one-line string', o.userAgent);
  const userAgent =
    o.userAgent ?? (token ? `${USER_AGENT_PRODUCT} (compatible; ${token}; ${USER_AGENT_URL})` : `${USER_AGENT_PRODUCT} (${USER_AGENT_URL})`);
  return { userAgent, token: token?.toLowerCase() };
}

/** Validates every option once (ERR_DBPRUNE_INVALID_OPTION); defaults and limits as in {@link DownloadOptions}. */
function resolveOptions(o: DownloadOptions) {
  const concurrency = integerOption(o.concurrency, 'concurrency', { default: 32, min: 1, max: 1024 });
  const ms = (v: number | undefined, name: string, def: number, max: number): number => integerOption(v, name, { default: def, min: 1, max });
  const minHostIntervalMs = numberOption(o.minHostIntervalMs, 'minHostIntervalMs', { default: 0, min: 0, max: 600_000 });
  const dirs = o.disallowedHeaderDirectives ?? DEFAULT_DISALLOWED_DIRECTIVES;
  checkOption(Array.isArray(dirs) && dirs.every((d) => typeof d === 'string' && d.trim().length > 0), 'disallowedHeaderDirectives', 'a list of directive names', dirs);
  return {
    concurrency,
    connectionsPerHost: integerOption(o.connectionsPerHost, 'connectionsPerHost', { default: 8, min: 1, max: 256 }),
    connectTimeoutMs: ms(o.connectTimeoutMs, 'connectTimeoutMs', 10_000, 600_000),
    headersTimeoutMs: ms(o.headersTimeoutMs, 'headersTimeoutMs', 10_000, 600_000),
    bodyTimeoutMs: ms(o.bodyTimeoutMs, 'bodyTimeoutMs', 10_000, 600_000),
    totalTimeoutMs: ms(o.totalTimeoutMs, 'totalTimeoutMs', 60_000, 3_600_000),
    maxBodyBytes: integerOption(o.maxBodyBytes, 'maxBodyBytes', { default: 20 * 1024 * 1024, min: 1, max: 2 ** 31 }),
    maxRedirects: integerOption(o.maxRedirects, 'maxRedirects', { default: 5, min: 0, max: 20 }),
    retry: retryPolicy(o, { retries: 2, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: true }),
    minHostIntervalMs,
    maxHostIntervalMs: numberOption(o.maxHostIntervalMs, 'maxHostIntervalMs', { default: Math.max(30_000, minHostIntervalMs), min: minHostIntervalMs, max: 3_600_000 }),
    directives: new Set(dirs.map((d) => d.trim().toLowerCase())),
    ...userAgentOf(o),
    checkContentType: booleanOption(o.checkContentType, 'checkContentType', true),
    guard: guardOptions(o),
    ordered: booleanOption(o.ordered, 'ordered', true),
    window: integerOption(o.reorderWindow, 'reorderWindow', { default: Math.max(64, 4 * concurrency), min: concurrency, max: 65_536 }),
    windowBytes: integerOption(o.reorderWindowBytes, 'reorderWindowBytes', { default: 256 * 1024 * 1024, min: 1024 * 1024, max: 2 ** 40 }),
    onEvent: optionalOption<(e: DownloadEvent) => void>(o.onEvent, 'onEvent', 'a function', (v) => typeof v === 'function'),
    signal: signalOption(o.signal),
  };
}

type Resolved = ReturnType<typeof resolveOptions>;

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

/** The HTTP machinery of one stage instance: concurrency slots, byte budget, host scheduler, guarded agent. */
class Downloader {
  readonly budget: ByteBudget;
  readonly limit: LimitFunction;
  readonly agent: Agent;
  private readonly hosts: HostScheduler;
  private readonly guard: SsrfGuard;
  private readonly get: WholeGetOptions;

  constructor(private readonly o: Resolved) {
    this.limit = pLimit(o.concurrency);
    this.budget = new ByteBudget(o.windowBytes);
    this.hosts = new HostScheduler({ minIntervalMs: o.minHostIntervalMs, maxIntervalMs: o.maxHostIntervalMs });
    this.guard = ssrfGuard(o.guard);
    this.agent = guardedAgent(this.guard, o);
    this.get = {
      ...o,
      agent: this.agent,
      headers: { 'user-agent': o.userAgent, accept: 'image/*,*/*;q=0.8', 'accept-encoding': 'gzip, deflate, br' },
    };
  }

  /** One HTTP attempt, inside a concurrency slot; the body's bytes are held in the budget while it lasts. */
  private async attemptOnce(url: URL): Promise<WholeGetHop> {
    let received = 0;
    try {
      return await wholeGet(url, this.get, (n) => {
        received += n;
        this.budget.add(n);
      });
    } finally {
      this.budget.release(received);
    }
  }

  /** One hop with retries; waits for the host outside the concurrency slot. */
  private async fetchHop(url: URL, meta: { attempts: number }, seq: number): Promise<WholeGetHop> {
    const { signal, onEvent } = this.o;
    for (let attempt = 0; ; attempt++) {
      await this.budget.admit(seq, signal);
      throwIfAborted(signal);
      await this.hosts.gate(url.host, signal);
      meta.attempts = attempt + 1;
      try {
        // Checked again inside the slot: requests queued for a slot while the budget had room
        // must not all start once it is full (they go back to wait instead).
        const hop = await this.limit(() => (this.budget.mayStart(seq) ? this.attemptOnce(url) : undefined));
        if (hop === undefined) {
          attempt--;
          continue;
        }
        if (hop.kind === 'body') this.hosts.recovered(url.host);
        return hop;
      } catch (e) {
        if (!(e instanceof FetchFailure)) throw e; // aborted
        const plan = planRetry(this.o.retry, attempt, e);
        if (!plan.retry) {
          if (plan.retryAfterMs === undefined) throw e;
          throw new FetchFailure(e.reason, `${e.message}; Retry-After ${Math.round(plan.retryAfterMs / 1000)} s is above retryMaxDelayMs ${this.o.retry.maxDelayMs}`, false, e.status);
        }
        if (plan.slowDown && e.status !== undefined) {
          const intervalMs = this.hosts.slowDown(url.host, plan.delayMs);
          onEvent?.({ type: 'slowdown', host: url.host, intervalMs, retryAfterMs: plan.delayMs, status: e.status });
        }
        onEvent?.({ type: 'retry', url: url.href, attempt: attempt + 1, delayMs: plan.delayMs, status: e.status, cause: e.message });
        await sleep(plan.delayMs, signal);
      }
    }
  }

  /** Follows redirects (each target checked by the guard) to the image; returns the body and the final URL. */
  private async fetchImage(start: URL, meta: { attempts: number; redirects: number; url: URL }, seq: number): Promise<WholeGetHop & { kind: 'body' }> {
    let url = start;
    for (;;) {
      meta.url = url;
      const problem = this.guard.problem(url);
      if (problem) throw new FetchFailure('error:ssrf', `refused ${url.href}: ${problem}`, false);
      const hop = await this.fetchHop(url, meta, seq);
      if (hop.kind === 'body') return hop;
      if (meta.redirects >= this.o.maxRedirects) {
        throw new FetchFailure('error:download', `too many redirects (more than maxRedirects ${this.o.maxRedirects}) from ${start.href}, last ${url.href} (HTTP ${hop.status})`, false, hop.status);
      }
      meta.redirects++;
      try {
        url = new URL(hop.location, url);
      } catch {
        throw new FetchFailure('error:download', `bad redirect Location ${JSON.stringify(hop.location.slice(0, 200))} from ${url.href} (HTTP ${hop.status})`, false, hop.status);
      }
    }
  }

  /** Exactly one sample for `ref`: the image and its sidecar, or the failure as a row. Rejects only when aborted. */
  async fetchSample(ref: UrlRef, seq: number): Promise<ImageSample> {
    const out: ImageSample = sampleRef(ref);
    const json: Record<string, JsonValue> = { ...(ref.extra ?? {}), key: ref.key, url: ref.url ?? null };
    if (ref.caption !== undefined) json.caption = ref.caption;
    const fail = (err: RowError, status?: number): ImageSample => {
      out.error = err;
      out.json = { ...json, status: 'failed_to_download', error_message: err.message, http_status: status ?? null };
      return out;
    };
    if (ref.error) return fail(ref.error);
    if (!ref.url) return fail({ reason: 'error:input', message: `sample ${ref.key} has no url`, code: ErrorCodes.INPUT_FORMAT });
    let start: URL;
    try {
      start = new URL(ref.url);
    } catch {
      return fail({ reason: 'error:input', message: `sample ${ref.key}: ${JSON.stringify(ref.url.slice(0, 200))} is not a valid URL`, code: ErrorCodes.INPUT_FORMAT });
    }
    const meta = { attempts: 0, redirects: 0, url: start };
    try {
      const hop = await this.fetchImage(start, meta, seq);
      const ext = sniffImage(hop.body);
      if (!ext) {
        const head = hop.body.subarray(0, 16).toString('hex');
        const what = `${hop.body.length} bytes${hop.contentType ? `, ${hop.contentType}` : ''}, starts ${head || 'empty'}`;
        throw new FetchFailure('error:download', `body of ${meta.url.href} is not an image (${what}) (HTTP ${hop.status})`, false, hop.status);
      }
      out.image = hop.body;
      this.budget.add(hop.body.length); // held until the sample is emitted
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
      if (meta.redirects > 0) out.json.final_url = meta.url.href;
      return out;
    } catch (e) {
      if (!(e instanceof FetchFailure)) {
        if (e instanceof DbpruneError && e.code === ErrorCodes.ABORTED) throw e;
        // an unexpected failure still yields the row (nothing is lost)
        return fail({ reason: 'error:download', message: `fetching ${meta.url.href} failed: ${describeError(e)}`, code: ErrorCodes.DOWNLOAD });
      }
      const attempts = meta.attempts > 1 ? ` after ${meta.attempts} attempts` : ''; // of the last hop
      const via = meta.redirects > 0 && e.reason !== 'error:download' ? ` (redirected from ${ref.url})` : '';
      return fail({ reason: e.reason, message: `${e.message}${via}${attempts}`, code: CODE_OF_FAILURE[e.reason] }, e.status);
    }
  }
}

// The window: input order (or completion order), bounded in count and bytes.
interface Job {
  done: boolean;
  result?: ImageSample;
}

type DownloadInput = UrlRef | SampleRef | (UrlRef | SampleRef)[];

/** Runs `fetchSample` over the source with at most `o.window` samples pending; emits each exactly once. */
async function* emitThroughWindow(source: AsyncIterable<DownloadInput>, dl: Downloader, o: Resolved): AsyncGenerator<ImageSample> {
  const { budget } = dl;
  const pending: Job[] = []; // ordered: input order; unordered: completion order is taken from `ready`
  const ready: ImageSample[] = [];
  let inWindow = 0;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const failed: { error?: Error } = {}; // set by a job's rejection (an abort), read by the loop
  const throwIfFailed = (): void => {
    if (failed.error) throw failed.error;
  };
  const start = (ref: UrlRef): void => {
    inWindow++;
    const job: Job = { done: false };
    const seq = budget.open();
    dl.fetchSample(ref, seq).then(
      (s) => {
        budget.finish(seq);
        job.done = true;
        job.result = s;
        if (!o.ordered) ready.push(s);
        notify();
      },
      (e: unknown) => {
        budget.finish(seq);
        failed.error ??= e instanceof Error ? e : new Error(String(e));
        job.done = true;
        notify();
      },
    );
    if (o.ordered) pending.push(job);
  };
  /** The next sample that may be emitted now, if any. Re-checked after every yield: jobs that
   *  finish while the consumer holds the generator back are emitted in the same pass (nothing else
   *  would wake the loop for them). */
  const takeEmittable = (): ImageSample | undefined => {
    if (!o.ordered) return ready.shift();
    if (pending.length === 0 || !pending[0].done) return undefined;
    return (pending.shift() as Job).result;
  };

  const it = source[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<DownloadInput>> | undefined;
  let sourceDone = false;
  let buffered: (UrlRef | SampleRef)[] = [];
  try {
    for (;;) {
      throwIfFailed();
      throwIfAborted(o.signal);
      for (let s = takeEmittable(); s !== undefined; s = takeEmittable()) {
        inWindow--;
        budget.release(s.image?.length ?? 0);
        yield s;
      }
      throwIfFailed();
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
        else buffered = Array.isArray(r.value) ? r.value.slice() : [r.value];
      } else {
        await changed;
      }
    }
  } finally {
    wake = undefined;
    if (!sourceDone) void it.return?.()?.catch(() => undefined);
    if (failed.error || o.signal?.aborted) dl.limit.clearQueue();
    // Let in-flight requests end (they are aborted by `signal`, or finish quickly), then close.
    void dl.agent.close().catch(() => undefined);
  }
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
 * Built from the HTTP client in src/net: a guarded undici Agent (per-origin connection limit; the
 * SSRF check sits in its DNS lookup so a rebinding answer is refused at connect time), the per-host
 * scheduler, the retry policy and `wholeGet` (one attempt); p-limit bounds global concurrency. The stage
 * fails only with `ERR_DBPRUNE_ABORTED` on `signal`; options are validated here
 * (`ERR_DBPRUNE_INVALID_OPTION`, defaults and limits in {@link DownloadOptions}).
 */
export function download(opts: DownloadOptions = {}): Duplex {
  const o = resolveOptions(opts);
  const dl = new Downloader(o);
  return generatorStage((source: AsyncIterable<DownloadInput>) => emitThroughWindow(source, dl, o));
}
