/**
 * The HTTP vocabulary shared by the stages that fetch over the network (`shardsToSamples`,
 * `download`): which failures are worth a retry, and an abortable wait for backoff.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';

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
