/**
 * `--cluster redis://…`: the Redis connection BullMQ uses, a fast reachability probe (an
 * unreachable server is one ERR_DBPRUNE_CLUSTER_UNREACHABLE line, not a hang), and the queue and
 * job settings shared by the submitter and the workers.
 */
import { Redis } from 'ioredis';
import type { DefaultJobOptions } from 'bullmq';
import { DbpruneError, ErrorCodes, UsageError } from '../core/errors.js';

/** The BullMQ queue every dbprune job goes through (`--queue` overrides it, e.g. one per team). */
export const DEFAULT_QUEUE = 'dbprune';

/** Redis connection settings parsed from `redis://[user:password@]host[:port][/db]`. */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** Required by BullMQ workers: commands wait for a reconnect instead of failing. */
  maxRetriesPerRequest: null;
}

/** Parses and validates `--cluster` once. @throws UsageError (exit 2) for anything but redis://. */
export function parseClusterUrl(url: string): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--cluster must be redis://HOST:PORT, got ${url}`, { option: 'cluster' });
  }
  if (u.protocol !== 'redis:') throw new UsageError(`--cluster must be redis://HOST:PORT, got ${u.protocol}//…`, { option: 'cluster' });
  const port = u.port === '' ? 6379 : Number(u.port);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new UsageError(`--cluster: database must be a number, got ${u.pathname.slice(1)}`, { option: 'cluster' });
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    maxRetriesPerRequest: null,
  };
}

/** `host:port` for messages (never the password). */
export function describeConnection(c: RedisConnection): string {
  return `redis://${c.host}:${c.port}${c.db ? `/${c.db}` : ''}`;
}

/**
 * Connects once without retries and PINGs. @throws ERR_DBPRUNE_CLUSTER_UNREACHABLE within
 * `timeoutMs` (default 5 s) when the server is down, refuses, or rejects the credentials.
 */
export async function probeRedis(c: RedisConnection, timeoutMs = 5000): Promise<void> {
  const client = new Redis({
    host: c.host,
    port: c.port,
    db: c.db,
    username: c.username,
    password: c.password,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined); // reported through the rejected promise below
  let timer: NodeJS.Timeout | undefined;
  // ioredis can leave connect() pending when the server dies mid-handshake: a hard deadline too.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 500);
  });
  try {
    await Promise.race([(async () => {
      await client.connect();
      await client.ping();
    })(), deadline]);
  } catch (e) {
    throw new DbpruneError(ErrorCodes.CLUSTER_UNREACHABLE, `cannot reach Redis at ${describeConnection(c)}: ${(e as Error).message}`, { url: describeConnection(c) }, { cause: e });
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/**
 * Watches Redis while a submitter waits: a PING every `everyMs`; when it has failed for `lostMs`
 * (default 30 s) `lost` rejects with ERR_DBPRUNE_CLUSTER_UNREACHABLE, so a dead Redis ends the
 * command instead of hanging it (BullMQ itself would wait for a reconnect forever).
 */
export function watchRedis(c: RedisConnection, opts: { everyMs?: number; lostMs?: number } = {}): { lost: Promise<never>; stop: () => void } {
  const everyMs = opts.everyMs ?? 5000;
  const lostMs = opts.lostMs ?? 30_000;
  let failingSince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const lost = new Promise<never>((_, reject) => {
    const tick = (): void => {
      probeRedis(c, Math.min(everyMs, 3000)).then(
        () => {
          failingSince = undefined;
        },
        (e: unknown) => {
          failingSince ??= Date.now();
          if (Date.now() - failingSince >= lostMs) {
            stopped = true;
            reject(new DbpruneError(ErrorCodes.CLUSTER_UNREACHABLE, `lost Redis at ${describeConnection(c)} for ${Math.round(lostMs / 1000)} s (${(e as Error).message}); the same command resumes the run once it is back`, { url: describeConnection(c) }));
          }
        },
      ).finally(() => {
        if (!stopped) timer = setTimeout(tick, everyMs);
      });
    };
    timer = setTimeout(tick, everyMs);
  });
  lost.catch(() => undefined);
  return {
    lost,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Timing of lock renewal and stalled-job detection (tests shorten them). */
export interface StallSettings {
  /**
   * How long a job's lock lives without renewal (the worker renews it every half of this).
   * Must exceed the longest event-loop stall of a job: 120 s by default (planning at k = 50,000
   * computes d_inter synchronously).
   */
  lockDurationMs: number;
  /** How often each worker looks for jobs whose lock expired (their worker died). */
  stalledIntervalMs: number;
  /** Stalls a job survives before it fails for good. */
  maxStalledCount: number;
}

export const DEFAULT_STALL: StallSettings = { lockDurationMs: 120_000, stalledIntervalMs: 30_000, maxStalledCount: 3 };

/** Job options of the per-part jobs: retried with backoff; kept a week so a resumed submit finds them. */
export const PART_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** The merge (parent) jobs: fewer retries; a failure is a bug or a broken work dir. */
export const MERGE_JOB_OPTIONS: DefaultJobOptions = { ...PART_JOB_OPTIONS, attempts: 2 };
