/** dbprune/io — formats: npy, tar, URL lists, metadata, manifests, calibration, stats, shard writer, report. */
export * from './calibration.js';
export * from './embeddings-source.js';
export * from './glob.js';
export * from './ingest-listener.js';
export * from './keys.js';
export * from './manifest.js';
export * from './metadata.js';
export * from './model-config.js';
export * from './npy.js';
export * from './report-data.js';
export * from './report-html.js';
export * from './shard-writer.js';
export * from './stats.js';
export * from './tar.js';
export * from './url-list.js';
