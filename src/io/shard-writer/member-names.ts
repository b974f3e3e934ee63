/** Tar member names: safe, unique within a tar, never a path taken from the input. */
import { createHash } from 'node:crypto';

/** A tar member base name from a key: only [A-Za-z0-9_-] (webdataset splits names at the first dot). */
export function safeMemberKey(key: string): string {
  const s = key.replace(/[^A-Za-z0-9_-]/g, '_');
  return s.length > 0 ? s.slice(0, 200) : '_';
}

/**
 * The member base name for a key in one tar: {@link safeMemberKey}, made unique among `used` (the
 * names already in this tar) by a hash suffix of (shard, key) — and a counter if even that is taken.
 */
export function uniqueMemberKey(key: string, shard: string | null | undefined, used: ReadonlySet<string>): string {
  const base = safeMemberKey(key);
  if (!used.has(base)) return base;
  const hashed = `${base}-h${createHash('sha256').update(`${shard ?? ''}\u0000${key}`).digest('hex').slice(0, 16)}`;
  let name = hashed;
  for (let n = 2; used.has(name); n++) name = `${hashed}-${n}`;
  return name;
}
