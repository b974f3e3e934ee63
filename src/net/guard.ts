/**
 * The SSRF guard of the HTTP client: a URL check before connecting (scheme, IP-literal hosts) plus a
 * guarded DNS lookup that refuses non-public answers at connect time, so DNS rebinding cannot slip a
 * private address in after the check. Both the download stage (through an undici Agent, see
 * guarded-agent.ts) and the shard fetcher (node:http, see http-stream.ts) use it on every hop.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { ErrorCodes } from '../core/errors.js';
import { booleanOption, checkOption, optionalOption } from '../core/validate.js';
import { errorCodeOf } from './http.js';
import { ALLOWED_SCHEMES, classifyAddress, isIpLiteral } from './ssrf.js';

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

/**
 * Validates the guard's options once (ERR_DBPRUNE_INVALID_OPTION): `allowPrivate` a boolean,
 * `allowPrivateHosts` a list of non-empty host names, `lookup` a function. Returns them resolved.
 */
export function guardOptions(o: SsrfGuardOptions): Required<Omit<SsrfGuardOptions, 'lookup'>> & Pick<SsrfGuardOptions, 'lookup'> {
  const allowPrivate = booleanOption(o.allowPrivate, 'allowPrivate', false);
  const hosts = o.allowPrivateHosts ?? [];
  checkOption(Array.isArray(hosts) && hosts.every((h) => typeof h === 'string' && h.length > 0), 'allowPrivateHosts', 'a list of host names', hosts);
  const lookup = optionalOption<LookupFunction>(o.lookup, 'lookup', 'a dns.lookup-like function', (v) => typeof v === 'function');
  return { allowPrivate, allowPrivateHosts: [...hosts], lookup };
}

/** Builds the guard from options validated by {@link guardOptions} (see {@link SsrfGuardOptions}). */
export function ssrfGuard(o: SsrfGuardOptions = {}): SsrfGuard {
  const allowPrivate = o.allowPrivate ?? false;
  const allowHosts = new Set((o.allowPrivateHosts ?? []).map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')));
  const resolve: LookupFunction = o.lookup ?? dnsLookup;
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
    resolve(hostname, { ...options, all: true }, ((err: NodeJS.ErrnoException | null, addresses: string | LookupAddress[], family?: number) => {
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
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      else callback(null, list[0].address, list[0].family);
    }));
  };
  return { allowPrivate, problem, lookup };
}
