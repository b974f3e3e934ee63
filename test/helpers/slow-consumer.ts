/**
 * Child-process half of test/stages/close-delimited.test.ts: fetches URLs (argv) with a consumer
 * slower than the server, through `fetchShardBytes` and through the `download` stage, and prints
 * one JSON line of byte counts. Run as a child because the crash it guards against (undici 7's
 * `assert(!this.paused)` from a socket 'end' handler) is uncatchable and kills the process.
 */
import { Readable } from 'node:stream';
import { fetchShardBytes } from '../../src/stages/fetch-shard.js';
import { download } from '../../src/stages/download.js';
import type { ImageSample } from '../../src/core/sample.js';

const [, , shardUrlsArg, imageUrlsArg] = process.argv;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const shardBytes: number[] = [];
for (const url of shardUrlsArg.split(' ').filter(Boolean)) {
  let n = 0;
  for await (const c of fetchShardBytes(url, { retries: 0, allowPrivate: true })) {
    n += c.length;
    await pause(1); // slower than the loopback server: the body is held back by backpressure
  }
  shardBytes.push(n);
}

const images: { key: string; bytes?: number; error?: string }[] = [];
const refs = imageUrlsArg.split(' ').filter(Boolean).map((url, i) => ({ key: String(i), url }));
const dl = download({ allowPrivate: true, retries: 0, concurrency: 4 });
Readable.from(refs, { objectMode: true }).pipe(dl);
for await (const s of dl as AsyncIterable<ImageSample>) {
  images.push({ key: s.key, bytes: s.image?.length, error: s.error?.message });
  await pause(20);
}
process.stdout.write(`${JSON.stringify({ shardBytes, images })}\n`);
