/**
 * Errors with a stable `code` (like Node's `ERR_*` and undici's `UND_ERR_*`) and the context that
 * locates them (file, shard, key, url, row). Callers and tests match on `code`, never on message text.
 */

/** Every code dbprune throws. Add new ones here so the set stays greppable and documented. */
export const ErrorCodes = {
  /** A CLI flag or option value is invalid (exit code 2). */
  USAGE: 'ERR_DBPRUNE_USAGE',
  /** An option passed to a factory/function failed validation at construction. */
  INVALID_OPTION: 'ERR_DBPRUNE_INVALID_OPTION',
  /** Embedding and centroid (or model) dimensions disagree. */
  DIM_MISMATCH: 'ERR_DBPRUNE_DIM_MISMATCH',
  /** Metadata/keys row count differs from the embedding row count. */
  ROW_COUNT_MISMATCH: 'ERR_DBPRUNE_ROW_COUNT_MISMATCH',
  /** A .npy file is malformed (bad magic, header, dtype, order). */
  NPY_FORMAT: 'ERR_DBPRUNE_NPY_FORMAT',
  /** A .npy file ends before the rows its header promises. */
  NPY_TRUNCATED: 'ERR_DBPRUNE_NPY_TRUNCATED',
  /** A parquet/csv/jsonl input could not be read or lacks a required column. */
  INPUT_FORMAT: 'ERR_DBPRUNE_INPUT_FORMAT',
  /** Input file or glob matched nothing / does not exist. */
  INPUT_NOT_FOUND: 'ERR_DBPRUNE_INPUT_NOT_FOUND',
  /** Calibration directory is missing, corrupt or does not match the centroids. */
  CALIBRATION: 'ERR_DBPRUNE_CALIBRATION',
  /** Model loading / preprocessing config problems. */
  MODEL: 'ERR_DBPRUNE_MODEL',
  /** The run was aborted through its AbortSignal. */
  ABORTED: 'ERR_DBPRUNE_ABORTED',
  /** An output file or folder could not be written: disk full (ENOSPC), a short write, `--out`
   *  naming a file (EEXIST/ENOTDIR), no permission, a closed stdout (EPIPE). context.file names it;
   *  the previous outputs are left as they were (see src/io/output-set.ts). */
  OUTPUT: 'ERR_DBPRUNE_OUTPUT',
  /** An invariant broke (rows in != rows out, ...): a bug, never user error. */
  INTERNAL: 'ERR_DBPRUNE_INTERNAL',
  /** A shard or image could not be fetched (HTTP status, reset, timeout, size cap, missing file). */
  DOWNLOAD: 'ERR_DBPRUNE_DOWNLOAD',
  /** A tar shard is malformed or truncated, or a member is over its size cap. */
  UNTAR: 'ERR_DBPRUNE_UNTAR',
  /** An image could not be decoded (corrupt, unsupported, or over the pixel limit). */
  DECODE: 'ERR_DBPRUNE_DECODE',
  /** The execution provider asked for (`--device`, embed's `device`) is not available in this
   *  onnxruntime-node install; the message says how to install its binaries. */
  DEVICE: 'ERR_DBPRUNE_DEVICE',
  /** A model produced an unusable embedding (NaN or zero norm) for a sample. */
  EMBEDDING: 'ERR_DBPRUNE_EMBEDDING',
  /** A URL (or a redirect target) is not http(s), or resolves to a loopback/private/link-local/
   *  multicast/reserved address, and private targets are not allowed (`error:ssrf`). */
  SSRF: 'ERR_DBPRUNE_SSRF',
  /** The server's `X-Robots-Tag` forbids this use of the image (noai, noimageai, ...) (`error:robots`). */
  ROBOTS: 'ERR_DBPRUNE_ROBOTS',
  /** An ingest state directory is corrupt or half-written (bad checksum, truncated JSON, broken
   *  journal), or belongs to another configuration; context names the file and the reason. */
  STATE: 'ERR_DBPRUNE_STATE',
  /** A (shard, key) occurs more than once in one run (`error:duplicate-key`); context names both. */
  DUPLICATE_KEY: 'ERR_DBPRUNE_DUPLICATE_KEY',
  /** The Redis server of `--cluster redis://…` cannot be reached (or refuses the connection). */
  CLUSTER_UNREACHABLE: 'ERR_DBPRUNE_CLUSTER_UNREACHABLE',
  /** A distributed job failed for good (context: job id, phase, part, worker message). */
  CLUSTER_JOB: 'ERR_DBPRUNE_CLUSTER_JOB',
  /** The shared work dir of a distributed run is unreadable, unwritable, or holds files of
   *  another run / a worker sees different inputs than the submitter. */
  CLUSTER_WORK_DIR: 'ERR_DBPRUNE_CLUSTER_WORK_DIR',
  /** An object-store request failed after the SDK's retries (server errors, a missing bucket on
   *  write, an upload that could not complete); context.file names the s3:// URI. */
  STORAGE: 'ERR_DBPRUNE_STORAGE',
  /** The object store refused the credentials or the access (403, bad key or signature, no
   *  credentials found); context.file names the s3:// URI. */
  STORAGE_AUTH: 'ERR_DBPRUNE_STORAGE_AUTH',
} as const;

/** A stable `ERR_DBPRUNE_*` code, one of the values of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Where an error happened: file, shard, key, url, row, and any other named value (option, worker, …). */
export interface ErrorContext {
  file?: string;
  shard?: string;
  key?: string;
  url?: string;
  row?: number;
  [k: string]: unknown;
}

/** The error every dbprune failure throws: a stable `code` (`ERR_DBPRUNE_*`, see {@link ErrorCodes}) and a `context`. Match on `code`, not on the message. */
export class DbpruneError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DbpruneError';
    this.code = code;
    this.context = context;
  }
}

/** A user error: bad flags or option values. The CLI exits with 2 and a one-line message. */
export class UsageError extends DbpruneError {
  constructor(message: string, context: ErrorContext = {}) {
    super(ErrorCodes.USAGE, message, context);
    this.name = 'UsageError';
  }
}

/** True when `e` is a {@link DbpruneError} (then `e.code` is one of {@link ErrorCodes}). */
export function isDbpruneError(e: unknown): e is DbpruneError {
  return e instanceof DbpruneError;
}

/** Throws ERR_DBPRUNE_INVALID_OPTION unless `ok`. Used by option validators at construction time. */
export function checkOption(ok: boolean, name: string, expected: string, got: unknown): void {
  if (!ok) {
    throw new DbpruneError(
      ErrorCodes.INVALID_OPTION,
      `option ${name} must be ${expected}, got ${JSON.stringify(got)}`,
      { option: name },
    );
  }
}

/** Throws ERR_DBPRUNE_ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new DbpruneError(ErrorCodes.ABORTED, 'aborted', {}, { cause: signal.reason });
  }
}
