/**
 * The undici Agent of the HTTP client, with the SSRF guard's DNS lookup in its connector: every
 * connection (first request, redirect hop, retry) resolves through the guard, so a name that
 * resolves to a refused address fails at connect time with `SsrfError` as the cause.
 */
import { Agent } from 'undici';
import type { SsrfGuard } from './guard.js';

export interface GuardedAgentOptions {
  /** Open connections per origin (undici `connections`). */
  connectionsPerHost: number;
  /** TCP/TLS connect timeout, ms. */
  connectTimeoutMs: number;
  /** Time to the response headers, ms. */
  headersTimeoutMs: number;
  /** Largest gap between two body chunks, ms. */
  bodyTimeoutMs: number;
}

/** An Agent (no pipelining) whose connections resolve host names through `guard.lookup`. Options are validated by the caller. */
export function guardedAgent(guard: SsrfGuard, o: GuardedAgentOptions): Agent {
  return new Agent({
    connections: o.connectionsPerHost,
    pipelining: 1,
    connect: { timeout: o.connectTimeoutMs, lookup: guard.lookup },
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
  });
}
