/**
 * img2dataset's key and shard numbering (`compute_key`), see the module comment of url-list.ts.
 */

/** ⌈log10(n)⌉ as img2dataset computes it (`math.ceil(math.log10(n))`), exact for powers of ten. */
export function oomOf(n: number): number {
  let k = 0;
  let p = 1;
  while (p < n) {
    p *= 10;
    k++;
  }
  return k;
}

/** The shard name: `shardId` zero-padded to `oomShardCount` digits (`00003`). */
export function shardName(shardId: number, oomShardCount = 5): string {
  return String(shardId).padStart(oomShardCount, '0');
}

/**
 * img2dataset's key: `shardId · 10^⌈log10(samplesPerShard)⌉ + index`, zero-padded to
 * `⌈log10(samplesPerShard)⌉ + oomShardCount` digits. Exact for any shard id (string arithmetic).
 */
export function img2datasetKey(shardId: number, index: number, samplesPerShard = 10_000, oomShardCount = 5): string {
  const oom = oomOf(samplesPerShard);
  const low = oom === 0 ? '' : String(index).padStart(oom, '0');
  const raw = shardId === 0 ? String(index) : `${shardId}${low}`;
  return raw.padStart(oom + oomShardCount, '0');
}

/** What {@link Numbering} needs of the options. */
export interface NumberingOptions {
  samplesPerShard: number;
  oomShardCount: number;
  startShardId: number;
}

/** Numbering state shared by all files of one read. */
export class Numbering {
  shardId: number;
  private inShard = 0;
  private started = false;
  constructor(private readonly r: NumberingOptions) {
    this.shardId = r.startShardId;
  }
  /** A new input file starts a new shard (img2dataset shards each file on its own). */
  newFile(): void {
    if (this.started && this.inShard > 0) {
      this.shardId++;
      this.inShard = 0;
    }
  }
  next(): { key: string; shard: string } {
    this.started = true;
    if (this.inShard === this.r.samplesPerShard) {
      this.shardId++;
      this.inShard = 0;
    }
    const key = img2datasetKey(this.shardId, this.inShard, this.r.samplesPerShard, this.r.oomShardCount);
    this.inShard++;
    return { key, shard: shardName(this.shardId, this.r.oomShardCount) };
  }
}

