/**
 * `generatorStage(fn)`: an objectMode Duplex whose output is the async generator `fn(source)`,
 * where `source` iterates the chunks written to it — what `Duplex.from(asyncGeneratorFunction)`
 * does, with two differences a long-running pipeline needs:
 *
 * - destroying the stream (e.g. `pipeline(..., { signal })` being aborted) rejects the generator's
 *   pending read of `source`, so the generator unwinds and the pipeline settles. With
 *   `Duplex.from` on Node 20, a generator waiting for input keeps `destroy()` from completing and
 *   the pipeline hangs;
 * - the queue depth is explicit (`highWaterMark` per side, default 16 objects).
 *
 * Backpressure: a written chunk is acknowledged when the generator takes it; output is pulled from
 * the generator only while the readable side wants more.
 */
import { Duplex } from 'node:stream';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { integerOption, type NumberSpec } from '../core/validate.js';

/** A stage's buffer in chunks (objects): default 16, 1..65536. */
export const STAGE_HIGH_WATER_MARK: NumberSpec = { default: 16, min: 1, max: 65_536 };

/** Options of {@link generatorStage}: objects queued per side (default 16; 1..65,536). */
export interface GeneratorStageOptions {
  /** Objects queued per side. Default 16 (Node's objectMode default), 1..65,536. */
  highWaterMark?: number;
}

class StageDestroyedError extends Error {
  constructor() {
    super('stage destroyed');
    this.name = 'AbortError';
  }
}

/**
 * An objectMode Duplex whose output is the async generator `fn(source)`; unlike `Duplex.from`, destroying it unwinds a generator waiting for input.
 * Throws RangeError on a bad `highWaterMark`.
 */
export function generatorStage<I, O>(fn: (source: AsyncIterable<I>) => AsyncGenerator<O>, opts: GeneratorStageOptions = {}): Duplex {
  const hwm = integerOption(opts.highWaterMark, 'highWaterMark', STAGE_HIGH_WATER_MARK);

  const inbox: { chunk: I; ack: () => void }[] = [];
  let ended = false;
  let failure: Error | undefined;
  let waiter: { resolve: (r: IteratorResult<I>) => void; reject: (e: Error) => void } | undefined;

  const source: AsyncIterable<I> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Promise<IteratorResult<I>>((resolve, reject) => {
          if (failure) return reject(failure);
          const item = inbox.shift();
          if (item) {
            item.ack();
            resolve({ value: item.chunk, done: false });
          } else if (ended) resolve({ value: undefined, done: true });
          else waiter = { resolve, reject };
        }),
      return: () => Promise.resolve({ value: undefined, done: true }),
    }),
  };

  const gen = fn(source);
  let pumping = false;
  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      for (;;) {
        const r = await gen.next();
        if (r.done) {
          stage.push(null);
          return;
        }
        if (!stage.push(r.value)) return; // resumed by the next read()
      }
    } catch (e) {
      stage.destroy(e as Error);
    } finally {
      pumping = false;
    }
  };

  const stage = new Duplex({
    objectMode: true,
    readableHighWaterMark: hwm,
    writableHighWaterMark: hwm,
    write(chunk: I, _enc, cb) {
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        cb();
        w.resolve({ value: chunk, done: false });
      } else inbox.push({ chunk, ack: () => cb() });
    },
    final(cb) {
      ended = true;
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w.resolve({ value: undefined, done: true });
      }
      cb();
    },
    read() {
      void pump();
    },
    destroy(err, cb) {
      failure = err ?? new StageDestroyedError();
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w.reject(failure);
      }
      inbox.length = 0;
      // Unwind the generator (its finally blocks run); its own rejection is not an error here.
      void gen.return(undefined as O).catch(() => undefined);
      cb(err);
    },
  });
  return stage;
}

/**
 * Destroys `stream` with ERR_DBPRUNE_ABORTED when `signal` fires (on the next microtask if it
 * already has), and stops listening once the stream closes. What every stage's `signal` option does.
 */
export function destroyOnAbort<S extends Duplex>(stream: S, signal: AbortSignal | undefined): S {
  if (!signal) return stream;
  const onAbort = (): void => {
    stream.destroy(new DbpruneError(ErrorCodes.ABORTED, 'aborted', {}, { cause: signal.reason }));
  };
  if (signal.aborted) queueMicrotask(onAbort);
  else {
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return stream;
}
