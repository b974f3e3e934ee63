import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { HostScheduler, MIN_SLOWDOWN_INTERVAL_MS } from '../../src/net/host-scheduler.js';

describe('HostScheduler', () => {
  it('with no floor, never waits and tracks nothing', async () => {
    const s = new HostScheduler({ minIntervalMs: 0, maxIntervalMs: 30_000 });
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) await s.gate('a.test');
    expect(performance.now() - t0).toBeLessThan(50);
    expect(s.size).toBe(0);
  });

  it('spaces requests to one host by the floor; other hosts do not wait', async () => {
    const s = new HostScheduler({ minIntervalMs: 80, maxIntervalMs: 30_000 });
    const t0 = performance.now();
    await s.gate('a.test');
    await s.gate('b.test');
    expect(performance.now() - t0).toBeLessThan(40);
    await s.gate('a.test');
    await s.gate('a.test');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150); // two waits of ~80 ms
  });

  it('a 429/503 doubles the interval (at least 250 ms, at most the ceiling) and holds the host; successes shrink it back to the floor', () => {
    let now = 1_000_000;
    const s = new HostScheduler({ minIntervalMs: 0, maxIntervalMs: 1000, now: () => now });
    expect(s.slowDown('a.test', 0)).toBe(MIN_SLOWDOWN_INTERVAL_MS);
    expect(s.slowDown('a.test', 0)).toBe(500);
    expect(s.slowDown('a.test', 0)).toBe(1000);
    expect(s.slowDown('a.test', 0)).toBe(1000); // the ceiling
    expect(s.intervalOf('b.test')).toBe(0);
    s.recovered('a.test');
    expect(s.intervalOf('a.test')).toBe(900);
    for (let i = 0; i < 200; i++) s.recovered('a.test');
    expect(s.intervalOf('a.test')).toBe(0); // snapped to the floor, not an endless tail
    now += 1;
  });

  it('holds a slowed host until its Retry-After', async () => {
    const s = new HostScheduler({ minIntervalMs: 0, maxIntervalMs: 30_000 });
    s.slowDown('a.test', 120);
    const t0 = performance.now();
    await s.gate('a.test');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('forgets idle hosts at the floor once more than maxTrackedHosts are tracked', async () => {
    let now = 0;
    const s = new HostScheduler({ minIntervalMs: 10, maxIntervalMs: 30_000, maxTrackedHosts: 3, now: () => now });
    for (const h of ['a', 'b', 'c']) await s.gate(h);
    expect(s.size).toBe(3);
    s.slowDown('c', 1000); // slowed: kept
    now += 20;
    await s.gate('d');
    expect(s.size).toBe(2); // a and b pruned; c (slowed) and d (just booked) stay
    // d's booking survived the pruning: with the clock held before its next slot, a second request waits (until aborted)
    now += 5;
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await expect(s.gate('d', ac.signal)).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
    expect(s.intervalOf('c')).toBe(MIN_SLOWDOWN_INTERVAL_MS);
  });

  it('a wait for a host ends with ERR_DBPRUNE_ABORTED when the signal fires', async () => {
    const s = new HostScheduler({ minIntervalMs: 0, maxIntervalMs: 30_000 });
    s.slowDown('a.test', 60_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await expect(s.gate('a.test', ac.signal)).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  });
});
