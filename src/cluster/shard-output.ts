/**
 * `run <shards> --cluster --write-shards DIR`: the kept samples re-packed as webdataset shards by
 * the same writer as a single-machine run (src/io/shard-writer.ts: `NNNNN.tar` + `.parquet` +
 * `_stats.json`, every manifest row in the parquet, kept samples in the tar), in the submitting
 * process, from the manifest rows of each part in part order. A part with kept rows is read again
 * (fetch → untar, the workers' stages and SSRF settings) for their image bytes and sidecars; rows are
 * matched to samples by (shard, key) in order, as the streaming decision tail matches them.
 * The submitter therefore reads every shard that kept a sample once more: the price of one writer
 * numbering the output shards as a single machine does.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { ImageSample, ManifestRow } from '../core/sample.js';
import { createShardWriter, type ShardWriter, type ShardSummary } from '../io/shard-writer.js';
import { shardsToSamples } from '../stages/fetch-shard.js';
import { shardSource } from '../stages/shard-source.js';
import type { PruneRunSpec } from './run-spec.js';

export interface ShardOutputOptions {
  dir: string;
  samplesPerShard?: number;
}

const identity = (s: { key: string; shard?: string | null }): string => `${s.shard ?? ''}\u0000${s.key}`;

/** Feeds a part's rows (with their samples) to the shard writer. */
export class ShardOutput {
  private readonly writer: ShardWriter;

  constructor(
    private readonly spec: PruneRunSpec,
    opts: ShardOutputOptions & { tempPath: (p: string) => string; signal?: AbortSignal },
  ) {
    this.writer = createShardWriter({ dir: opts.dir, samplesPerShard: opts.samplesPerShard, tempPath: opts.tempPath, signal: opts.signal });
  }

  /**
   * The writer of part `p`'s rows (give them in order, batch by batch, then `end()`); the source
   * shard is read, once, from its first kept row on.
   */
  part(p: number, signal?: AbortSignal): { write(rows: readonly ManifestRow[]): Promise<void>; end(): Promise<void> } {
    let samples: AsyncGenerator<ImageSample> | undefined;
    const held = new Map<string, ImageSample[]>();
    return {
      write: async (rows) => {
        for (const row of rows) {
          let sample: ImageSample | undefined;
          if (row.decision === 'keep') {
            samples ??= this.samplesOf(p, signal);
            sample = await this.take(samples, held, identity(row), p);
          }
          await this.writer.write(sample ?? { key: row.key, shard: row.shard ?? undefined, url: row.url ?? undefined, caption: row.caption ?? undefined }, row);
        }
      },
      end: async () => {
        await samples?.return(undefined);
      },
    };
  }

  /** Finishes the last shard; the shards written. */
  async close(): Promise<ShardSummary[]> {
    return (await this.writer.close()).shards;
  }

  private samplesOf(p: number, signal?: AbortSignal): AsyncGenerator<ImageSample> {
    const fetch = this.spec.images?.fetch;
    const stream = shardSource({ inputs: [this.spec.parts[p].input], signal }).pipe(shardsToSamples({ allowPrivate: fetch?.allowPrivate ?? false, allowPrivateHosts: fetch?.allowPrivateHosts ?? [], signal }));
    return (async function* () {
      for await (const s of stream) yield s as ImageSample;
    })();
  }

  /** The next sample with identity `id`, pulling (and holding) samples until it comes. */
  private async take(samples: AsyncGenerator<ImageSample>, held: Map<string, ImageSample[]>, id: string, p: number): Promise<ImageSample> {
    const queue = held.get(id);
    if (queue && queue.length > 0) return queue.shift() as ImageSample;
    for (;;) {
      const next = await samples.next();
      if (next.done) throw new DbpruneError(ErrorCodes.CLUSTER_JOB, `${this.spec.parts[p].input} no longer holds the kept sample ${id.split('\u0000')[1]} (changed since the map job?)`, { shard: this.spec.parts[p].input });
      const s = next.value;
      if (identity(s) === id && !s.error) return s;
      if (s.error) continue;
      const q = held.get(identity(s)) ?? [];
      q.push(s);
      held.set(identity(s), q);
    }
  }
}
