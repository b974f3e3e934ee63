/**
 * Builds data-samples/centroids/{centroids.npy, calibration.json}: embeds the bundled shards with
 * the bundled tiny model, then runs `dbprune fit` (k = 16, all samples, seed 0) on them.
 * Deterministic. Run after make-samples/make-model: `npx tsx scripts/make-centroids.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fit } from '../pipelines/fit.js';
import { shardsToEmbeddings } from '../pipelines/shards-to-embeddings.js';

const root = join(import.meta.dirname, '..', 'data-samples');
const tmp = mkdtempSync(join(tmpdir(), 'dbprune-centroids-'));
try {
  const e = await shardsToEmbeddings({ inputs: join(root, 'shards'), model: join(root, 'model'), out: tmp });
  console.error(`embedded ${e.embedded} of ${e.samples} samples (d=${e.dim}, ${e.errors} errors)`);
  const r = await fit({ embeddings: e.files.embeddings, k: 16, sample: 100_000, iters: 50, seed: 0, out: join(root, 'centroids'), log: (l) => console.error(l) });
  console.error(JSON.stringify(r));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
