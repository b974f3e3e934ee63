/**
 * The storage interface every reader and writer of dbprune uses, whatever holds the bytes (a local
 * disk or an S3-compatible object store). One implementation per backend (local.ts, s3.ts); the
 * functions in index.ts pick the backend from the location.
 */
import type { Readable, Writable } from 'node:stream';

/** Options of {@link StorageBackend.openRead}. */
export interface OpenReadOptions {
  signal?: AbortSignal;
  /** First byte to read (default 0). */
  start?: number;
  /** One past the last byte to read (default: the end of the object). */
  end?: number;
}

/** What {@link StorageBackend.stat} finds at a location. */
export interface StorageStat {
  /** `directory` for a local folder or an S3 prefix that has objects under `prefix/`. */
  kind: 'file' | 'directory';
  /** Bytes (0 for a directory). */
  size: number;
}

/** One object found by {@link StorageBackend.list}. */
export interface StorageEntry {
  /** The full location (`s3://bucket/key` or a local path). */
  location: string;
  size: number;
}

/** Positional reads of one object (ranged GETs on S3, `pread` locally). */
export interface RandomAccessReader {
  readonly location: string;
  readonly size: number;
  /** Fills `buf` from `position` (fewer bytes at the end of the object); resolves with bytes read. */
  read(buf: Uint8Array, position: number, signal?: AbortSignal): Promise<number>;
  close(): Promise<void>;
}

/**
 * An output being written. Write to `stream` (and end it); the object appears under its final
 * name only at `commit()` (locally: temp file renamed into place; on S3: the multipart upload is
 * completed, or a single PUT made, at commit). `abort()` removes every trace (temp file, or the
 * multipart upload and its parts). Both are idempotent; after one, the other is a no-op.
 */
export interface OutputObject {
  readonly location: string;
  readonly stream: Writable;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface StorageBackend {
  openRead(location: string, opts?: OpenReadOptions): Promise<Readable>;
  openRandomAccess(location: string, signal?: AbortSignal): Promise<RandomAccessReader>;
  /** `undefined` when nothing is there. */
  stat(location: string, signal?: AbortSignal): Promise<StorageStat | undefined>;
  /** Every object under `prefix` (recursively), in key order; pages through listings. */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<StorageEntry>;
  openWrite(location: string): Promise<OutputObject>;
  /** Deletes a file or object (no error when it is not there). */
  remove(location: string): Promise<void>;
  /** Moves a complete file/object to `to` (same backend), replacing what is there: a rename, or an S3 server-side copy + delete. */
  move(from: string, to: string): Promise<void>;
}
