/** dbprune/pipelines — ready-made pipelines composed from the public stages. */
export {
  BASIC_FILTERS, checkDataCompFilters, exactDataCompFilters, filterRows, targetRatio, type DataCompFilterOptions,
  type DataCompFilterResult, type KeepAndDataCompOptions
} from '../pipelines/datacomp-filters.js';
export {
  encoderStages, openDecisionTail, type DecisionTail, type DecisionTailOptions, type ImageEncoderOptions,
  type RunCounters, type StreamingResult
} from '../pipelines/decision-tail.js';
export {
  DEFAULT_EMBEDDING_BATCH_ROWS, embeddingsToManifest, type EmbeddingsToManifestOptions
} from '../pipelines/embeddings-to-manifest.js';
export { exactStats, pruneExact, type ExactPruneOptions, type ExactPruneResult } from '../pipelines/exact-prune.js';
export { fitFromImages, type FitFromImagesOptions, type FitFromImagesResult } from '../pipelines/fit-images.js';
export {
  decodeEmbedStages, imageSampleStages, imagesToEmbeddings, type ImageInputOptions,
  type ImagesToEmbeddingsOptions, type ImagesToEmbeddingsResult
} from '../pipelines/images-to-embeddings.js';
export {
  ingest, inputKindOf, type IngestCommitInfo, type IngestCounters, type IngestMode, type IngestOptions,
  type IngestPosition, type IngestResult, type IngestState
} from '../pipelines/ingest/index.js';
export {
  startIngestListener, type IngestListener, type IngestListenerOptions, type IngestReply, type IngestSubmission
} from '../pipelines/ingest/listener.js';
export {
  StateStore, type CommitRecord, type FileSum, type InputKind, type JournalEntry, type RecoveredCommit,
  type StateProblem, type StateStoreOptions
} from '../pipelines/ingest/state-store.js';
export {
  shardsToEmbeddings, type ShardsToEmbeddingsOptions, type ShardsToEmbeddingsResult
} from '../pipelines/shards-to-embeddings.js';
export { shardsToManifest, type ShardsToManifestOptions } from '../pipelines/shards-to-manifest.js';
export { urlsToManifest, type UrlsToManifestOptions } from '../pipelines/urls-to-manifest.js';
export { fit, type FitOptions, type FitResult } from '../pipelines/fit.js';
