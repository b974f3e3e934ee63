/**
 * Fetching webdataset shards (local files or http(s) URLs) and turning them into samples.
 *
 * Composition: {@link fetchShardBytes} streams one shard's bytes (retries, timeouts, size cap);
 * `readTarSamples` (src/io/tar.ts) groups the tar members by key; {@link shardsToSamples} is the
 * stage that runs both for several shards at once and emits the samples in shard order.
 */
import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Duplex } from 'node:stream';
import { generatorStage } from './generator-stage.js';
import { DbpruneError, ErrorCodes, isDbpruneError } from '../core/errors.js';
import type { ImageSample } from '../core/sample.js';
import { DEFAULT_MAX_MEMBER_BYTES, readTarSamples, shardErrorSample, type TarWarning } from '../io/tar.js';
import type { ShardRef } from './shard-source.js';
import { isUrl } from '../io/glob.js';
import { guardOptions, isSsrfError, ssrfGuard, type SsrfGuard, type SsrfGuardOptions } from '../net/guard.js';
import { abortedError, sleep } from '../net/http.js';
import { HttpStatusError, streamGet } from '../net/http-stream.js';
import { isRetryableNetworkError, isRetryableStatus, planRetry, retryPolicy, type RetryPolicy } from '../net/retry.js';
import { integerOption, numberOption, optionalOption, signalOption } from '../core/validate.js';
import { isS3Uri, openRead } from '../io/storage/index.js';

export interface FetchShardBytesOptions extends SsrfGuardOptions {
  /** Limit for the response headers and for each wait for body data, ms (time the consumer holds
   *  the stream back does not count). Default 60_000, 1..3_600_000. Local files have none. */
  timeoutMs?: number;
  /** Minimum average transfer rate of a URL shard, bytes/s, over each `rateWindowMs` of time spent
   *  waiting on the network; a slower shard fails (`ERR_DBPRUNE_DOWNLOAD`), so a server that
   *  trickles cannot hold a run. Default 1024, 0 (off)..2^30. */
  minBytesPerSecond?: number;
  /** Window of network waiting time over which `minBytesPerSecond` is checked, ms. Default
   *  30_000, 100..3_600_000. */
  rateWindowMs?: number;
  /** Redirects followed; every target passes the SSRF guard. Default 5, 0..20. */
  maxRedirects?: number;
  /** Retries after the first attempt, for HTTP 408/429/5xx and connection errors (reset, refused,
   *  timeouts) that happen before any byte was passed on. Default 3, 0..20. */
  retries?: number;
  /** Backoff before retry i (0-based) is `min(retryMaxDelayMs, retryBaseMs · 2^i)`, ms (no
   *  jitter). Default 500, 0..60_000. */
  retryBaseMs?: number;
  /** Cap on one backoff and on an honoured `Retry-After` of a 429/503, ms; a longer Retry-After
   *  fails the shard at once. Default 60_000, 0..3_600_000 (the download stage's retry policy). */
  retryMaxDelayMs?: number;
  /** Fails the shard once it has produced more bytes than this (or announces more in
   *  Content-Length). Default: no cap. 1..2^53. */
  maxShardBytes?: number;
  /**
   * SSRF guard. Default false: a URL shard, or any redirect target, that is or resolves to a
   * loopback/private/link-local/multicast/reserved address is refused with ERR_DBPRUNE_SSRF (an
   * `error:ssrf` shard row). Leave it false for shard URLs that come from someone else — a POST to
   * `ingest`, a URL list, stdin — and lift it only for hosts you trust, with `allowPrivateHosts`:
   * the CLI trusts the hosts of the shard URLs a user typed as arguments (redirects from them to
   * other hosts stay guarded) and never those of listed or submitted URLs.
   */
  allowPrivate?: boolean;
  /** Host names (exact, case-insensitive; IP literals too) exempt from the guard, e.g. the hosts of
   *  shard URLs a user typed on the command line. Default none. */
  allowPrivateHosts?: readonly string[];
  signal?: AbortSignal;
}

interface ResolvedFetchOptions {
  timeoutMs: number;
  minBytesPerSecond: number;
  rateWindowMs: number;
  maxRedirects: number;
  retry: RetryPolicy;
  maxShardBytes: number;
  guard: SsrfGuard;
}

/** Whether a failed attempt may succeed on a retry (the shared policy's statuses and network codes). */
function retryable(e: unknown): boolean {
  if (e instanceof HttpStatusError) return isRetryableStatus(e.status);
  return isRetryableNetworkError(e);
}

function resolveFetchOptions(o: FetchShardBytesOptions): ResolvedFetchOptions {
  return {
    timeoutMs: integerOption(o.timeoutMs, 'timeoutMs', { default: 60_000, min: 1, max: 3_600_000 }),
    minBytesPerSecond: numberOption(o.minBytesPerSecond, 'minBytesPerSecond', { default: 1024, min: 0, max: 2 ** 30 }),
    rateWindowMs: integerOption(o.rateWindowMs, 'rateWindowMs', { default: 30_000, min: 100, max: 3_600_000 }),
    maxRedirects: integerOption(o.maxRedirects, 'maxRedirects', { default: 5, min: 0, max: 20 }),
    retry: retryPolicy(o, { retries: 3, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: false }),
    maxShardBytes: integerOption(o.maxShardBytes, 'maxShardBytes', { default: Number.MAX_SAFE_INTEGER, min: 1 }),
    guard: ssrfGuard(guardOptions(o)),
  };
}

function abortError(signal: AbortSignal | undefined, shard?: string): DbpruneError {
  return abortedError(signal, shard ? { shard } : {});
}

async function* attempt(shard: string, o: ResolvedFetchOptions, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  if (isS3Uri(shard)) {
    // The SDK retries the GET itself (standard mode); its errors come back as ERR_DBPRUNE_*.
    const body = await openRead(shard, { signal });
    try {
      for await (const c of body) yield c as Buffer;
    } finally {
      body.destroy();
    }
    return;
  }
  if (!isUrl(shard)) {
    const rs = createReadStream(shard);
    const onAbort = (): void => {
      rs.destroy(abortError(signal, shard));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const c of rs) yield c as Buffer;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      rs.destroy();
    }
    return;
  }
  // node:http, not undici: see src/net/http-stream.ts (undici 7 crashes when a server closes the
  // connection while a backpressured body is paused).
  const res = await streamGet(shard, { ...o, signal });
  try {
    if (res.contentLength !== undefined && res.contentLength > o.maxShardBytes) {
      throw new DbpruneError(ErrorCodes.DOWNLOAD, `shard ${shard} announces ${res.contentLength} bytes, above maxShardBytes ${o.maxShardBytes}`, {
        shard,
        url: shard,
      });
    }
    let got = 0;
    for await (const c of res.chunks) {
      got += c.length;
      yield c;
    }
    if (res.contentLength !== undefined && got !== res.contentLength) {
      throw Object.assign(new Error(`truncated shard: received ${got} of ${res.contentLength} bytes`), { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' });
    }
  } finally {
    res.close();
  }
}

/**
 * Streams the bytes of one shard: a local file (`fs.createReadStream`) or an http(s) GET (node:http, SSRF-guarded on every hop).
 *
 * An attempt that fails before any byte was passed on is retried when the failure is transient
 * (HTTP 408/429/5xx, connection reset/refused, timeouts), after `retryBaseMs · 2^i` ms; a failure
 * after the first byte is final (the consumer has already used those bytes).
 *
 * Throws `ERR_DBPRUNE_DOWNLOAD` (context: shard, url, attempts, status) with the cause attached;
 * `ERR_DBPRUNE_ABORTED` when `signal` fires; `ERR_DBPRUNE_INVALID_OPTION` for bad options.
 */
export async function* fetchShardBytes(shard: string, opts: FetchShardBytesOptions = {}): AsyncGenerator<Buffer> {
  const o = resolveFetchOptions(opts);
  yield* fetchResolved(shard, o, opts.signal);
}

async function* fetchResolved(shard: string, o: ResolvedFetchOptions, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  let passed = 0;
  for (let i = 0; ; i++) {
    try {
      for await (const chunk of attempt(shard, o, signal)) {
        passed += chunk.length;
        if (passed > o.maxShardBytes) {
          throw new DbpruneError(ErrorCodes.DOWNLOAD, `shard ${shard} is larger than maxShardBytes ${o.maxShardBytes}`, {
            shard,
            url: isUrl(shard) ? shard : undefined,
          });
        }
        yield chunk;
      }
      return;
    } catch (e) {
      if (signal?.aborted) throw abortError(signal, shard);
      if (isDbpruneError(e)) throw e;
      if (isSsrfError(e)) {
        throw new DbpruneError(ErrorCodes.SSRF, `shard ${shard}: ${(e as Error).message}`, { shard, url: shard }, { cause: e });
      }
      const status = e instanceof HttpStatusError ? e.status : undefined;
      // a failure after the first byte is final: the consumer has already used those bytes
      const plan = planRetry(o.retry, i, { retryable: passed === 0 && retryable(e), status, retryAfterMs: e instanceof HttpStatusError ? e.retryAfterMs : undefined });
      if (plan.retry) {
        await sleep(plan.delayMs, signal);
        continue;
      }
      const tooLong = plan.retryAfterMs === undefined ? '' : `; Retry-After ${Math.round(plan.retryAfterMs / 1000)} s is above retryMaxDelayMs ${o.retry.maxDelayMs}`;
      const cause = `${(e as Error)?.message ?? String(e)}${tooLong}`;
      const where = passed > 0 ? ` after ${passed} bytes` : '';
      throw new DbpruneError(
        ErrorCodes.DOWNLOAD,
        `fetching shard ${shard} failed${where} (attempt ${i + 1} of ${o.retry.retries + 1}): ${cause}`,
        { shard, url: isUrl(shard) ? shard : undefined, attempts: i + 1, status, bytes: passed },
        { cause: e },
      );
    }
  }
}

/** Options of {@link shardsToSamples}: shards at once (default 2; 1..64), samples read ahead per shard (default 64), largest member, plus fetch options. */
export interface ShardsToSamplesOptions extends FetchShardBytesOptions {
  /** Shards fetched and parsed at once. Default 2, 1..64. */
  concurrency?: number;
  /** Samples buffered per shard that is ahead of the one being emitted. Default 64, 1..65_536.
   *  Memory is bounded by `concurrency × readAhead` samples. */
  readAhead?: number;
  /** Largest tar member read into memory, bytes. Default 256 MiB. */
  maxMemberBytes?: number;
  /** Called for non-fatal problems inside a shard (bad JSON sidecar, second image for a key). */
  onWarning?: (w: TarWarning) => void;
}

/** A bounded single-producer/single-consumer queue; `cancel` makes pending and later pushes fail. */
class BoundedQueue<T> {
  private items: T[] = [];
  private closed = false;
  private cancelled = false;
  private wakeProducer: (() => void) | undefined;
  private wakeConsumer: (() => void) | undefined;

  constructor(private readonly capacity: number) {}

  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.cancelled) {
      await new Promise<void>((r) => (this.wakeProducer = r));
    }
    if (this.cancelled) return false;
    this.items.push(item);
    this.wake('consumer');
    return true;
  }

  close(): void {
    this.closed = true;
    this.wake('consumer');
  }

  cancel(): void {
    this.cancelled = true;
    this.items = [];
    this.wake('producer');
    this.wake('consumer');
  }

  private wake(who: 'producer' | 'consumer'): void {
    const f = who === 'producer' ? this.wakeProducer : this.wakeConsumer;
    if (who === 'producer') this.wakeProducer = undefined;
    else this.wakeConsumer = undefined;
    f?.();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length > 0) {
        const item = this.items.shift() as T;
        this.wake('producer');
        yield item;
        continue;
      }
      if (this.closed || this.cancelled) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }
}

/**
 * Stage: shard descriptors in, samples out (fetch + untar in one stage).
 *
 * Consumes {@link ShardRef} objects (or plain shard strings). Emits {@link ImageSample}s: every
 * key of every shard, shards in input order and keys in tar order (deterministic), while up to
 * `concurrency` shards download and parse at once (shards ahead of the one being emitted buffer up
 * to `readAhead` samples, then wait: backpressure reaches the socket).
 *
 * A shard that fails never stops the stage: the samples read before the failure are emitted as
 * usual, followed by ONE error row standing for the shard, key `<basename>:shard` (e.g.
 * `00003.tar:shard`), `shard` and (for URLs) `url` set, `error.reason` = `error:download` (missing
 * file, HTTP error, reset, timeout, size cap) or `error:untar` (not a tar, truncated archive),
 * `error.message` naming the shard and the cause. Such a row is not a sample of the dataset; a sink
 * counts it as one dropped row. Retries and timeouts: see {@link fetchShardBytes}.
 *
 * Options (validated here, `ERR_DBPRUNE_INVALID_OPTION`): `concurrency` 2 (1..64), `readAhead` 64,
 * `timeoutMs` 60_000, `retries` 3, `retryBaseMs` 500, `retryMaxDelayMs` 60_000, `maxShardBytes` none, `maxMemberBytes`
 * 256 MiB, `minBytesPerSecond` 1024, `rateWindowMs` 30_000, `maxRedirects` 5, `allowPrivate` false,
 * `allowPrivateHosts`, `lookup`, `onWarning`, `signal` (on abort the stage fails with `ERR_DBPRUNE_ABORTED`
 * and cancels the downloads in flight).
 */
export function shardsToSamples(opts: ShardsToSamplesOptions = {}): Duplex {
  const fo = resolveFetchOptions(opts);
  const concurrency = integerOption(opts.concurrency, 'concurrency', { default: 2, min: 1, max: 64 });
  const readAhead = integerOption(opts.readAhead, 'readAhead', { default: 64, min: 1, max: 65_536 });
  const maxMemberBytes = integerOption(opts.maxMemberBytes, 'maxMemberBytes', { default: DEFAULT_MAX_MEMBER_BYTES, min: 1 });
  const signal = signalOption(opts.signal);
  const onWarning = optionalOption<(w: TarWarning) => void>(opts.onWarning, 'onWarning', 'a function', (v) => typeof v === 'function');

  return generatorStage(async function* (source: AsyncIterable<ShardRef | string>): AsyncGenerator<ImageSample> {
    const ac = new AbortController();
    setMaxListeners(0, ac.signal); // one listener per request in flight (up to `concurrency`)
    const onAbort = (): void => ac.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    interface Job {
      queue: BoundedQueue<ImageSample>;
      done: Promise<void>;
    }
    const jobs: Job[] = [];
    let sourceDone = false;
    let sourceError: Error | undefined;
    let waiters: (() => void)[] = [];
    const notify = (): void => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const changed = (): Promise<void> => new Promise((r) => waiters.push(r));
    ac.signal.addEventListener('abort', notify, { once: true });

    const startJob = (shard: string): Job => {
      const queue = new BoundedQueue<ImageSample>(readAhead);
      const done = (async () => {
        try {
          const bytes = fetchResolved(shard, fo, ac.signal);
          for await (const s of readTarSamples(bytes, { shard, maxMemberBytes, onWarning, signal: ac.signal })) {
            if (!(await queue.push(s))) return;
          }
        } catch (e) {
          if (!ac.signal.aborted) await queue.push(shardErrorSample(shard, e));
        } finally {
          queue.close();
        }
      })();
      return { queue, done };
    };

    const pump = (async () => {
      try {
        for await (const ref of source) {
          while (jobs.length >= concurrency && !ac.signal.aborted) await changed();
          if (ac.signal.aborted) break;
          const shard = typeof ref === 'string' ? ref : ref?.shard;
          if (typeof shard !== 'string' || shard.length === 0) {
            throw new DbpruneError(ErrorCodes.INVALID_OPTION, `shardsToSamples expects { shard: string } objects, got ${JSON.stringify(ref)}`, {});
          }
          jobs.push(startJob(shard));
          notify();
        }
      } catch (e) {
        sourceError = e instanceof Error ? e : new Error(String(e));
      } finally {
        sourceDone = true;
        notify();
      }
    })();

    try {
      for (;;) {
        if (ac.signal.aborted) break;
        if (jobs.length === 0) {
          if (sourceDone) break;
          await changed();
          continue;
        }
        const job = jobs[0];
        for await (const s of job.queue.drain()) yield s;
        await job.done;
        jobs.shift();
        notify();
      }
      if (signal?.aborted) throw abortError(signal);
      if (sourceError !== undefined) throw sourceError;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!ac.signal.aborted) ac.abort();
      for (const j of jobs) j.queue.cancel();
      notify();
      void pump;
    }
  });
}

/** Alias of {@link shardsToSamples}: the `fetch` + `untar` stages of the design as one stage. */
export const fetchShard = shardsToSamples;
