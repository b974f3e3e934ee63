/** dbprune/pipelines — ready-made pipelines composed from the public stages. */
export * from '../pipelines/datacomp-filters.js';
export * from '../pipelines/decision-tail.js';
export * from '../pipelines/embeddings-to-manifest.js';
export * from '../pipelines/exact-prune.js';
export * from '../pipelines/fit-images.js';
export * from '../pipelines/images-to-embeddings.js';
export * from '../pipelines/ingest/index.js';
export * from '../pipelines/ingest/listener.js';
export * from '../pipelines/ingest/state-store.js';
export { fsyncDir, fsyncFile } from '../pipelines/ingest/durable.js';
export * from '../pipelines/shards-to-embeddings.js';
export * from '../pipelines/shards-to-manifest.js';
export * from '../pipelines/urls-to-manifest.js';
export { fit, type FitOptions, type FitResult } from '../pipelines/fit.js';
