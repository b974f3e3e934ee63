/**
 * `tap(fn)`: a pass-through stage that calls `fn` on every chunk (counting, progress, metrics)
 * without changing or delaying it. objectMode; `fn` must be cheap and must not throw.
 */
import { Transform } from 'node:stream';

export function tap<T>(fn: (chunk: T) => void, opts: { highWaterMark?: number } = {}): Transform {
  return new Transform({
    objectMode: true,
    highWaterMark: opts.highWaterMark ?? 16,
    transform(chunk: T, _enc, cb) {
      fn(chunk);
      cb(null, chunk);
    },
  });
}
