/**
 * Object-storage flags, accepted by every command (before or after its name): they override the
 * AWS SDK's environment (`AWS_ENDPOINT_URL`, `AWS_S3_FORCE_PATH_STYLE`) for s3:// locations.
 * Only the settings module is loaded here; the SDK loads on the first s3:// location.
 */
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { configureS3 } from '../io/storage/s3-config.js';
import { isS3Uri } from '../io/storage/uri.js';

interface StorageFlags {
  s3Endpoint?: string;
  s3PathStyle?: boolean;
}

export function addStorageOptions(program: Command): Command {
  return program
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// paths (MinIO, R2, Ceph; default: AWS_ENDPOINT_URL, else AWS)')
    .option('--s3-path-style', 'path-style S3 addressing (endpoint/bucket/key), needed for IP-address endpoints (default: AWS_S3_FORCE_PATH_STYLE)')
    .configureHelp({ showGlobalOptions: true })
    .hook('preAction', () => {
      const o = program.opts<StorageFlags>();
      configureS3({ endpoint: o.s3Endpoint, forcePathStyle: o.s3PathStyle ? true : undefined });
    });
}

/** A parser for a flag that must name a local folder (UsageError, exit 2, for an s3:// URI). */
export function parseLocalDir(flag: string, why: string) {
  return (value: string): string => {
    if (isS3Uri(value)) throw new UsageError(`${flag} must be a local folder (${why}), got '${value}'`, { option: flag });
    return value;
  };
}
