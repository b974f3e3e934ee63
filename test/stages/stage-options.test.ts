// Stage factories validate their options at construction through src/core/validate.ts: code
// ERR_DBPRUNE_INVALID_OPTION, context.option naming the option, the limits in the message.
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { basicFilter } from '../../src/stages/basic-filter.js';
import { clipScore } from '../../src/stages/clip-score.js';
import { clipScoreFilter } from '../../src/stages/clip-score-filter.js';
import { decode } from '../../src/stages/decode.js';
import { generatorStage } from '../../src/stages/generator-stage.js';
import { keyGuard } from '../../src/stages/key-guard.js';
import { normalize } from '../../src/stages/normalize.js';
import { shardSource } from '../../src/stages/shard-source.js';
import { tap } from '../../src/stages/tap.js';
import { untar } from '../../src/stages/untar.js';

function rejects(make: () => unknown, option: string, message: string): void {
  let thrown: unknown;
  try {
    make();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toMatchObject({ code: ErrorCodes.INVALID_OPTION, context: { option } });
  expect((thrown as Error).message).toContain(message);
}

describe('stage options', () => {
  it('decode: sizes, lists, choices and defaults', () => {
    rejects(() => decode({ size: 8193 }), 'size', 'an integer in 1..8192, got 8193');
    rejects(() => decode({ maxPixels: 0 }), 'maxPixels', 'an integer in 1..1e10');
    rejects(() => decode({ thumbnail: 4 }), 'thumbnail', 'an integer in 8..512, got 4');
    rejects(() => decode({ background: [0, 0, 256] }), 'background', '3 integers in 0..255');
    rejects(() => decode({ mean: [0, 0] }), 'mean', '3 finite numbers');
    rejects(() => decode({ std: [1, 0, 1] }), 'std', '3 finite non-zero numbers');
    rejects(() => decode({ rescaleFactor: 0 }), 'rescaleFactor', 'a number > 0');
    rejects(() => decode({ mode: 'stretch' as never }), 'mode', 'one of shortest-center-crop | squash');
    rejects(() => decode({ kernel: 'bilinear' as never }), 'kernel', 'lanczos3');
    rejects(() => decode({ concurrency: 65 }), 'concurrency', 'an integer in 1..64');
    expect(() => decode({ thumbnail: 8, background: [0, 0, 0], concurrency: 64 }).destroy()).not.toThrow();
  });

  it('the other stages', () => {
    rejects(() => untar({ shard: '' }), 'shard', 'a non-empty string');
    rejects(() => untar({ maxMemberBytes: 0.5 }), 'maxMemberBytes', 'an integer ≥ 1');
    rejects(() => normalize({ tolerance: 1 }), 'tolerance', 'a number > 0 and < 1');
    rejects(() => clipScore({ textModel: 'x', batchSize: 4097 }), 'batchSize', 'an integer in 1..4096');
    rejects(() => clipScoreFilter({ min: Number.NaN }), 'min', 'a finite number');
    rejects(() => clipScoreFilter({ top: 0.5, warmup: 0 }), 'warmup', 'an integer ≥ 1');
    rejects(() => clipScoreFilter({ top: 1.5 }), 'fraction', 'a number > 0 and ≤ 1');
    rejects(() => clipScoreFilter({ top: 0.5, reservoir: 0 }), 'capacity', 'an integer ≥ 1');
    rejects(() => keyGuard({ maxKeysPerShard: 2 ** 26 + 1 }), 'maxKeysPerShard', 'an integer in 1..2^26');
    rejects(() => shardSource({ inputs: ['a', '  '] }), 'inputs', 'or a readable stream of lines');
    rejects(() => basicFilter({ language: 'en' as never }), 'language', 'a boolean');
    rejects(() => tap(() => undefined, { highWaterMark: 0 }), 'highWaterMark', 'an integer in 1..65536');
    rejects(() => tap('count' as never), 'fn', 'a function');
    rejects(() => basicFilter({ detect: 'eld' as never }), 'detect', 'a function');
    rejects(() => basicFilter({ signal: {} as never }), 'signal', 'an AbortSignal');
  });

  it('generatorStage: highWaterMark is an option error with a code, not a bare RangeError', () => {
    const body = async function* (source: AsyncIterable<number>): AsyncGenerator<number> {
      for await (const x of source) yield x;
    };
    rejects(() => generatorStage(body, { highWaterMark: 0 }), 'highWaterMark', 'an integer in 1..65536, got 0');
  });
});
