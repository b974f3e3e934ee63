/**
 * The streamed .npz reader on DataComp-shaped archives (stored, deflated and mixed members, float16):
 * every row's cosine(l14_img, l14_txt) and (b32_img, b32_txt) equals numpy's on np.load of the same
 * files (scripts/datacomp-reference.py), whatever the batch size; broken archives give codes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { cosineRows } from '../../src/core/datacomp-filters.js';
import { NpzFile } from '../../src/io/npz.js';
import { writeNpy } from '../../src/io/npy.js';
import { dataCompShards, loadDataCompExpected } from '../helpers/datacomp.js';

async function readAll(npz: NpzFile, member: string, batchRows: number): Promise<{ data: Float32Array; rows: number }> {
  const parts: Float32Array[] = [];
  let rows = 0;
  for await (const b of npz.rows(member, { batchRows })) {
    expect(b.start).toBe(rows);
    parts.push(b.data);
    rows += b.rows;
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, rows };
}

describe('NpzFile', () => {
  const expected = loadDataCompExpected();

  it('lists stored and deflated members with their float16 headers', async () => {
    const npz = await NpzFile.open(dataCompShards[2].npz);
    try {
      const m = Object.fromEntries(npz.members().map((x) => [x.name, x.compression]));
      expect(m).toEqual({ b32_img: 'stored', b32_txt: 'stored', l14_img: 'deflated', l14_txt: 'stored' });
      const h = await npz.header('l14_img');
      expect([h.dtype, h.rows, h.cols]).toEqual(['float16', 120, 768]);
    } finally {
      npz.close();
    }
  });

  it.each([1, 7, 120, 4096])('reads every shard to the numpy cosines (batchRows %i)', async (batchRows) => {
    const got: Record<'l14' | 'b32', number[]> = { l14: [], b32: [] };
    for (const shard of dataCompShards) {
      const npz = await NpzFile.open(shard.npz);
      try {
        for (const tower of ['l14', 'b32'] as const) {
          const img = await readAll(npz, `${tower}_img`, batchRows);
          const txt = await readAll(npz, `${tower}_txt`, batchRows);
          expect(img.rows).toBe(120);
          got[tower].push(...cosineRows(img.data, txt.data, img.rows, img.data.length / img.rows));
        }
      } finally {
        npz.close();
      }
    }
    for (const tower of ['l14', 'b32'] as const) {
      const want = tower === 'l14' ? expected.cosine_l14 : expected.cosine_b32;
      expect(got[tower].length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[tower][i] - want[i])).toBeLessThan(1e-12);
    }
  });

  it('fails with codes: missing member, truncated member, not a zip, missing file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-npz-'));
    await writeNpy(join(dir, 'm.npy'), new Float32Array(12).fill(0.5), [4, 3], 'float16');
    const full = readFileSync(join(dir, 'm.npy'));
    const cut = full.subarray(0, full.length - 5); // 4 rows promised, 3.x present
    writeFileSync(join(dir, 'cut.npz'), zipSync({ 'l14_img.npy': [cut, { level: 6 }] }));
    const npz = await NpzFile.open(join(dir, 'cut.npz'));
    try {
      await expect(npz.header('l14_txt')).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT' });
      const seen: number[] = [];
      const err = await (async () => {
        try {
          for await (const b of npz.rows('l14_img', { batchRows: 2 })) seen.push(b.rows);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(seen).toEqual([2, 1]);
      expect(err).toMatchObject({ code: 'ERR_DBPRUNE_NPY_TRUNCATED', context: { member: 'l14_img', row: 3 } });
    } finally {
      npz.close();
    }
    writeFileSync(join(dir, 'bad.npz'), 'not a zip at all');
    await expect(NpzFile.open(join(dir, 'bad.npz'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_NPY_FORMAT' });
    await expect(NpzFile.open(join(dir, 'none.npz'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
  });
});
