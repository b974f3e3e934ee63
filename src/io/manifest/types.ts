/** The manifest's vocabulary: its formats, its columns in order, a row as read back, the writer interface. */
import type { DownloadStatus, ManifestRow } from '../../core/sample.js';

/** Manifest file formats: the one list every option, flag and check uses. */
export const MANIFEST_FORMATS = ['parquet', 'arrow', 'jsonl'] as const;

/** A manifest file format: one of {@link MANIFEST_FORMATS}. */
export type ManifestFormat = (typeof MANIFEST_FORMATS)[number];

/** A manifest row as read back: the row plus its img2dataset `status` column. */
export type ManifestRecord = ManifestRow & { status: DownloadStatus };

/** A sink for manifest rows. `write` resolves when the rows are buffered or flushed (backpressure). */
export interface ManifestWriter {
  write(rows: readonly ManifestRow[]): Promise<void>;
  /** Flushes, finalises the file and closes it (idempotent). Resolves with the rows written. */
  close(): Promise<{ rows: number }>;
  /** Rows accepted so far. */
  readonly rows: number;
}

/**
 * Row group (Parquet) / record batch (Arrow) of the manifests the commands write (`prune`, `run
 * --out`, the cluster's assembly): 32,768 rows keeps the writer's buffer small (peak RSS; issue 16)
 * while readers still get large row groups. One value, so that every command writes the same layout.
 */
export const OUTPUT_ROW_GROUP_ROWS = 32_768;

/** Options of {@link createManifestWriter}: rows per record batch / row group (default 65536; 1 … 2^20). */
export interface ManifestWriterOptions {
  /** Rows buffered before a record batch / row group is flushed. Default 65536; 1 … 2^20. */
  rowGroupRows?: number;
  /**
   * Parquet only: encode on a worker thread (the main thread keeps building the columns), for
   * callers whose main thread is the bottleneck. Same bytes. Default false. The writer must then be
   * closed (`close()`) on every path, or the worker keeps the process alive.
   */
  encodeOnWorker?: boolean;
}

/** Column order of every manifest format. */
export const MANIFEST_COLUMNS = [
  'key',
  'shard',
  'url',
  'caption',
  'uid',
  'decision',
  'reason',
  'cluster',
  'distance',
  'duplicate_of',
  'error',
  'status',
] as const;

/** Picks the manifest format from a file extension (.parquet, .arrow/.feather/.ipc, .jsonl/.ndjson/.json). */
export function manifestFormatFromPath(path: string): ManifestFormat | undefined {
  const p = path.toLowerCase();
  if (p.endsWith('.parquet')) return 'parquet';
  if (p.endsWith('.arrow') || p.endsWith('.feather') || p.endsWith('.ipc') || p.endsWith('.arrows')) return 'arrow';
  if (p.endsWith('.jsonl') || p.endsWith('.ndjson') || p.endsWith('.json')) return 'jsonl';
  return undefined;
}
