/**
 * The commit record of ingest's state store (`STATE/commits/commit-<seq>.json`; protocol:
 * state-store.ts): what a commit names, with sizes and checksums, and the file-name rules.
 */
import type { ErrorCodes } from '../../src/core/errors.js';


export interface FileSum {
  file: string;
  bytes: number;
  sha256: string;
}

/** A commit record (`STATE/commits/commit-<seq>.json`). */
export interface CommitRecord {
  version: 1;
  seq: number;
  /** Commit time, ms since the epoch. */
  time: number;
  /** The segment committed with this record (in OUT), or null when no rows were written since the last commit. */
  segment: (FileSum & { rows: number }) | null;
  /** The state this commit ends on (in STATE/states). */
  state: FileSum;
  /** Extra state files (folder in STATE/states), or null. */
  extra: { dir: string; files: FileSum[] } | null;
  /** SHA-256 of this record's JSON without the `checksum` field. */
  checksum: string;
}

/** A problem found while recovering (an invalid commit record that was skipped). */
export interface StateProblem {
  code: typeof ErrorCodes.STATE;
  file: string;
  reason: string;
}

/** The commit a {@link StateStore} resumed from. */
export interface RecoveredCommit<T> {
  record: CommitRecord;
  /** The parsed state JSON. */
  state: T;
  /** Folder of the extra state files, or null. */
  extraDir: string | null;
}

const SEQ_DIGITS = 12;
export const seqName = (seq: number): string => String(seq).padStart(SEQ_DIGITS, '0');
export const COMMIT_RE = /^commit-(\d{12})\.json$/;
export const PART_RE = /^part-(\d{12})\.[a-z]+$/;
export const STATE_RE = /^(?:state|extra)-(\d{12})(?:\.json)?$/;

/** Canonical JSON of a commit record's body (fixed key order, no checksum). */
export function recordBody(r: Omit<CommitRecord, 'checksum'>): string {
  return JSON.stringify({ version: r.version, seq: r.seq, time: r.time, segment: r.segment, state: r.state, extra: r.extra });
}
