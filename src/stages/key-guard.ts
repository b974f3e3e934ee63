/**
 * `keyGuard()`: flags samples whose identity is not usable, before they reach the DBP statistics.
 *
 * Duplicate-key policy (README "Keys"): a sample is identified by (shard, key) — two shards may
 * hold the same key (img2dataset keys are unique per dataset, webdataset keys per tar), and
 * manifest rows carry both. Within that identity:
 * - a key that repeats **within one shard** is exact: every repeat after the first becomes a drop
 *   row with reason `error:duplicate-key` (the first occurrence is decided normally);
 * - a shard name that comes back after other shards (`run a.tar b.tar a.tar`, or a keys.txt listed
 *   twice) is the same shard read again: all of its rows become `error:duplicate-key`;
 * - a key holding a line break (`\n`, `\r`) cannot be written to `kept.txt` (one key a line) and
 *   becomes a drop row with reason `error:invalid-key`.
 *
 * Memory is bounded: the keys of the shard being read (shards arrive one after another in every
 * dbprune pipeline) up to `maxKeysPerShard` (beyond it, later repeats in that shard go undetected
 * and `onWarning` says so once), plus the names of the shards already read. Keys are remembered as
 * 96-bit fingerprints ({@link FingerprintSet}: 24–48 bytes a key, no string kept), so two different
 * keys of one shard are taken for one with probability about n² / 2^97 — 6·10^-18 for a shard of
 * a million keys.
 */
import { Transform } from 'node:stream';
import { ErrorCodes } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { FingerprintSet, fingerprint96 } from '../core/fingerprint-set.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch, type RowError } from '../core/sample.js';

/** Options of {@link keyGuard}: keys remembered per shard (default 2^22; 1..2^26), a warning callback, and whether a shard name that comes back is flagged (default true). */
export interface KeyGuardOptions {
  /** Keys remembered for the shard being read. Default 4,194,304 (2^22); 1..2^26. */
  maxKeysPerShard?: number;
  /** Called once per shard whose key count passes `maxKeysPerShard`. */
  onWarning?: (line: string) => void;
  /** Flag every row of a shard name that comes back after other shards. Default true; `ingest`
   *  turns it off (its journal already refuses an input twice, and `.npy` shard names are base names). */
  repeatedShards?: boolean;
}

export type KeyGuardStream = Transform & {
  readonly duplicates: number;
  readonly invalid: number;
  /** Records a key as seen without a row (a resumed run replaying the samples it skips). */
  remember(key: string, shard: string | undefined): void;
};

const inShard = (shard: string): string => (shard === '' ? '' : ` in shard ${shard}`);

/** Sub-sets of one shard's keys (a power of two). */
const KEY_SUBSETS = 16;

/** Keys per page of the in-order list: 96 KB, under glibc's initial mmap threshold. */
const IN_ORDER_PAGE_KEYS = 8192;

/**
 * One shard's keys. While they arrive in increasing order (img2dataset's `%09d` keys, most
 * keys.txt files) they are distinct by construction: each is checked with one string comparison
 * and its fingerprint appended to a list (12 bytes a key, no hashing into a table). The first
 * key out of order moves the list into {@link KEY_SUBSETS} fingerprint sets, picked by a
 * fingerprint word the sets do not index their slots with (the same members and answers as one
 * set: equal fingerprints always meet in one sub-set), and every later key is checked there. The
 * sorted path took the key check of `run --embeddings` over a million keys from ~0.37 to ~0.05
 * CPU-s (issue 16). Sub-sets rather than one table: one table of a million keys is 24 MB and
 * replaced by a fresh one at each doubling, and freeing those blocks raised glibc's mmap/trim
 * thresholds, after which every thread's malloc arena kept that much freed memory (~25 MB of peak
 * RSS at 1M rows).
 */
class ShardKeys {
  /**
   * Fingerprints of the keys so far (3 words each) while they are in increasing order, in pages
   * of {@link IN_ORDER_PAGE_KEYS} keys; null after. Pages, not one array grown by doubling: freeing
   * a 6 MB array raised glibc's mmap threshold just as the old single table did (see above).
   */
  private inOrder: Uint32Array[] | null = [];
  private last: string | undefined;
  private sets: FingerprintSet[] | null = null;
  private readonly fp = new Uint32Array(3);
  size = 0;

  /** Adds `key`; false when it (its fingerprint) was already a member. */
  add(key: string): boolean {
    fingerprint96(key, this.fp);
    const pages = this.inOrder;
    if (pages !== null && (this.last === undefined || key > this.last)) {
      const at = this.size % IN_ORDER_PAGE_KEYS;
      if (at === 0) pages.push(new Uint32Array(3 * IN_ORDER_PAGE_KEYS));
      pages[pages.length - 1].set(this.fp, 3 * at);
      this.last = key;
      this.size++;
      return true;
    }
    if (!this.setOf().addFingerprint(this.fp)) return false;
    this.size++;
    return true;
  }

  has(key: string): boolean {
    if (this.inOrder !== null && (this.last === undefined || key > this.last)) return false; // every member is ≤ last
    fingerprint96(key, this.fp);
    return this.setOf().hasFingerprint(this.fp);
  }

  /** The sub-set of the fingerprint in `fp`; moves the in-order pages into the sets first. */
  private setOf(): FingerprintSet {
    let sets = this.sets;
    if (sets === null) {
      sets = this.sets = Array.from({ length: KEY_SUBSETS }, () => new FingerprintSet());
      const pages = this.inOrder as Uint32Array[];
      for (let i = 0; i < this.size; i++) {
        const one = pages[Math.floor(i / IN_ORDER_PAGE_KEYS)].subarray(3 * (i % IN_ORDER_PAGE_KEYS), 3 * (i % IN_ORDER_PAGE_KEYS) + 3);
        sets[one[1] & (KEY_SUBSETS - 1)].addFingerprint(one);
      }
      this.inOrder = null;
    }
    return sets[this.fp[1] & (KEY_SUBSETS - 1)];
  }
}

/** True when a key can be written as one line of `kept.txt`. */
export function isWritableKey(key: string): boolean {
  return !/[\r\n]/.test(key);
}

/**
 * Stage: consumes and emits {@link EmbeddingBatch}es (put it before `assign`), unchanged except
 * for `errors[i]` set on the rows described in the module comment (`error:duplicate-key` with code
 * `ERR_DBPRUNE_DUPLICATE_KEY`, `error:invalid-key` with code `ERR_DBPRUNE_INPUT_FORMAT`). Rows that
 * already carry an error keep it (their key still counts as seen). Counts are on the stream
 * (`duplicates`, `invalid`). Options are validated here (`ERR_DBPRUNE_INVALID_OPTION`).
 */
export function keyGuard(opts: KeyGuardOptions = {}): KeyGuardStream {
  const maxKeys = integerOption(opts.maxKeysPerShard, 'maxKeysPerShard', { default: 2 ** 22, min: 1, max: 2 ** 26 });
  const flagRepeated = opts.repeatedShards ?? true;
  const done = new Set<string>();
  let shard: string | undefined;
  let keys = new ShardKeys();
  let repeated = false;
  let warned = false;
  let duplicates = 0;
  let invalid = 0;

  const check = (key: string, rowShard: string | undefined): RowError | undefined => {
    const s = rowShard ?? '';
    if (s !== shard) {
      if (shard !== undefined) done.add(shard);
      shard = s;
      keys = new ShardKeys();
      repeated = flagRepeated && done.has(s);
      warned = false;
    }
    if (key.indexOf('\n') >= 0 || key.indexOf('\r') >= 0) {
      invalid++;
      return { reason: 'error:invalid-key', message: `key ${JSON.stringify(key)}${inShard(s)} holds a line break; it cannot be written to kept.txt`, code: ErrorCodes.INPUT_FORMAT };
    }
    if (repeated) {
      duplicates++;
      return { reason: 'error:duplicate-key', message: `shard ${s} was already read in this run (listed twice?); key ${key} was decided there`, code: ErrorCodes.DUPLICATE_KEY };
    }
    if (keys.size < maxKeys) {
      if (!keys.add(key)) {
        duplicates++;
        return { reason: 'error:duplicate-key', message: `key ${key} repeats${inShard(s)}; only its first occurrence is decided`, code: ErrorCodes.DUPLICATE_KEY };
      }
    } else if (keys.has(key)) {
      duplicates++;
      return { reason: 'error:duplicate-key', message: `key ${key} repeats${inShard(s)}; only its first occurrence is decided`, code: ErrorCodes.DUPLICATE_KEY };
    } else if (!warned) {
      warned = true;
      opts.onWarning?.(`dbprune: shard ${s} has more than ${maxKeys} keys; repeated keys beyond them are not detected`);
    }
    return undefined;
  };

  const guardBatch = (batch: EmbeddingBatch): EmbeddingBatch => {
    const n = batch.rows.length;
    let errors = batch.errors;
    for (let i = 0; i < n; i++) {
      const row = batch.rows[i];
      const err = check(row.key, row.shard);
      if (err && !errors?.[i]) {
        if (!errors || errors.length < n) {
          const full = new Array<RowError | undefined>(n).fill(undefined);
          errors?.forEach((e, j) => (full[j] = e));
          errors = full;
        }
        errors[i] = err;
      }
    }
    batch.errors = errors;
    return batch;
  };
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      try {
        cb(null, guardBatch(batch));
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  Object.defineProperties(stream, {
    duplicates: { get: () => duplicates },
    invalid: { get: () => invalid },
    remember: {
      value: (key: string, shard: string | undefined): void => {
        const d = duplicates;
        const v = invalid;
        check(key, shard);
        duplicates = d;
        invalid = v;
      },
    },
  });
  return stream as KeyGuardStream;
}
