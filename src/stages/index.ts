/** dbprune/stages — the stream stages, one a file; each factory returns a Node objectMode stream. */
export {
  ASSIGN_MODES, HNSW_MIN_K, assign, buildCentroidIndex, measureHnswRecall, type AssignMode, type AssignOptions,
  type AssignPath, type AssignStream, type HnswRecall
} from './assign.js';
export { decide, type DecideOptions, type DecideStream } from './decide.js';
export { decode, type DecodeOptions } from './decode.js';
export {
  DEFAULT_BRUTE_FORCE_MAX, dedup, type DedupOptions, type DedupSnapshotInfo, type DedupStats, type DedupStream
} from './dedup.js';
export { USER_AGENT_PRODUCT, download, sniffImage, type DownloadEvent, type DownloadOptions } from './download.js';
export { embed, type EmbedOptions, type EmbedStage } from './embed.js';
export {
  fetchShard, fetchShardBytes, shardsToSamples, type FetchShardBytesOptions, type ShardsToSamplesOptions
} from './fetch-shard.js';
export { STAGE_HIGH_WATER_MARK, generatorStage, type GeneratorStageOptions } from './generator-stage.js';
export { keyGuard, type KeyGuardOptions, type KeyGuardStream } from './key-guard.js';
export { manifestSink, type DecidedRows, type ManifestSink, type ManifestSinkOptions } from './manifest-sink.js';
export { normalize, type NormalizeOptions, type NormalizeStream } from './normalize.js';
export { shardSource, type ShardRef, type ShardSourceOptions } from './shard-source.js';
export { tap } from './tap.js';
export { untar, type UntarOptions } from './untar.js';
export {
  basicFilter, loadLanguageDetector, type BasicFilterCounts, type BasicFilterOptions, type BasicFilterStream,
  type LanguageDetector
} from './basic-filter.js';
export { clipScoreFilter, type ClipScoreFilterOptions, type ClipScoreFilterStream } from './clip-score-filter.js';
export { clipScore, type ClipScoreOptions } from './clip-score.js';
export { dataCompFields, type DataCompFieldsOptions } from './datacomp-fields.js';
