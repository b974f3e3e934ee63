/**
 * The per-host scheduler of the HTTP client: a polite minimum interval between two requests to one
 * host, a slow-down when the host answers 429/503 (the interval doubles, at least 250 ms, at most
 * `maxIntervalMs`, and the host is held until its Retry-After), and a recovery of 10% per success
 * back to the floor. Hosts at the floor with no pending hold are forgotten once more than
 * `maxTrackedHosts` are tracked, so a crawl over millions of hosts keeps a bounded map.
 */
import { sleep } from './http.js';

interface HostState {
  /** Earliest time (Date.now) the next request may start. */
  nextAt: number;
  intervalMs: number;
}

export interface HostSchedulerOptions {
  /** Minimum time between two requests to one host, ms (0 = none). Validated by the caller. */
  minIntervalMs: number;
  /** Ceiling of a slowed host's interval, ms (≥ minIntervalMs). Validated by the caller. */
  maxIntervalMs: number;
  /** Hosts tracked before idle ones are pruned. Default 10_000. */
  maxTrackedHosts?: number;
  /** Clock, ms (tests). Default Date.now. */
  now?: () => number;
}

/** Slowest interval a 429/503 sets at least, ms. */
export const MIN_SLOWDOWN_INTERVAL_MS = 250;

export class HostScheduler {
  private readonly hosts = new Map<string, HostState>();
  private readonly now: () => number;
  private readonly maxTracked: number;

  constructor(private readonly o: HostSchedulerOptions) {
    this.now = o.now ?? Date.now;
    this.maxTracked = o.maxTrackedHosts ?? 10_000;
  }

  /** Hosts tracked now. */
  get size(): number {
    return this.hosts.size;
  }

  /** The current interval of `host`, ms (the floor when untracked). */
  intervalOf(host: string): number {
    return this.hosts.get(host)?.intervalMs ?? this.o.minIntervalMs;
  }

  /** Waits until `host` may get another request, then books that slot. Rejects with ERR_DBPRUNE_ABORTED on `signal`. */
  async gate(host: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.now();
      let hs = this.hosts.get(host);
      if (!hs) {
        if (this.o.minIntervalMs === 0) return;
        hs = { nextAt: now, intervalMs: this.o.minIntervalMs };
        // pruned before the new host is added, so its booking below is not pruned with the idle ones
        if (this.hosts.size >= this.maxTracked) this.prune(now);
        this.hosts.set(host, hs);
      }
      if (hs.nextAt <= now) {
        hs.nextAt = now + hs.intervalMs;
        return;
      }
      await sleep(hs.nextAt - now, signal);
    }
  }

  /** A 429/503 from `host`: doubles its interval and holds it for `retryAfterMs`. Returns the new interval, ms. */
  slowDown(host: string, retryAfterMs: number): number {
    const now = this.now();
    const hs = this.hosts.get(host) ?? { nextAt: now, intervalMs: this.o.minIntervalMs };
    hs.intervalMs = Math.min(this.o.maxIntervalMs, Math.max(MIN_SLOWDOWN_INTERVAL_MS, hs.intervalMs * 2));
    hs.nextAt = Math.max(hs.nextAt, now + retryAfterMs);
    this.hosts.set(host, hs);
    return hs.intervalMs;
  }

  /** A success from `host`: shrinks a slowed interval by 10%, back to the floor. */
  recovered(host: string): void {
    const hs = this.hosts.get(host);
    if (!hs || hs.intervalMs <= this.o.minIntervalMs) return;
    hs.intervalMs = Math.max(this.o.minIntervalMs, hs.intervalMs * 0.9);
    if (hs.intervalMs - this.o.minIntervalMs < 1) hs.intervalMs = this.o.minIntervalMs;
  }

  private prune(now: number): void {
    for (const [h, s] of this.hosts) if (s.nextAt <= now && s.intervalMs <= this.o.minIntervalMs) this.hosts.delete(h);
  }
}
