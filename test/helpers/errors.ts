/**
 * The error a call throws or a promise rejects with, for tests that check more than one of its
 * properties (code and context with toMatchObject, message with toContain) with typed values.
 */
import type { DbpruneError } from '../../src/core/errors.js';

/** What `fn` throws; fails the test when it returns. */
export function thrownBy(fn: () => unknown): DbpruneError {
  try {
    fn();
  } catch (e) {
    return e as DbpruneError;
  }
  throw new Error('expected a throw, got a return');
}

/** What `promise` rejects with; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<DbpruneError> {
  try {
    await promise;
  } catch (e) {
    return e as DbpruneError;
  }
  throw new Error('expected a rejection, got a resolved promise');
}
