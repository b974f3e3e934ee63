/**
 * Staged names for outputs that are written first and moved into place at a set's commit (the
 * s3:// half of OutputSet's replacement rule; locally OutputSet renames its own temp files). A
 * staged object lives beside its final one as `.NAME.tmp-<pid>-<time>-<n>`, so a listing of the
 * output prefix shows it as a dot-named temporary and a glob for `*.tar`/`*.parquet` skips it.
 * Errors about a staged object name the final one ({@link finalNameOf}).
 */
import { joinLocation, locationBasename, parentLocation } from './uri.js';

/** `.NAME.tmp-<pid>-<ms since epoch, base 36>-<n>`: what {@link stagingLocation} makes. */
const STAGED_NAME = /^\..+\.tmp-\d+-([0-9a-z]+)-\d+$/;

/**
 * Staged objects older than this are taken for the debris of a killed run and deleted by the next
 * run into the same prefix. Generous, since another process (even on another host) may be writing
 * to the same prefix for days; two runs into one prefix at once are a conflict anyway.
 */
export const STALE_STAGING_MS = 7 * 24 * 3600 * 1000;

/** When a staged location was made (ms since epoch), or `undefined` when it is not a staged name. */
export function stagedAt(location: string): number | undefined {
  const m = STAGED_NAME.exec(locationBasename(location));
  return m ? parseInt(m[1], 36) : undefined;
}

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
