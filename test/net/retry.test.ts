import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import {
  backoffMs,
  honoursRetryAfter,
  isRetryableNetworkError,
  isRetryableStatus,
  parseRetryAfter,
  planRetry,
  retryPolicy,
} from '../../src/net/retry.js';

const policy = retryPolicy({}, { retries: 3, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: false });

describe('retry policy: which failures retry', () => {
  it('retries 408, 429 and 5xx, nothing else', () => {
    expect([408, 429, 500, 502, 503, 504].map(isRetryableStatus)).toEqual([true, true, true, true, true, true]);
    expect([200, 301, 304, 400, 401, 403, 404, 410].map(isRetryableStatus)).toEqual([false, false, false, false, false, false, false, false]);
    expect([429, 503, 500, 408, undefined].map(honoursRetryAfter)).toEqual([true, true, false, false, false]);
  });

  it('retries transient socket and undici codes, also along the cause chain', () => {
    expect(isRetryableNetworkError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryableNetworkError(new Error('fetch failed', { cause: Object.assign(new Error('t'), { code: 'UND_ERR_HEADERS_TIMEOUT' }) }))).toBe(true);
    expect(isRetryableNetworkError(Object.assign(new Error('no such host'), { code: 'ENOTFOUND' }))).toBe(false);
    expect(isRetryableNetworkError(new Error('plain'))).toBe(false);
    expect(isRetryableNetworkError(undefined)).toBe(false);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1) - 5000)).toBe(5000);
    expect(parseRetryAfter(new Date(Date.UTC(2020, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(0); // in the past
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('retry policy: how long to wait', () => {
  it('doubles from the base, capped, without jitter', () => {
    expect([0, 1, 2, 3].map((i) => backoffMs(policy, i))).toEqual([500, 1000, 2000, 4000]);
    const capped = retryPolicy({ retryMaxDelayMs: 1500 }, { retries: 3, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: false });
    expect([0, 1, 2, 10].map((i) => backoffMs(capped, i))).toEqual([500, 1000, 1500, 1500]);
  });

  it('jitter scales each backoff into [0.5, 1] of it', () => {
    const jittered = { ...policy, jitter: true };
    expect(backoffMs(jittered, 2, () => 0)).toBe(1000);
    expect(backoffMs(jittered, 2, () => 0.5)).toBe(1500);
    for (let i = 0; i < 100; i++) {
      const d = backoffMs(jittered, 1);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  it('plans: no retry for final failures or once retries are used up', () => {
    expect(planRetry(policy, 0, { retryable: false, status: 404 })).toEqual({ retry: false });
    expect(planRetry(policy, 3, { retryable: true, status: 500 })).toEqual({ retry: false });
    expect(planRetry(policy, 2, { retryable: true, status: 500 })).toEqual({ retry: true, delayMs: 2000, slowDown: false });
    expect(planRetry(policy, 0, { retryable: true })).toEqual({ retry: true, delayMs: 500, slowDown: false });
  });

  it('plans: 429/503 honour Retry-After within the cap and slow the host down; a longer one gives up at once', () => {
    expect(planRetry(policy, 0, { retryable: true, status: 429, retryAfterMs: 7000 })).toEqual({ retry: true, delayMs: 7000, slowDown: true });
    expect(planRetry(policy, 1, { retryable: true, status: 503 })).toEqual({ retry: true, delayMs: 1000, slowDown: true });
    expect(planRetry(policy, 0, { retryable: true, status: 429, retryAfterMs: 3_600_000 })).toEqual({ retry: false, retryAfterMs: 3_600_000 });
    // Retry-After of other statuses is not read
    expect(planRetry(policy, 0, { retryable: true, status: 500, retryAfterMs: 3_600_000 })).toEqual({ retry: true, delayMs: 500, slowDown: false });
  });

  it('validates the numbers once, with the caller defaults', () => {
    expect(retryPolicy({ retries: 0, retryBaseMs: 0 }, { retries: 2, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: true })).toEqual({
      retries: 0,
      baseMs: 0,
      maxDelayMs: 60_000,
      jitter: true,
    });
    const d = { retries: 2, retryBaseMs: 500, retryMaxDelayMs: 60_000, jitter: true };
    for (const bad of [{ retries: -1 }, { retries: 21 }, { retries: 1.5 }, { retryBaseMs: -1 }, { retryBaseMs: 60_001 }, { retryMaxDelayMs: Number.NaN }]) {
      expect(() => retryPolicy(bad, d), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    }
  });
});
