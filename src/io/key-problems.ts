/**
 * Exact detection of repeated and unwritable keys over a whole input, for exact mode (`prune`),
 * which reads its keys more than once anyway. The streaming counterpart is the `keyGuard` stage.
 *
 * Identity is (shard, key), as in `keyGuard`: a pair seen before is a duplicate (its first
 * occurrence is decided normally), and a key holding a line break cannot be written to `kept.txt`.
 *
 * Memory: one 52-bit hash per row (8 bytes, transient) — sorted to find hash values that occur
 * more than once — then exact strings only for rows whose hash is among those candidates (a second
 * keys pass, made only when there are candidates). Hash collisions cost a string comparison,
 * never a wrong flag.
 */
import { throwIfAborted } from '../core/errors.js';
import { ErrorCodes } from '../core/errors.js';
import { fingerprint96 } from '../core/fingerprint-set.js';
import { errorRow, type ManifestRow, type SampleRef } from '../core/sample.js';

/** Per-row flag values of {@link KeyProblems.flags}. */
export const KEY_OK = 0;
export const KEY_DUPLICATE = 1;
export const KEY_UNWRITABLE = 2;

export interface KeyProblems {
  /** `flags[i]` for row i (KEY_OK, KEY_DUPLICATE, KEY_UNWRITABLE); undefined when every row is fine. */
  flags: Uint8Array | undefined;
  duplicates: number;
  unwritable: number;
}

const fp = new Uint32Array(3);

/**
 * A 52-bit hash of a string (two words of the key guard's {@link fingerprint96}: exact integers in a
 * double), so streaming and exact mode share one string hash.
 */
export function hash52(s: string): number {
  fingerprint96(s, fp);
  return fp[0] * 2 ** 20 + (fp[1] >>> 12);
}

const identity = (r: SampleRef): string => `${r.shard ?? ''}\u0000${r.key}`;

/**
 * Reads the keys (`refs()` is called once, or twice when hashes repeat) and flags every row whose
 * (shard, key) occurred on an earlier row, and every key holding `\n` or `\r`. `total` is the
 * number of rows `refs()` yields.
 */
export async function findKeyProblems(refs: () => AsyncIterable<SampleRef[]>, total: number, signal?: AbortSignal): Promise<KeyProblems> {
  let flags: Uint8Array | undefined;
  let unwritable = 0;
  const hashes = new Float64Array(total);
  let i = 0;
  for await (const batch of refs()) {
    throwIfAborted(signal);
    for (const r of batch) {
      if (/[\r\n]/.test(r.key)) {
        flags ??= new Uint8Array(total);
        flags[i] = KEY_UNWRITABLE;
        unwritable++;
      }
      hashes[i++] = hash52(identity(r));
    }
  }
  hashes.sort();
  const candidates = new Set<number>();
  for (let j = 1; j < total; j++) if (hashes[j] === hashes[j - 1]) candidates.add(hashes[j]);
  let duplicates = 0;
  if (candidates.size > 0) {
    const seen = new Set<string>();
    i = 0;
    for await (const batch of refs()) {
      throwIfAborted(signal);
      for (const r of batch) {
        const id = identity(r);
        if (candidates.has(hash52(id))) {
          if (seen.has(id)) {
            flags ??= new Uint8Array(total);
            if (flags[i] === KEY_OK) duplicates++;
            if (flags[i] === KEY_OK) flags[i] = KEY_DUPLICATE;
          } else seen.add(id);
        }
        i++;
      }
    }
  }
  return { flags, duplicates, unwritable };
}

/** The manifest row of a flagged key (`error:duplicate-key` or `error:invalid-key`). */
export function keyProblemRow(ref: SampleRef, flag: number): ManifestRow {
  const where = ref.shard ? ` in shard ${ref.shard}` : '';
  return flag === KEY_DUPLICATE
    ? errorRow(ref, { reason: 'error:duplicate-key', message: `key ${ref.key} repeats${where}; only its first occurrence is decided`, code: ErrorCodes.DUPLICATE_KEY })
    : errorRow(ref, { reason: 'error:invalid-key', message: `key ${JSON.stringify(ref.key)}${where} holds a line break; it cannot be written to kept.txt`, code: ErrorCodes.INPUT_FORMAT });
}
