/** Issue #11 item 9: an image size the model cannot take is refused before anything is decoded. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-image-size-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run --image-size against the model input shape', () => {
  it('--image-size 8192 with a fixed-size model: usage error (exit 2) naming both sizes, nothing decoded', async () => {
    const t0 = Date.now();
    // before the check this decoded 8192² tensors (2.9 GB RSS, 29 s) and then failed with exit 1
    const r = await runCli(['run', 'data-samples/shards/00000.tar', '--image-size', '8192', '--out', join(dir, 'o')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/image size 8192 .*does not match the model input 32×32.*\[ERR_DBPRUNE_USAGE\]/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
