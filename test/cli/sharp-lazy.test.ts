/**
 * sharp (libvips) is loaded only where images are decoded or measured: `run` and `prune` over
 * precomputed embeddings resolve no `sharp` module (importing it costs ~50 ms and ~30 MB of peak
 * RSS, issue 16); the loader itself does (checked with the module-resolution hook).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dbpSmallDir, repoRoot } from '../helpers/fixture.js';
import { cliImports, importsOf } from '../helpers/imports.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbprune-sharp-lazy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const isSharp = (s: string): boolean => s === 'sharp' || s.includes('/sharp/') || s.includes('@img/sharp');

describe('sharp loads lazily', { timeout: 120_000 }, () => {
  it('is not loaded by run or prune over embeddings (with a report), and is by its loader', () => {
    const input = ['--embeddings', join(dbpSmallDir, 'embeddings.npy'), '--keys', join(dbpSmallDir, 'keys.txt'), '--centroids', join(dbpSmallDir, 'centroids.npy'), '--keep', '0.3', '-q'];
    for (const command of ['run', 'prune']) {
      const r = cliImports(join(tmp, `${command}.txt`), [command, ...input, '--out', join(tmp, command)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.specifiers.length).toBeGreaterThan(20);
      expect(r.specifiers.filter(isSharp)).toEqual([]);
    }
    const loader = pathToFileURL(join(repoRoot, 'src', 'io', 'sharp.ts')).href;
    const loaded = importsOf(join(tmp, 'loader.txt'), ['--input-type=module', '-e', `const s = await (await import(${JSON.stringify(loader)})).loadSharp(); if (typeof s !== 'function') process.exit(3);`]);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.specifiers.filter(isSharp).length).toBeGreaterThan(0);
  });
});
