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
import { DbpruneError, ErrorCodes, checkOption, isDbpruneError } from '../core/errors.js';
import type { ImageSample } from '../core/sample.js';
import { DEFAULT_MAX_MEMBER_BYTES, readTarSamples, shardErrorSample, type TarWarning } from '../io/tar.js';
import type { ShardRef } from './shard-source.js';
import { isUrl } from '../io/glob.js';
import { abortedError, isSsrfError, RETRYABLE_NETWORK_CODES, sleep, ssrfGuard, type SsrfGuard, type SsrfGuardOptions } from '../net/http.js';
import { HttpStatusError, streamGet } from '../net/http-stream.js';
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
  /** Backoff before retry i (0-based) is `retryBaseMs · 2^i`, ms. Default 500, 0..60_000. */
  retryBaseMs?: number;
  /** Fails the shard once it has produced more bytes than this (or announces more in
   *  Content-Length). Default: no cap. 1..2^53. */
  maxShardBytes?: number;
  /* SSRF guard (from SsrfGuardOptions): `allowPrivate` (default false: a URL shard, or a redirect
   * target, on a loopback/private/link-local/reserved address is refused with ERR_DBPRUNE_SSRF),
   * `allowPrivateHosts` (host names exempt, e.g. the hosts of shard URLs a user typed), `lookup`. */
  signal?: AbortSignal;
}

interface ResolvedFetchOptions {
  timeoutMs: number;
  minBytesPerSecond: number;
  rateWindowMs: number;
  maxRedirects: number;
  retries: number;
  retryBaseMs: number;
  maxShardBytes: number;
  guard: SsrfGuard;
}

function retryable(e: unknown): boolean {
  if (e instanceof HttpStatusError) return e.status >= 500 || e.status === 408 || e.status === 429;
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code);
}

const isInt = (v: number, lo: number, hi: number): boolean => Number.isInteger(v) && v >= lo && v <= hi;

function resolveFetchOptions(o: FetchShardBytesOptions): ResolvedFetchOptions {
  const timeoutMs = o.timeoutMs ?? 60_000;
  checkOption(isInt(timeoutMs, 1, 3_600_000), 'timeoutMs', 'an integer in 1..3600000', timeoutMs);
  const minBytesPerSecond = o.minBytesPerSecond ?? 1024;
  checkOption(Number.isFinite(minBytesPerSecond) && minBytesPerSecond >= 0 && minBytesPerSecond <= 2 ** 30, 'minBytesPerSecond', 'a number in 0..2^30', minBytesPerSecond);
  const rateWindowMs = o.rateWindowMs ?? 30_000;
  checkOption(isInt(rateWindowMs, 100, 3_600_000), 'rateWindowMs', 'an integer in 100..3600000', rateWindowMs);
  const maxRedirects = o.maxRedirects ?? 5;
  checkOption(isInt(maxRedirects, 0, 20), 'maxRedirects', 'an integer in 0..20', maxRedirects);
  const retries = o.retries ?? 3;
  checkOption(isInt(retries, 0, 20), 'retries', 'an integer in 0..20', retries);
  const retryBaseMs = o.retryBaseMs ?? 500;
  checkOption(Number.isFinite(retryBaseMs) && retryBaseMs >= 0 && retryBaseMs <= 60_000, 'retryBaseMs', 'a number in 0..60000', retryBaseMs);
  const maxShardBytes = o.maxShardBytes ?? Number.MAX_SAFE_INTEGER;
  checkOption(Number.isInteger(maxShardBytes) && maxShardBytes >= 1, 'maxShardBytes', 'a positive integer', maxShardBytes);
  const hosts = o.allowPrivateHosts ?? [];
  checkOption(Array.isArray(hosts) && hosts.every((h) => typeof h === 'string' && h.length > 0), 'allowPrivateHosts', 'a list of host names', hosts);
  checkOption(o.lookup === undefined || typeof o.lookup === 'function', 'lookup', 'a dns.lookup-like function', typeof o.lookup);
  const guard = ssrfGuard({ allowPrivate: o.allowPrivate ?? false, allowPrivateHosts: hosts, lookup: o.lookup });
  return { timeoutMs, minBytesPerSecond, rateWindowMs, maxRedirects, retries, retryBaseMs, maxShardBytes, guard };
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
  // node:http, not undici: see src/io/http-stream.ts (undici 7 crashes when a server closes the
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
      if (passed === 0 && i < o.retries && retryable(e)) {
        await sleep(o.retryBaseMs * 2 ** i, signal);
        continue;
      }
      const status = e instanceof HttpStatusError ? e.status : undefined;
      const cause = (e as Error)?.message ?? String(e);
      const where = passed > 0 ? ` after ${passed} bytes` : '';
      throw new DbpruneError(
        ErrorCodes.DOWNLOAD,
        `fetching shard ${shard} failed${where} (attempt ${i + 1} of ${o.retries + 1}): ${cause}`,
        { shard, url: isUrl(shard) ? shard : undefined, attempts: i + 1, status, bytes: passed },
        { cause: e },
      );
    }
  }
}

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
 * `timeoutMs` 60_000, `retries` 3, `retryBaseMs` 500, `maxShardBytes` none, `maxMemberBytes`
 * 256 MiB, `minBytesPerSecond` 1024, `rateWindowMs` 30_000, `maxRedirects` 5, `allowPrivate` false,
 * `allowPrivateHosts`, `lookup`, `onWarning`, `signal` (on abort the stage fails with `ERR_DBPRUNE_ABORTED`
 * and cancels the downloads in flight).
 */
export function shardsToSamples(opts: ShardsToSamplesOptions = {}): Duplex {
  const fo = resolveFetchOptions(opts);
  const concurrency = opts.concurrency ?? 2;
  checkOption(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 64, 'concurrency', 'an integer in 1..64', concurrency);
  const readAhead = opts.readAhead ?? 64;
  checkOption(Number.isInteger(readAhead) && readAhead >= 1 && readAhead <= 65_536, 'readAhead', 'an integer in 1..65536', readAhead);
  const maxMemberBytes = opts.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES;
  checkOption(Number.isInteger(maxMemberBytes) && maxMemberBytes >= 1, 'maxMemberBytes', 'a positive integer', maxMemberBytes);
  const { signal, onWarning } = opts;

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
    let sourceError: unknown;
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
        sourceError = e;
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
