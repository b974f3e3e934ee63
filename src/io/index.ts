/** dbprune/io — formats: npy, tar, URL lists, metadata, manifests, calibration, stats, shard writer; storage (local and s3://). */
export {
  CALIBRATION_FILE, CALIBRATION_VERSION, CENTROIDS_FILE, loadCalibration, parseCalibration, saveCalibration,
  serializeCalibration, sha256File, type Calibration
} from './calibration.js';
export {
  countEmbeddingRows, embeddingBatches, partRefBatches, planEmbeddingSource, sampleRefBatches,
  type EmbeddingPart, type EmbeddingSourceInput, type EmbeddingSourceOptions, type EmbeddingSourcePlan
} from './embeddings-source.js';
export { expandBraces, expandInputs, isUrl, naturalCompare } from './glob.js';
export { hashFile, sha256Hex } from './hash.js';
export { BatchTaker, READ_BATCH_ROWS, countKeys, readKeyBatches, type ReadKeysOptions } from './keys.js';
export {
  MANIFEST_COLUMNS, MANIFEST_FORMATS, MANIFEST_SCHEMA, createKeptKeysWriter, createManifestWriter,
  createUidSubsetWriter, isDataCompUid, manifestFormatFromPath, readManifest, writeManifestStream,
  type KeyListWriter, type ManifestFormat, type ManifestRecord, type ManifestWriter, type ManifestWriterOptions
} from './manifest.js';
export {
  METADATA_COLUMNS, indexKey, metadataRowCount, openMetadata, readMetadataBatches, type MetadataColumns,
  type MetadataFile, type ReadMetadataOptions
} from './metadata.js';
export {
  CLIP_MEAN, CLIP_STD, DEFAULT_PREPROCESSING, IMAGE_SIZE, RESIZE_KERNELS, RESIZE_MODES, preprocessingFromConfig,
  resolveModel, type ModelLocation, type Preprocessing, type ResizeKernel, type ResizeMode
} from './model-config.js';
export {
  Float32ArrayPool, NPY_DTYPES, NpyWriter, npyElementsToFloat32, readNpyFloat32, readNpyHeader, readNpyRows,
  writeNpy, type NpyDtype, type NpyHeader, type NpyRowBatch, type NpyWritable, type ReadNpyRowsOptions
} from './npy.js';
export { OutputSet, prepareOutputDir, writeFileAtomic } from './output-set.js';
export { openParquetBuffer } from './parquet-source.js';
export {
  createShardWriter, safeMemberKey, shardFilesIn, shardWriterSink, uniqueMemberKey, type ShardItem,
  type ShardSummary, type ShardWriter, type ShardWriterOptions
} from './shard-writer.js';
export { RUN_OUTPUT_FILES, statsJson, writeJsonAtomic, type ClusterStatsColumns, type RunStats } from './stats.js';
export {
  configureS3, ensureOutputDir, formatS3Uri, isS3Uri, joinLocation, listLocation, locationBasename,
  locationExists, openRandomAccess, openRead, openWrite, parentLocation, parseS3Uri, readLocation,
  removeLocation, resolveS3Settings, statLocation, writeLocation, type OpenReadOptions, type OutputObject,
  type RandomAccessReader, type ResolvedS3Settings, type S3Location, type S3Settings, type StorageBackend,
  type StorageEntry, type StorageStat
} from './storage/index.js';
export {
  DEFAULT_MAX_MEMBER_BYTES, IMAGE_EXTENSIONS, readTarSamples, shardBasename, type TarSamplesOptions,
  type TarWarning
} from './tar.js';
export {
  RESERVED_COLUMNS, URL_LIST_FORMATS, img2datasetKey, shardName, urlListBatches, urlListFormatFromPath,
  urlListSource, type JsonValue, type UrlListFormat, type UrlListOptions, type UrlRef
} from './url-list.js';
export { NpzFile, type NpzMember } from './npz.js';
export {
  DATACOMP_COLUMNS, DATACOMP_EMBEDDING_KEYS, dataCompColumnBatches, resolveDataCompShards, type ClipScoreSource,
  type DataCompColumns, type DataCompEmbeddingKey, type DataCompShard
} from './datacomp.js';
export { loadTextEncoder, type TextEncoder } from './text-encoder.js';
