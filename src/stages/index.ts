/** dbprune/stages — the stream stages, one a file; each factory returns a Node objectMode stream. */
export * from './assign.js';
export * from './decide.js';
export * from './decode.js';
export * from './dedup.js';
export * from './download.js';
export * from './embed.js';
export * from './fetch-shard.js';
export * from './generator-stage.js';
export * from './key-guard.js';
export * from './manifest-sink.js';
export * from './normalize.js';
export * from './shard-source.js';
export * from './tap.js';
export * from './untar.js';
