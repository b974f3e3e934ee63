/**
 * `dbprune/core` is pure math: importing the BUILT `dist/src/core/index.js` in a fresh process
 * resolves no native addon (onnxruntime-node, sharp, hnswlib-node), no onnx-proto, and in fact no
 * module outside src/core at all (every specifier it resolves is relative). Recorded with the
 * module-resolution hook test/helpers/record-imports.mjs. The kernels entry is the positive
 * control: the same hook sees it resolve onnxruntime-node and onnx-proto.
 *
 * Tests the build: `npm ci` / `npm run build` first (as for the CLI tests).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbprune-pure-imports-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NATIVE = /^(onnxruntime-node|onnxruntime-common|sharp|hnswlib-node|onnx-proto)(\/|$)/;

/** Imports the built module `rel` (under dist/) in a child process; returns what it resolved. */
function specifiersResolvedBy(rel: string): string[] {
  const entry = join(repoRoot, 'dist', rel);
  if (!existsSync(entry)) throw new Error(`${entry} missing: run npm run build first`);
  const file = join(tmp, `${rel.replace(/[/.]/g, '_')}.txt`);
  const r = spawnSync(
    process.execPath,
    ['--import', join(repoRoot, 'test', 'helpers', 'record-imports.mjs'), '--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(entry).href)});`],
    { env: { ...process.env, DBPRUNE_RECORD_IMPORTS: file }, encoding: 'utf8', timeout: 60_000 },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return readFileSync(file, 'utf8').split('\n').filter((s) => s.length > 0);
}

describe('dbprune/core loads no native code', { timeout: 120_000 }, () => {
  it('the built core entry resolves only its own relative modules', () => {
    const specifiers = specifiersResolvedBy('src/core/index.js');
    // The hook saw the core's own modules (so the record is not empty by accident).
    expect(specifiers).toContain('./nearest.js');
    expect(specifiers).toContain('./streaming-dbp.js');
    expect(specifiers.filter((s) => NATIVE.test(s))).toEqual([]);
    const outside = specifiers.filter((s) => !s.startsWith('./') && !s.startsWith('file:') && !s.startsWith('node:'));
    expect(outside).toEqual([]);
    // Nothing leaves the folder: no '../' (src/kernels, src/io, …).
    expect(specifiers.filter((s) => s.startsWith('../'))).toEqual([]);
  });

  it('positive control: the kernels entry does resolve onnxruntime-node and onnx-proto', () => {
    const specifiers = specifiersResolvedBy('src/kernels/index.js');
    expect(specifiers).toContain('onnxruntime-node');
    expect(specifiers).toContain('onnx-proto');
  });
});
