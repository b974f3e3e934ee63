/**
 * The HTTP vocabulary shared by the stages that fetch over the network (`shardsToSamples`,
 * `download`): which failures are worth a retry, an abortable wait for backoff, and the SSRF
 * guard (a URL check before connecting plus a guarded DNS lookup that refuses non-public answers
 * at connect time, so DNS rebinding cannot slip a private address in after the check).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { ALLOWED_SCHEMES, classifyAddress, isIpLiteral } from './ssrf.js';

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

/** The first string `code` on an error or along its `cause` chain (at most 5 deep). */
export function errorCodeOf(e: unknown): string | undefined {
  for (let x = e, i = 0; x && i < 5; x = (x as { cause?: unknown }).cause, i++) {
    const c = (x as { code?: unknown }).code;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/** ERR_DBPRUNE_ABORTED carrying the signal's reason (and the shard, when given). */
export function abortedError(signal: AbortSignal | undefined, context: { shard?: string } = {}): DbpruneError {
  return new DbpruneError(ErrorCodes.ABORTED, 'aborted', context, { cause: signal?.reason });
}

/** Resolves after `ms`, or rejects with ERR_DBPRUNE_ABORTED as soon as `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortedError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Raised (inside the connection attempt) when a host name resolves to a refused address. */
export class SsrfError extends Error {
  readonly code = ErrorCodes.SSRF;
}

/** True when `e` or its cause is the SSRF guard's refusal. */
export function isSsrfError(e: unknown): boolean {
  return e instanceof SsrfError || (e as { cause?: unknown })?.cause instanceof SsrfError || errorCodeOf(e) === ErrorCodes.SSRF;
}

export interface SsrfGuardOptions {
  /** Allow loopback, private, link-local, multicast, unspecified and reserved targets. Default false. */
  allowPrivate?: boolean;
  /** Host names (exact, case-insensitive; IP literals too) exempt from the guard. Default none. */
  allowPrivateHosts?: readonly string[];
  /** DNS resolver (Node `dns.lookup` signature). Default `dns.lookup`. Its answers pass the guard. */
  lookup?: LookupFunction;
}

/** The SSRF guard one stage uses for every request and every redirect hop. */
export interface SsrfGuard {
  readonly allowPrivate: boolean;
  /** Why `url` must not be fetched (scheme, or an IP literal host that is not public), or undefined. */
  problem(url: URL): string | undefined;
  /** A `dns.lookup` for the connection: refuses (SsrfError) names resolving to non-public addresses. */
  readonly lookup: LookupFunction;
}

/** Builds the guard from validated options (see {@link SsrfGuardOptions}). */
export function ssrfGuard(o: SsrfGuardOptions = {}): SsrfGuard {
  const allowPrivate = o.allowPrivate ?? false;
  const allowHosts = new Set((o.allowPrivateHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')));
  const resolve = o.lookup ?? (dnsLookup as unknown as LookupFunction);
  const exempt = (host: string): boolean => allowPrivate || allowHosts.has(host.toLowerCase().replace(/^\[|\]$/g, ''));
  const problem = (url: URL): string | undefined => {
    if (!ALLOWED_SCHEMES.has(url.protocol)) return `scheme ${url.protocol} is not http or https`;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (exempt(host) || !isIpLiteral(host)) return undefined;
    const cls = classifyAddress(host);
    return cls === 'public' ? undefined : `${host} is a ${cls} address (allowPrivate is off)`;
  };
  const lookup: LookupFunction = (hostname, options, callback) => {
    const free = exempt(hostname);
    resolve(hostname, { ...(options as LookupOptions), all: true }, ((err: NodeJS.ErrnoException | null, addresses: string | LookupAddress[], family?: number) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const list: LookupAddress[] = Array.isArray(addresses) ? addresses : [{ address: addresses, family: family ?? 4 }];
      if (list.length === 0) {
        callback(Object.assign(new Error(`${hostname} resolved to no address`), { code: 'ENOTFOUND' }), '', 0);
        return;
      }
      if (!free) {
        for (const a of list) {
          const cls = classifyAddress(a.address);
          if (cls !== 'public') {
            callback(new SsrfError(`${hostname} resolves to ${a.address} (${cls}); private targets are refused (allowPrivate is off)`), '', 0);
            return;
          }
        }
      }
      if ((options as LookupOptions).all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      else callback(null, list[0].address, list[0].family);
    }) as never);
  };
  return { allowPrivate, problem, lookup };
}
