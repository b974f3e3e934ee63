/** `dbprune run`: the streaming pipelines behind one command. */
import { embeddingsToManifest } from '../../pipelines/embeddings-to-manifest.js';
import { shardsToManifest } from '../../pipelines/shards-to-manifest.js';
import type { DecisionTail, DecisionTailOptions, StreamingResult } from '../../pipelines/decision-tail.js';
import { UsageError } from '../core/errors.js';
import type { SelectionPolicy } from '../core/select.js';
import type { ManifestFormat } from '../io/manifest.js';
import type { CommandContext } from './commands.js';
import { bundled } from './paths.js';
import { Progress } from './progress.js';
import { formatSummary } from './summary.js';

export interface RunFlags {
  embeddings?: string[];
  keys?: string;
  metadata?: string[];
  model: string;
  centroids: string;
  calibration?: string;
  out?: string;
  keep?: number;
  temperature: number;
  numNns: number;
  balance: number;
  which: SelectionPolicy;
  seed: number;
  format: ManifestFormat;
  concurrency: number;
  batchSize: number;
  assign: 'auto' | 'exact' | 'hnsw';
  ef: number;
  report: boolean;
  quiet?: boolean;
}

/** Default keep ratio of `run` when --keep is not given. */
export const DEFAULT_RUN_KEEP = 0.3;

export async function runStreaming(shards: string[], o: RunFlags, ctx: CommandContext): Promise<StreamingResult> {
  const usingDefault = shards.length === 0 && !o.embeddings;
  if (shards.length > 0 && o.embeddings) throw new UsageError('give shards or --embeddings, not both');
  if (o.keys && !o.embeddings) throw new UsageError('--keys needs --embeddings');
  const out = o.out ?? (usingDefault ? 'out' : undefined);
  const progress = new Progress({ label: 'run', quiet: o.quiet });
  const base: DecisionTailOptions = {
    keepRatio: o.keep ?? DEFAULT_RUN_KEEP,
    temperature: o.temperature,
    numNNs: o.numNns,
    balance: o.balance,
    which: o.which,
    seed: o.seed,
    centroids: o.centroids,
    calibration: o.calibration,
    out,
    format: o.format,
    assignMode: o.assign,
    ef: o.ef,
    signal: ctx.signal,
    warn: (line) => {
      progress.clear();
      process.stderr.write(`${line}\n`);
    },
  };
  const onTail = (tail: DecisionTail): void => {
    tail.onRows(() => progress.update({ samples: tail.counters.samples, kept: tail.counters.kept, errors: tail.counters.errors, duplicates: tail.counters.duplicates }));
  };
  let result: StreamingResult;
  if (o.embeddings) {
    result = await embeddingsToManifest({ ...base, embeddings: o.embeddings, keys: o.keys, metadata: o.metadata, onTail });
  } else {
    const inputs = usingDefault ? bundled.shards : shards.length === 1 && shards[0] === '-' ? process.stdin : shards;
    result = await shardsToManifest({ ...base, inputs, model: o.model, fetch: { concurrency: o.concurrency }, embed: { batchSize: o.batchSize }, onTail });
  }
  const t = result.stats.totals;
  progress.done({ samples: t.samples, kept: t.kept, errors: Object.values(t.errors).reduce((a, b) => a + b, 0), duplicates: t.duplicates });
  // The summary goes to stdout only when stdout is not carrying the manifest rows.
  const summary = formatSummary(result.stats, result.files);
  if (out !== undefined) process.stdout.write(summary);
  else if (!o.quiet) process.stderr.write(summary);
  return result;
}
