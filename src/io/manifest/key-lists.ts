/** The kept-key list (`kept.txt`) and the DataComp uid subset (`.npy`) writers. */
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { buildNpyHeader } from '../npy.js';
import { fileSink } from './byte-sink.js';

/** A sink for a list of strings (kept keys, kept uids). */
export interface KeyListWriter {
  write(keys: readonly string[]): Promise<void>;
  /** Finalises and closes the file (idempotent); `rows` = entries written. */
  close(): Promise<{ rows: number }>;
  readonly rows: number;
}

/**
 * Writes keys one a line (kept.txt, for webdataset filtering). Pass the keys of kept samples;
 * `write` resolves once the text is handed to the file (backpressure).
 * @throws ERR_DBPRUNE_OUTPUT (from write/close, context.file) when the file cannot be written or
 *   fewer bytes reached the disk than were written (disk full).
 */
export function createKeptKeysWriter(path: string): KeyListWriter {
  const sink = fileSink(path);
  let count = 0;
  let chain: Promise<void> = Promise.resolve();
  let closing: Promise<{ rows: number }> | undefined;
  return {
    get rows() {
      return count;
    },
    write(keys) {
      if (closing) return Promise.reject(new DbpruneError(ErrorCodes.INTERNAL, 'kept-keys write after close', { file: path }));
      const p = chain.then(async () => {
        if (keys.length === 0) return;
        count += keys.length;
        await sink.write(keys.join('\n') + '\n');
      });
      chain = p.catch(() => undefined);
      return p;
    },
    close() {
      closing ??= chain.then(async () => {
        await sink.end();
        return { rows: count };
      });
      return closing;
    },
  };
}

const UID_RE = /^[0-9a-fA-F]{32}$/;

/** True for a DataComp uid: 32 hex digits (a 128-bit hash). */
export function isDataCompUid(s: string | null | undefined): s is string {
  return typeof s === 'string' && UID_RE.test(s);
}

/**
 * Writes uids (pass those of kept samples) as a DataComp subset file: a `.npy` structured array of dtype
 * `numpy.dtype("u8,u8")` (fields f0, f1 = the first and last 16 hex digits of the uid), shape
 * `(n,)`, sorted lexicographically and without duplicates, as DataComp's resharder expects. Holds
 * 16 bytes per kept uid until `close`.
 *
 * @throws ERR_DBPRUNE_INPUT_FORMAT (context.file, context.uid) from `write` for a uid that is not
 *   32 hex digits.
 */
export function createUidSubsetWriter(path: string): KeyListWriter {
  let words = new Uint32Array(4 * 1024);
  let n = 0;
  let closing: Promise<{ rows: number }> | undefined;
  const append = (u: string): void => {
    if (!isDataCompUid(u)) {
      throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `uid ${JSON.stringify(u)} is not 32 hex digits (DataComp subset files need 128-bit uids)`, {
        file: path,
        uid: u,
      });
    }
    if (4 * (n + 1) > words.length) {
      const nw = new Uint32Array(words.length * 2);
      nw.set(words);
      words = nw;
    }
    const o = 4 * n++;
    words[o] = parseInt(u.slice(0, 8), 16);
    words[o + 1] = parseInt(u.slice(8, 16), 16);
    words[o + 2] = parseInt(u.slice(16, 24), 16);
    words[o + 3] = parseInt(u.slice(24, 32), 16);
  };
  return {
    get rows() {
      return n;
    },
    write(uids) {
      // synchronous work; a throw in the executor becomes the rejection
      return new Promise<void>((resolve) => {
        if (closing) throw new DbpruneError(ErrorCodes.INTERNAL, 'uid subset write after close', { file: path });
        for (const u of uids) append(u);
        resolve();
      });
    },
    close() {
      closing ??= (async () => {
        const idx = new Uint32Array(n);
        for (let i = 0; i < n; i++) idx[i] = i;
        idx.sort((a, b) => {
          const oa = 4 * a;
          const ob = 4 * b;
          for (let k = 0; k < 4; k++) {
            const d = words[oa + k] - words[ob + k];
            if (d !== 0) return d;
          }
          return 0;
        });
        // little-endian u64 pairs: f0 = words[0..1] (hi, lo), f1 = words[2..3]
        const out = new Uint32Array(4 * n);
        let m = 0;
        for (let j = 0; j < n; j++) {
          const o = 4 * idx[j];
          if (m > 0) {
            const p = 4 * (m - 1);
            if (out[p + 1] === words[o] && out[p] === words[o + 1] && out[p + 3] === words[o + 2] && out[p + 2] === words[o + 3]) continue;
          }
          const q = 4 * m++;
          out[q] = words[o + 1];
          out[q + 1] = words[o];
          out[q + 2] = words[o + 3];
          out[q + 3] = words[o + 2];
        }
        const header = buildNpyHeader("[('f0', '<u8'), ('f1', '<u8')]", [m]);
        const sink = fileSink(path);
        await sink.write(header);
        await sink.write(new Uint8Array(out.buffer, 0, 16 * m));
        await sink.end();
        n = m;
        return { rows: m };
      })();
      return closing;
    },
  };
}
