/**
 * `dbprune fit`: the flags, and the choice between the two library pipelines — pipelines/fit.ts
 * (from embeddings or DataComp shards) and pipelines/fit-images.ts (from image shards or URL lists).
 */
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import type { CommandContext } from './context.js';
import { addImageFlags, imageOptionsFrom, type ImageFlags } from './embed.js';
import { parseNumber } from './options.js';
import { FIT_LIMITS } from '../../pipelines/fit-limits.js';

/** Values of `fit`'s flags. */
export interface FitFlags extends ImageFlags {
  embeddings?: string[];
  datacomp?: string[];
  embeddingKey: string;
  k: number;
  centroids?: string;
  sample: number;
  iters: number;
  seed: number;
  minibatch?: boolean;
  out: string;
}

export function registerFit(program: Command, ctx: CommandContext): void {
  addImageFlags(
    program
      .command('fit')
      .description('spherical k-means centroids + calibration statistics for streaming mode, from embeddings or straight from images')
      .argument('[shards...]', 'image shards to embed a uniform sample of (with --model), instead of --embeddings')
      .option('--embeddings <npy...>', '.npy file(s), glob, or a clip-retrieval folder')
      .option('--datacomp <dir...>', 'DataComp shards: a folder or globs of NNNNNNNN.parquet (+ .npz beside them)')
      .option('--embedding-key <member>', 'npz member with --datacomp: l14_img | b32_img', 'l14_img')
      .option('-k, --k <k>', 'number of clusters', parseNumber('-k', { ...FIT_LIMITS.k, integer: true }), FIT_LIMITS.k.default)
      .option('--centroids <npy>', 'use these centroids (faiss/SemDeDup .npy) instead of k-means; only calibrate')
      .option('--sample <n>', 'uniform reservoir sample size (rows, or images embedded)', parseNumber('--sample', { ...FIT_LIMITS.sample, integer: true }), FIT_LIMITS.sample.default)
      // ≥ 1 on the command line (as before); the library also takes 0, k-means++ seeds only
      .option('--iters <n>', 'k-means iterations', parseNumber('--iters', { ...FIT_LIMITS.iters, min: 1, integer: true }), FIT_LIMITS.iters.default)
      .option('--seed <n>', 'random seed', parseNumber('--seed', { ...FIT_LIMITS.seed, integer: true }), FIT_LIMITS.seed.default)
      .option('--minibatch', 'mini-batch k-means instead of Lloyd')
      .requiredOption('--out <dir>', 'output folder (or s3:// prefix) for centroids.npy and calibration.json')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(async (shards: string[], o: FitFlags) => {
    const common = {
      k: o.k,
      centroids: o.centroids,
      sample: o.sample,
      iters: o.iters,
      seed: o.seed,
      minibatch: Boolean(o.minibatch),
      out: o.out,
      signal: ctx.signal,
      log: o.quiet ? undefined : (line: string) => void process.stderr.write(`${line}\n`),
    };
    if (o.embeddings || o.datacomp) {
      if (o.embeddings && o.datacomp) throw new UsageError('give one of --embeddings and --datacomp', { option: 'embeddings' });
      if (shards.length > 0 || o.urls) throw new UsageError('give one input: --embeddings, --datacomp, shards or --urls');
      const { fit } = await import('../../pipelines/fit.js');
      process.stdout.write(`${JSON.stringify(await fit({ ...common, embeddings: o.embeddings, datacomp: o.datacomp, embeddingKey: o.embeddingKey }))}\n`);
      return;
    }
    if (shards.length === 0 && !o.urls) throw new UsageError('give --embeddings, or image shards (or --urls) with --model');
    const images = imageOptionsFrom(shards, o);
    const { fitFromImages } = await import('../../pipelines/fit-images.js');
    process.stdout.write(`${JSON.stringify(await fitFromImages({ ...common, ...images }))}\n`);
  });
}
