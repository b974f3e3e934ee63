/**
 * Every stage settles when the pipeline around it is aborted while it waits for input (a
 * continuous source that never ends): `pipeline` rejects with AbortError instead of hanging.
 */
import { PassThrough, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { assign } from '../../src/stages/assign.js';
import { decide } from '../../src/stages/decide.js';
import { decode } from '../../src/stages/decode.js';
import { dedup } from '../../src/stages/dedup.js';
import { download } from '../../src/stages/download.js';
import { embed } from '../../src/stages/embed.js';
import { shardsToSamples } from '../../src/stages/fetch-shard.js';
import { normalize } from '../../src/stages/normalize.js';
import { untar } from '../../src/stages/untar.js';
import { repoRoot } from '../helpers/fixture.js';
import { join } from 'node:path';

const stages: [string, () => Duplex][] = [
  ['shardsToSamples', () => shardsToSamples()],
  ['untar', () => untar()],
  ['download', () => download({ allowPrivate: true })],
  ['decode', () => decode({ size: 8 })],
  ['embed', () => embed({ model: join(repoRoot, 'data-samples', 'model') })],
  ['normalize', () => normalize()],
  ['assign', () => assign({ centroids: Float32Array.from([1, 0, 0, 1]), k: 2, dim: 2 })],
  ['dedup', () => dedup({ eps: 0.01, dim: 2, k: 2 })],
  ['decide', () => decide({ dbp: { k: 2, params: { keepRatio: 0.5 }, dInter: Float64Array.from([1, 1]) } })],
];

describe.each(stages)('%s in an aborted pipeline', (_name, make) => {
  it('settles with AbortError while waiting for input', async () => {
    const source = new PassThrough({ objectMode: true }); // never ends
    const ac = new AbortController();
    const done = pipeline(source, make(), new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }), { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
  }, 10_000);
});
