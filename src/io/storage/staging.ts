/**
 * Staged names for outputs that are written first and moved into place at a set's commit (the
 * s3:// half of OutputSet's replacement rule; locally OutputSet renames its own temp files). A
 * staged object lives beside its final one as `.NAME.tmp-<pid>-<time>-<n>`, so a listing of the
 * output prefix shows it as a dot-named temporary and a glob for `*.tar`/`*.parquet` skips it.
 * Errors about a staged object name the final one ({@link finalNameOf}).
 */
import { joinLocation, locationBasename, parentLocation } from './uri.js';

/** Staged location → final location, for the outputs of this process not yet moved or discarded. */
const finals = new Map<string, string>();
const runTag = `${process.pid}-${Date.now().toString(36)}`;
let counter = 0;

/** A fresh staged location beside `final` (recorded, so errors name `final`). */
export function stagingLocation(final: string): string {
  const staged = joinLocation(parentLocation(final), `.${locationBasename(final)}.tmp-${runTag}-${++counter}`);
  finals.set(staged, final);
  return staged;
}

/** The final location of a staged one (any other location as it is). */
export function finalNameOf(location: string): string {
  return finals.get(location) ?? location;
}

/** Forgets a staged location once it was moved into place or discarded. */
export function forgetStaging(location: string): void {
  finals.delete(location);
}
