/**
 * Small helpers of the HTTP client shared by the stages that fetch over the network
 * (`shardsToSamples`, `download`): the error code along a cause chain, a readable one-line cause,
 * the abort error, and an abortable wait for backoff.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';

/** The first string `code` on an error or along its `cause` chain (at most 5 deep). */
export function errorCodeOf(e: unknown): string | undefined {
  for (let x = e, i = 0; x && i < 5; x = (x as { cause?: unknown }).cause, i++) {
    const c = (x as { code?: unknown }).code;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/** A thrown primitive as text (objects without a message say nothing useful). */
function primitiveText(x: unknown): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') return x.toString();
  return 'unknown error';
}

/** A one-line description of an error and its causes (at most 4 deep), each with its code, without repeats. */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  for (let x = e, i = 0; x && i < 4; x = (x as { cause?: unknown }).cause, i++) {
    const message = (x as { message?: unknown }).message;
    const m = typeof message === 'string' ? message : primitiveText(x);
    const c = (x as { code?: unknown }).code;
    const s = typeof c === 'string' && !m.includes(c) ? `${m} (${c})` : m;
    if (s && !parts.some((p) => p.includes(s))) parts.push(s);
  }
  return parts.join(': ') || 'unknown error';
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
