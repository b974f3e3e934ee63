/**
 * dbprune — Density-Based Pruning (Abbas et al., ICLR 2024) of image–text datasets as a chain of
 * backpressured Node stream stages.
 *
 * Entry points: `dbprune` (everything below), `dbprune/stages`, `dbprune/core`, `dbprune/io`,
 * `dbprune/pipelines`.
 */
export * from './core/index.js';
export * from './kernels/index.js';
export * from './stages/index.js';
export * from './io/index.js';
export * from './net/index.js';
export * from './report/index.js';
export * from './pipelines.js';
