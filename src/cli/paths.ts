/** Locations of the bundled defaults (data-samples/), from the package root, wherever the CLI runs from. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'dbprune') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('dbprune: cannot find the package root (package.json named dbprune)');
    dir = up;
  }
}

export const packageRoot = findPackageRoot();
export const samplesDir = join(packageRoot, 'data-samples');

/**
 * The default of `dbprune run` with no flags: ~1,000 real openclipart drawings (22 categories), the
 * real MobileNetV2 encoder converted from nsfwjs, and centroids fitted on them
 * (scripts/make-openclipart.ts).
 */
export const bundled = {
  shards: join(samplesDir, 'openclipart', 'shards'),
  model: join(samplesDir, 'openclipart', 'model'),
  centroids: join(samplesDir, 'openclipart', 'centroids', 'centroids.npy'),
  calibration: join(samplesDir, 'openclipart', 'centroids'),
};

/**
 * The synthetic sample (1,200 generated images of 12 concepts, a tiny 64-d encoder, its centroids):
 * fast, for tests; `ingest`'s defaults, and `run`'s `--model`/`--centroids` when an input is given.
 */
export const synthetic = {
  shards: join(samplesDir, 'shards'),
  model: join(samplesDir, 'model'),
  centroids: join(samplesDir, 'centroids', 'centroids.npy'),
  calibration: join(samplesDir, 'centroids'),
};

/** Default keep ratio of `run` and `ingest` when --keep is not given. */
export const DEFAULT_RUN_KEEP = 0.3;
