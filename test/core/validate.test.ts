// The option vocabulary (src/core/validate.ts): defaults, limits, and messages built from the bounds.
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import {
  booleanOption,
  choiceOption,
  describeRange,
  integerOption,
  numberListOption,
  numberOption,
  signalOption,
  stringListOption,
  stringOption,
} from '../../src/core/validate.js';

/** `fn` throws ERR_DBPRUNE_INVALID_OPTION naming `option`, with a message matching `message`. */
function throwsInvalid(fn: () => unknown, option: string, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toMatchObject({ code: ErrorCodes.INVALID_OPTION, context: { option } });
  expect((thrown as Error).message).toMatch(message);
}

describe('validate', () => {
  it('describes ranges from the bounds', () => {
    expect(describeRange('integer', { min: 1, max: 64 })).toBe('an integer in 1..64');
    expect(describeRange('integer', { min: 1, max: 2 ** 24 })).toBe('an integer in 1..2^24');
    expect(describeRange('integer', { min: 1, max: 1e10 })).toBe('an integer in 1..1e10');
    expect(describeRange('number', { min: 0, exclusiveMin: true, max: 1 })).toBe('a number > 0 and ≤ 1');
    expect(describeRange('number', {})).toBe('a finite number');
    expect(describeRange('integer', { min: 0, max: 255 }, true)).toBe('integers in 0..255');
    expect(describeRange('number', {}, true)).toBe('finite numbers');
  });

  it('integerOption and numberOption: default, limits, message', () => {
    expect(integerOption(undefined, 'n', { default: 4, min: 1, max: 8 })).toBe(4);
    expect(integerOption(8, 'n', { default: 4, min: 1, max: 8 })).toBe(8);
    throwsInvalid(() => integerOption(9, 'n', { min: 1, max: 8 }), 'n', /^option n must be an integer in 1\.\.8, got 9$/);
    throwsInvalid(() => integerOption(1.5, 'n', { min: 1 }), 'n', /an integer ≥ 1, got 1\.5/);
    throwsInvalid(() => integerOption(undefined, 'n', { min: 1 }), 'n', /got undefined/);
    expect(numberOption(1, 'f', { min: 0, exclusiveMin: true, max: 1 })).toBe(1);
    throwsInvalid(() => numberOption(0, 'f', { min: 0, exclusiveMin: true, max: 1 }), 'f', /a number > 0 and ≤ 1, got 0/);
    throwsInvalid(() => numberOption(NaN, 'f'), 'f', /a finite number, got null/);
  });

  it('a name written as a CLI flag throws a usage error', () => {
    expect(() => integerOption(0, '--target', { min: 1 })).toThrow(
      expect.objectContaining({ code: ErrorCodes.USAGE, context: { option: 'target' }, message: '--target must be an integer ≥ 1, got 0' }),
    );
    expect(() => choiceOption('csv', '--format', ['parquet', 'jsonl'] as const)).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
  });

  it('choices, booleans, strings, signals', () => {
    expect(choiceOption(undefined, 'mode', ['a', 'b'] as const, 'b')).toBe('b');
    throwsInvalid(() => choiceOption('c', 'mode', ['a', 'b'] as const), 'mode', /one of a \| b, got "c"/);
    expect(booleanOption(undefined, 'x', true)).toBe(true);
    throwsInvalid(() => booleanOption('yes', 'x'), 'x', /a boolean/);
    throwsInvalid(() => stringOption('', 's'), 's', /a non-empty string/);
    expect(stringOption('', 's', { allowEmpty: true })).toBe('');
    expect(signalOption(undefined)).toBeUndefined();
    throwsInvalid(() => signalOption({}), 'signal', /an AbortSignal/);
  });

  it('numberListOption: length and per-element limits in one message', () => {
    expect(numberListOption(undefined, 'bg', 3, 'integer', { min: 0, max: 255, default: [1, 2, 3] })).toEqual([1, 2, 3]);
    throwsInvalid(() => numberListOption([0, 0, 256], 'bg', 3, 'integer', { min: 0, max: 255 }), 'bg', /^option bg must be 3 integers in 0\.\.255, got \[0,0,256\]$/);
    throwsInvalid(() => numberListOption([0, 0], 'mean', 3, 'number'), 'mean', /3 finite numbers/);
    throwsInvalid(() => numberListOption('0,0,0', 'mean', 3, 'number'), 'mean', /3 finite numbers/);
  });

  it('stringListOption: one string or a non-empty list of non-empty strings', () => {
    expect(stringListOption('a', 'input')).toEqual(['a']);
    expect(stringListOption(['a', 'b'], 'input')).toEqual(['a', 'b']);
    expect(stringListOption([' '], 'input')).toEqual([' ']);
    for (const bad of ['', [], [''], ['a', 3], undefined, 7]) throwsInvalid(() => stringListOption(bad, 'input'), 'input', /^option input must be a non-empty string, or a non-empty list of them, got/);
    throwsInvalid(() => stringListOption(['a', ' '], 'inputs', { trimmed: true }), 'inputs', /non-empty/);
    throwsInvalid(() => stringListOption([], 'in', { item: 'path', orElse: 'a stream' }), 'in', /must be a non-empty path, a non-empty list of them, or a stream, got \[\]$/);
  });
});
