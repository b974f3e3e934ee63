/**
 * The retry policy of the HTTP client, shared by `download` (whole image bodies) and the shard
 * fetcher (streamed tars): which failures are worth another attempt, how long to wait before it
 * (exponential backoff, optionally jittered, capped), and how a server's `Retry-After` on 429/503
 * is honoured (waited for when within the cap; a longer one ends the retries at once).
 */
import { integerOption, numberOption } from '../core/validate.js';
import { errorCodeOf } from './http.js';

/** Socket and undici error codes of transient failures: a retry may succeed. */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** HTTP statuses worth a retry: 408 (request timeout), 429 (too many requests) and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Statuses whose `Retry-After` is honoured (and that slow a host down). */
export function honoursRetryAfter(status: number | undefined): boolean {
  return status === 429 || status === 503;
}

/** True when the error (or its cause chain) carries a transient socket/undici code. */
export function isRetryableNetworkError(e: unknown): boolean {
  const code = errorCodeOf(e);
  return code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
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

/** How a client retries. Build it with {@link retryPolicy}, which validates the numbers. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** Backoff before retry i (0-based): `min(maxDelayMs, baseMs · 2^i)`. */
  readonly baseMs: number;
  /** Cap on one backoff and on an honoured Retry-After, ms. */
  readonly maxDelayMs: number;
  /** Multiply each backoff by a random factor in [0.5, 1] (spreads retries of many clients). */
  readonly jitter: boolean;
}

/** The option names and defaults a caller validates its retry options with (names differ per stage only in defaults). */
export interface RetryPolicyInput {
  retries?: number;
  retryBaseMs?: number;
  retryMaxDelayMs?: number;
}

/**
 * Validates `retries` (integer 0..20), `retryBaseMs` (0..60_000) and `retryMaxDelayMs`
 * (0..3_600_000) with the caller's defaults (ERR_DBPRUNE_INVALID_OPTION) and returns the policy.
 */
export function retryPolicy(
  o: RetryPolicyInput,
  defaults: { retries: number; retryBaseMs: number; retryMaxDelayMs: number; jitter: boolean },
): RetryPolicy {
  return {
    retries: integerOption(o.retries, 'retries', { default: defaults.retries, min: 0, max: 20 }),
    baseMs: numberOption(o.retryBaseMs, 'retryBaseMs', { default: defaults.retryBaseMs, min: 0, max: 60_000 }),
    maxDelayMs: numberOption(o.retryMaxDelayMs, 'retryMaxDelayMs', { default: defaults.retryMaxDelayMs, min: 0, max: 3_600_000 }),
    jitter: defaults.jitter,
  };
}

/** The backoff before retry `attempt` (0-based), ms. `random` returns a number in [0, 1). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const delay = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** attempt);
  return policy.jitter ? delay * (0.5 + random() * 0.5) : delay;
}

/** A failed attempt as the policy sees it. */
export interface AttemptFailure {
  /** Whether this kind of failure may succeed on another attempt. */
  retryable: boolean;
  /** The HTTP status, when the server answered. */
  status?: number;
  /** The server's Retry-After, ms (only read for 429/503). */
  retryAfterMs?: number;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { retry: true; delayMs: number; /** A 429/503: the host asked to slow down. */ slowDown: boolean }
  | { retry: false; /** Set when the server's Retry-After is above the cap (the only reason worth telling). */ retryAfterMs?: number };

/**
 * Decides whether to retry after failed attempt `attempt` (0-based): not when the failure is not
 * retryable or the retries are used up; on 429/503 a Retry-After within `maxDelayMs` replaces the
 * backoff (and asks the caller to slow the host down), a longer one gives up at once.
 */
export function planRetry(policy: RetryPolicy, attempt: number, f: AttemptFailure, random: () => number = Math.random): RetryDecision {
  if (!f.retryable || attempt >= policy.retries) return { retry: false };
  let delayMs = backoffMs(policy, attempt, random);
  const slowDown = honoursRetryAfter(f.status);
  if (slowDown && f.retryAfterMs !== undefined) {
    if (f.retryAfterMs > policy.maxDelayMs) return { retry: false, retryAfterMs: f.retryAfterMs };
    delayMs = f.retryAfterMs;
  }
  return { retry: true, delayMs, slowDown };
}
