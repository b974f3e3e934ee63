/**
 * The image bytes `--write-shards` needs at the sink, held from before decode until the sample's
 * manifest row is written — a documented side channel beside the stream (decode and embed turn
 * samples into tensors and batches and do not carry the encoded image along).
 *
 * It does not rely on batch shapes: samples are matched to rows by identity (shard, key), with a
 * FIFO per identity so a repeated (shard, key) does not hand the first row the second sample's
 * image. Bounded by the samples in flight. A row with no held sample (the hold stage was not in the
 * pipeline) gets a sample made of the row's own fields.
 */
import type { ImageSample, ManifestRow } from '../src/core/sample.js';
import { tap } from '../src/stages/tap.js';
import type { Duplex } from 'node:stream';

export class HeldImages {
  private readonly held = new Map<string, ImageSample[]>();

  private static keyOf(s: { key: string; shard?: string | null }): string {
    return `${s.shard ?? ''}\u0000${s.key}`;
  }

  /** A pass-through stage that holds every `ImageSample` going by. */
  holdStage(): Duplex {
    return tap((s: ImageSample) => this.hold(s));
  }

  hold(s: ImageSample): void {
    const k = HeldImages.keyOf(s);
    const queue = this.held.get(k);
    if (queue) queue.push(s);
    else this.held.set(k, [s]);
  }

  /** The held sample of `row` (released), or one made of the row's fields. */
  take(row: ManifestRow): ImageSample {
    const k = HeldImages.keyOf(row);
    const queue = this.held.get(k);
    const sample = queue?.shift() ?? { key: row.key, shard: row.shard ?? undefined, url: row.url ?? undefined, caption: row.caption ?? undefined };
    if (queue?.length === 0) this.held.delete(k);
    return sample;
  }
}
