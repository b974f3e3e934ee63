/**
 * dbprune — Density-Based Pruning (Abbas et al., ICLR 2024) of image–text datasets as a chain of
 * backpressured Node stream stages.
 *
 * The package root exports what a user composes: the stages, the ready-made pipelines, the core math
 * a user calls, the formats a user reads and writes, the errors, and the types of all of those. The
 * subpaths `dbprune/stages`, `dbprune/core`, `dbprune/io` and `dbprune/pipelines` export a little more
 * (constants and helpers of each folder). Every entry point names what it exports; see the README,
 * "Public API".
 *
 * @module dbprune
 */

// Stages: each factory returns a Node objectMode stream (src/stages).
export { assign, type AssignMode, type AssignOptions } from './stages/assign.js';
export { decide, type DecideOptions } from './stages/decide.js';
export { decode, type DecodeOptions } from './stages/decode.js';
export { dedup, type DedupOptions } from './stages/dedup.js';
export { download, type DownloadEvent, type DownloadOptions } from './stages/download.js';
export { embed, type EmbedOptions } from './stages/embed.js';
export { fetchShard, shardsToSamples, type ShardsToSamplesOptions } from './stages/fetch-shard.js';
export { generatorStage, type GeneratorStageOptions } from './stages/generator-stage.js';
export { keyGuard, type KeyGuardOptions } from './stages/key-guard.js';
export { manifestSink, type ManifestSink, type ManifestSinkOptions } from './stages/manifest-sink.js';
export { normalize, type NormalizeOptions } from './stages/normalize.js';
export { shardSource, type ShardRef, type ShardSourceOptions } from './stages/shard-source.js';
export { tap } from './stages/tap.js';
export { untar, type UntarOptions } from './stages/untar.js';
export { basicFilter, type BasicFilterOptions } from './stages/basic-filter.js';
export { clipScoreFilter, type ClipScoreFilterOptions } from './stages/clip-score-filter.js';
export { clipScore, type ClipScoreOptions } from './stages/clip-score.js';
export { dataCompFields, type DataCompFieldsOptions } from './stages/datacomp-fields.js';

// Ready-made pipelines (pipelines/).
export { pruneExact, type ExactPruneOptions, type ExactPruneResult } from '../pipelines/exact-prune.js';
export { shardsToManifest, type ShardsToManifestOptions } from '../pipelines/shards-to-manifest.js';
export { urlsToManifest, type UrlsToManifestOptions } from '../pipelines/urls-to-manifest.js';
export { embeddingsToManifest, type EmbeddingsToManifestOptions } from '../pipelines/embeddings-to-manifest.js';
export {
  imagesToEmbeddings, type ImagesToEmbeddingsOptions, type ImagesToEmbeddingsResult,
} from '../pipelines/images-to-embeddings.js';
export {
  shardsToEmbeddings, type ShardsToEmbeddingsOptions, type ShardsToEmbeddingsResult,
} from '../pipelines/shards-to-embeddings.js';
export { fit, type FitOptions, type FitResult } from '../pipelines/fit.js';
export { fitFromImages, type FitFromImagesOptions, type FitFromImagesResult } from '../pipelines/fit-images.js';
export { ingest, type IngestOptions, type IngestResult } from '../pipelines/ingest/index.js';
export {
  openDecisionTail, type DecisionTail, type DecisionTailOptions, type StreamingResult,
} from '../pipelines/decision-tail.js';
export {
  exactDataCompFilters, type DataCompFilterOptions, type DataCompFilterResult,
} from '../pipelines/datacomp-filters.js';

// Core math (src/core: pure, no native addon) and the ORT-backed kernels (src/kernels).
export {
  type DecodedSample, type Decision, type DecisionReason, type EmbeddingBatch, type ImageSample, type ManifestRow,
  type RowError, type SampleRef,
} from './core/sample.js';
export {
  StreamingDbp, type StreamingCalibration, type StreamingDbpOptions, type StreamingDbpStats,
} from './core/streaming-dbp.js';
export { planDbp, type DbpParams, type DbpPlan } from './core/dbp.js';
export { solveQuotas, type QuotaInput, type QuotaSolution } from './core/quota.js';
export {
  ClusterAccumulator, clusterComplexity, interClusterDistance, type ClusterStats,
} from './core/complexity.js';
export { ClusterSketches, type ClusterSketchesJSON } from './core/sketch.js';
export { exactSemDedup, type ExactSemDedupOptions, type SemDedupResult } from './core/semdedup.js';
export { sphericalKMeansWith, type KMeansOptions, type KMeansResult } from './core/kmeans.js';
export { createJsNearest, type NearestAssigner } from './core/nearest.js';
export { normalizeRows, normalizedCopy } from './core/vector.js';
export { sphericalKMeans } from './kernels/kmeans.js';
export { NearestCentroid, type NearestOptions } from './kernels/nearest-centroid.js';

// Errors.
export {
  DbpruneError, ErrorCodes, UsageError, isDbpruneError, type ErrorCode, type ErrorContext,
} from './core/errors.js';

// Formats and storage (src/io) and the run report (src/report).
export {
  NpyWriter, readNpyFloat32, readNpyHeader, readNpyRows, writeNpy, type NpyHeader, type NpyRowBatch,
  type ReadNpyRowsOptions,
} from './io/npy.js';
export {
  createKeptKeysWriter, createManifestWriter, readManifest, type KeyListWriter, type ManifestFormat,
  type ManifestRecord, type ManifestWriter, type ManifestWriterOptions,
} from './io/manifest.js';
export {
  urlListBatches, urlListSource, type UrlListFormat, type UrlListOptions, type UrlRef,
} from './io/url-list.js';
export { loadCalibration, saveCalibration, type Calibration } from './io/calibration.js';
export { resolveModel, type ModelLocation, type Preprocessing } from './io/model-config.js';
export { readTarSamples, type TarSamplesOptions } from './io/tar.js';
export { embeddingBatches, type EmbeddingSourceOptions } from './io/embeddings-source.js';
export { createShardWriter, type ShardWriter, type ShardWriterOptions } from './io/shard-writer.js';
export { OutputSet } from './io/output-set.js';
export {
  configureS3, isS3Uri, listLocation, openRead, openWrite, readLocation, statLocation, writeLocation,
  type OpenReadOptions, type S3Settings, type StorageEntry, type StorageStat,
} from './io/storage/index.js';
export { ReportCollector, type ReportCollectorOptions } from './report/report-data.js';
export { writeReport, type WriteReportOptions } from './report/report-html.js';
