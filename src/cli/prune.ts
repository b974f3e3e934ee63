/** `dbprune prune`: exact DBP over precomputed embeddings, here or on a cluster (`--cluster`). */
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import type { ExactPruneOptions } from '../../pipelines/exact-prune.js';
import { addClusterSubmitOptions, pruneOnCluster } from './cluster.js';
import { NEAREST_BACKENDS } from './choices.js';
import type { CommandContext } from './context.js';
import { dataCompFrom } from './datacomp-options.js';
import { addDecisionFlags, type DecisionFlags } from './decision-flags.js';
import { dbpParamsFrom, parseChoice, parseNumber, refuseFlags, type ClusterSubmitFlags } from './options.js';
import { Progress } from './progress.js';
import { formatSummary } from './summary.js';

/** Values of `prune`'s flags. */
export interface PruneFlags extends DecisionFlags, ClusterSubmitFlags {
  target?: number;
  embeddings?: string[];
  keys?: string;
  metadata?: string[];
  centroids: string;
  out: string;
  backend: NonNullable<ExactPruneOptions['backend']>;
  json?: boolean;
}

/** The flags `prune --cluster` does not take yet (the DataComp inputs and filters, and --target). */
const NOT_ON_CLUSTER = ['datacomp', 'target', 'clipScoreMin', 'clipScoreTop', 'basicFilter', 'basicFilterNoLanguage', 'textModel'] as const satisfies readonly (keyof PruneFlags)[];

export function registerPrune(program: Command, ctx: CommandContext): void {
  const prune = addDecisionFlags(
    program
      .command('prune')
      .description('exact DBP over precomputed embeddings (two passes; reproduces the reference method)')
      .option('--target <n>', 'absolute N_target instead of --keep (kept samples, after filters and SemDeDup)', parseNumber('--target', { min: 1, integer: true }))
      .option('--embeddings <npy...>', '.npy file(s), glob, or a clip-retrieval folder (img_emb/ + metadata/)')
      .option('--keys <txt>', 'keys.txt, one key per embedding row')
      .option('--metadata <parquet...>', 'parquet metadata paired with the .npy files (key/uid/url/caption)')
      .requiredOption('--centroids <npy>', 'k×d centroids (.npy), from `dbprune fit`, faiss or SemDeDup')
      .requiredOption('--out <dir>', 'output folder')
      .option('--backend <b>', `nearest-centroid backend: ${NEAREST_BACKENDS.join(' | ')}`, parseChoice('--backend', NEAREST_BACKENDS), 'auto')
      .option('--json', 'print the stats totals as JSON on stdout instead of the summary'),
  );
  addClusterSubmitOptions(prune).action(async (o: PruneFlags) => {
    if (o.cluster === undefined && (o.workDir !== undefined || o.queue !== 'dbprune')) throw new UsageError('--work-dir and --queue need --cluster', { option: 'work-dir' });
    if (o.cluster !== undefined) await pruneWithCluster(o, o.cluster, ctx);
    else await pruneHere(o, ctx);
  });
}

async function pruneWithCluster(o: PruneFlags, cluster: string, ctx: CommandContext): Promise<void> {
  refuseFlags(o, NOT_ON_CLUSTER, 'is not supported with --cluster yet');
  if (!o.embeddings) throw new UsageError('--cluster needs --embeddings', { option: 'embeddings' });
  await pruneOnCluster({ ...o, cluster, embeddings: o.embeddings }, dbpParamsFrom(o), ctx);
}

async function pruneHere(o: PruneFlags, ctx: CommandContext): Promise<void> {
  const progress = new Progress({ label: 'prune', quiet: o.quiet });
  const { pruneExact } = await import('../../pipelines/exact-prune.js');
  if (o.textModel) throw new UsageError('--text-model scores images: use it with `dbprune run` on shards or --urls', { option: 'text-model' });
  const dc = dataCompFrom(o);
  if (!o.embeddings && !dc.datacomp) throw new UsageError('give --embeddings or --datacomp', { option: 'embeddings' });
  const result = await pruneExact({
    embeddings: o.embeddings,
    keys: o.keys,
    metadata: o.metadata,
    centroids: o.centroids,
    out: o.out,
    ...dbpParamsFrom(o, o.target !== undefined ? 1 : undefined),
    ...(o.target !== undefined ? { keepRatio: o.keep, target: o.target } : {}),
    ...dc,
    format: o.format,
    backend: o.backend,
    dedupEps: o.dedupEps,
    report: o.report,
    signal: ctx.signal,
    onProgress: (p) => progress.update({ samples: p.samples, total: p.total, kept: p.kept, errors: p.errors }),
  });
  progress.clear();
  if (o.json) process.stdout.write(`${JSON.stringify(result.stats.totals)}\n`);
  else process.stdout.write(formatSummary(result.stats, result.files));
}
