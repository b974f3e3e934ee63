/**
 * `tap(fn)`: a pass-through stage that calls `fn` on every chunk (counting, progress, metrics)
 * without changing or delaying it. objectMode; `fn` must be cheap and must not throw.
 */
import { Transform } from 'node:stream';
import { checkOption } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import { STAGE_HIGH_WATER_MARK } from './generator-stage.js';

/** A pass-through stage that calls `fn` on every chunk (counting, progress, metrics) without changing or delaying it; `fn` must be cheap and must not throw. */
export function tap<T>(fn: (chunk: T) => void, opts: { highWaterMark?: number } = {}): Transform {
  checkOption(typeof fn === 'function', 'fn', 'a function', fn);
  return new Transform({
    objectMode: true,
    highWaterMark: integerOption(opts.highWaterMark, 'highWaterMark', STAGE_HIGH_WATER_MARK),
    transform(chunk: T, _enc, cb) {
      fn(chunk);
      cb(null, chunk);
    },
  });
}
