/**
 * Storage locations: a local path or an `s3://bucket/key` URI. Pure string helpers (no I/O), so the
 * CLI and the readers can join and split locations without caring which backend holds them.
 */
import { basename, dirname, join } from 'node:path';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';

/** True for `s3://…` (case-insensitive scheme). */
export function isS3Uri(s: string): boolean {
  return /^s3:\/\//i.test(s);
}

/** A parsed `s3://bucket/key` (key may be empty: the bucket root). */
export interface S3Location {
  bucket: string;
  key: string;
}

/**
 * Splits `s3://bucket/key/parts` into bucket and key.
 * @throws ERR_DBPRUNE_INVALID_OPTION (context.file) when the bucket name is missing.
 */
export function parseS3Uri(uri: string): S3Location {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket.length === 0) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `${uri}: an s3:// URI needs a bucket (s3://bucket/key)`, { file: uri });
  }
  return { bucket, key };
}

/** `s3://bucket/key` from its parts. */
export function formatS3Uri(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

/** Joins a location with relative parts: `path.join` for local paths, `/`-joined for s3:// URIs. */
export function joinLocation(base: string, ...parts: string[]): string {
  if (!isS3Uri(base)) return join(base, ...parts);
  let out = base.replace(/\/+$/, '');
  for (const p of parts) {
    const t = p.replace(/^\/+|\/+$/g, '');
    if (t.length > 0) out += `/${t}`;
  }
  return out;
}

/** The parent location (`s3://b/a/c.npy` → `s3://b/a`). */
export function parentLocation(loc: string): string {
  if (!isS3Uri(loc)) return dirname(loc);
  const trimmed = loc.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i < 's3://'.length ? trimmed : trimmed.slice(0, i);
}

/** The last path segment (`s3://b/a/c.npy` → `c.npy`). */
export function locationBasename(loc: string): string {
  if (!isS3Uri(loc)) return basename(loc);
  const trimmed = loc.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}
