/**
 * The data that flows between stages. Hot stages pass columnar micro-batches (keys plus one
 * Float32Array of N×D); per-sample stages before `embed` pass one object per sample.
 *
 * Invariant ("nothing is lost"): every sample that enters a pipeline leaves the sink exactly once,
 * as `keep`, `drop`, or `drop` with an `error:*` reason. A stage that cannot process a sample marks
 * it with a {@link RowError} and passes it on; it never swallows it.
 */

/**
 * Queue depth (per side) of the stages that pass {@link EmbeddingBatch}es. Object-mode streams
 * default to 16 objects; a batch is thousands of rows (8192 × 512 floats = 16 MB), so the default
 * would let hundreds of MB wait in queues. Two batches keep every stage busy.
 */
export const BATCH_HIGH_WATER_MARK = 2;

/** Reasons a sample can be dropped or kept, as written in the manifest's `reason` column. */
export type DecisionReason =
  | 'dbp' // decided by density-based pruning (kept or dropped by quota)
  | 'duplicate' // SemDeDup: too similar to an earlier kept sample
  | `filter:${string}` // dropped by a user-defined stage
  | `error:${string}`; // could not be processed: error:download, error:untar, error:decode, error:embedding, ...

/** A row's decision: `keep` or `drop` (errors are drops with an `error:*` reason). */
export type Decision = 'keep' | 'drop';

/** A per-sample failure. `reason` is the manifest reason (`error:decode`), `code` a stable error code. */
export interface RowError {
  reason: `error:${string}` | `filter:${string}`;
  message: string;
  code?: string;
}

/** Identity and text of one sample, known from the input before any heavy work. */
export interface SampleRef {
  key: string;
  shard?: string;
  url?: string;
  caption?: string;
  uid?: string;
}

/** A copy of `s`'s identity (key, and shard, url, caption, uid where set), for the next stage's sample. */
export function sampleRef(s: SampleRef): SampleRef {
  const r: SampleRef = { key: s.key };
  if (s.shard !== undefined) r.shard = s.shard;
  if (s.url !== undefined) r.url = s.url;
  if (s.caption !== undefined) r.caption = s.caption;
  if (s.uid !== undefined) r.uid = s.uid;
  return r;
}

/** One sample as it comes out of `untar` (or the download stage): raw image bytes and sidecars. */
export interface ImageSample extends SampleRef {
  image?: Buffer;
  /** File extension of the image member, lower-case, without dot (jpg, png, webp, gif, tiff, svg, avif, …: `IMAGE_EXTENSIONS`). */
  imageExt?: string;
  /** Parsed `KEY.json` sidecar, when present. */
  json?: Record<string, unknown>;
  error?: RowError;
}

/** One decoded sample: the model's input tensor (C×H×W float32, normalised). */
export interface DecodedSample extends SampleRef {
  pixels?: Float32Array;
  /** Optional small JPEG thumbnail for the report's reservoir. */
  thumbnail?: Buffer;
  error?: RowError;
}

/**
 * A columnar micro-batch of embedded samples. `embeddings` holds `rows.length × dim` floats,
 * row-major; the content of a row with an error is unspecified (zeros) and must be ignored.
 */
export interface EmbeddingBatch {
  rows: SampleRef[];
  dim: number;
  embeddings: Float32Array;
  /** Sparse per-row errors; `undefined` (or missing array) means the row is fine. */
  errors?: (RowError | undefined)[];
  /**
   * Set by `normalize`: every row without an error is finite, non-zero and of unit length (within
   * its tolerance), so `assign` skips its own screen of the rows.
   */
  unit?: boolean;
  /** Set by `assign`: nearest centroid per row, -1 for error rows. */
  cluster?: Int32Array;
  /** Set by `assign`: cosine distance 1 − ⟨x, c⟩ to that centroid, NaN for error rows. */
  distance?: Float32Array;
  /** Set by `dedup`: the key of the earlier kept sample this row duplicates. */
  duplicateOf?: (string | undefined)[];
  /**
   * Metadata columns carried for filter stages (aligned with rows), e.g. DataComp's `text`,
   * `original_width`, `original_height`, `clip_score`. Set by the source or a column stage.
   */
  fields?: BatchFields;
  /** Thumbnails carried through for the report (aligned with rows). */
  thumbnails?: (Buffer | undefined)[];
}

const NO_VECTORS = new Float32Array(0);

/**
 * Takes a batch's vectors off it (the batch goes on with empty `embeddings`) and returns them: for
 * stages past which nothing reads the vectors, to hand them back to a buffer pool.
 */
export function takeVectors(batch: EmbeddingBatch): Float32Array {
  const vectors = batch.embeddings;
  batch.embeddings = NO_VECTORS;
  return vectors;
}

/** Columnar per-row metadata of a batch (see {@link EmbeddingBatch.fields}). */
export interface BatchFields {
  text?: readonly (string | null)[];
  original_width?: Float64Array;
  original_height?: Float64Array;
  /** The CLIP score the score filter reads (a column, or computed). NaN when missing. */
  clip_score?: Float64Array;
}

/** One manifest row: what the sink writes for every sample, exactly once. */
export interface ManifestRow {
  key: string;
  shard: string | null;
  url: string | null;
  caption: string | null;
  uid?: string | null;
  decision: Decision;
  reason: DecisionReason;
  /** Assigned cluster, -1 when the sample never reached `assign`. */
  cluster: number;
  /** Cosine distance to the cluster centroid, null when unknown. */
  distance: number | null;
  duplicate_of: string | null;
  /** Error message for `error:*` rows, else null. */
  error: string | null;
}

/** img2dataset's per-sample status. */
export type DownloadStatus = 'success' | 'failed_to_download' | 'failed_to_resize';

/**
 * img2dataset's status of a manifest row from its reason: `failed_to_resize` for `error:decode`,
 * `failed_to_download` for any other `error:*`, else `success` (kept, dropped by DBP, duplicate,
 * or filtered by a user stage — the download itself succeeded).
 */
export function statusOfReason(reason: string): DownloadStatus {
  if (reason === 'error:decode') return 'failed_to_resize';
  if (reason.startsWith('error:')) return 'failed_to_download';
  return 'success';
}

/** Builds a decided sample's manifest row (`dbp` keep/drop, or a `duplicate` drop). */
export function decisionRow(
  ref: SampleRef,
  decision: Decision,
  reason: 'dbp' | 'duplicate',
  cluster: number,
  distance: number,
  duplicateOf: string | null = null,
): ManifestRow {
  return {
    key: ref.key,
    shard: ref.shard ?? null,
    url: ref.url ?? null,
    caption: ref.caption ?? null,
    uid: ref.uid ?? null,
    decision,
    reason,
    cluster,
    distance,
    duplicate_of: duplicateOf,
    error: null,
  };
}

/** Builds the manifest row for a sample that failed (or was filtered) before it could be decided. */
export function errorRow(ref: SampleRef, err: RowError): ManifestRow {
  return { ...decisionRow(ref, 'drop', 'dbp', -1, 0), reason: err.reason, distance: null, error: err.message };
}
