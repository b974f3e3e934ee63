import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NpyWriter, readNpyFloat32, readNpyHeader, readNpyRows, writeNpy } from '../../src/io/npy.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-npy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function py(code: string): string {
  return execFileSync('python3', ['-c', code], { encoding: 'utf8' });
}

async function collect(path: string, batchRows: number): Promise<{ starts: number[]; data: number[] }> {
  const starts: number[] = [];
  const data: number[] = [];
  for await (const b of readNpyRows(path, { batchRows })) {
    starts.push(b.start);
    data.push(...b.data);
  }
  return { starts, data };
}

describe('npy reading (files written by numpy)', () => {
  it('reads float32 v1.0 in batches, header fields right', async () => {
    const p = join(dir, 'a.npy');
    py(`import numpy as np; np.save(${JSON.stringify(p)}, np.arange(70, dtype='<f4').reshape(10, 7))`);
    const h = await readNpyHeader(p);
    expect(h).toMatchObject({ dtype: 'float32', shape: [10, 7], fortranOrder: false, rows: 10, cols: 7, rowBytes: 28, version: [1, 0] });
    expect(h.headerBytes % 64).toBe(0);
    const { starts, data } = await collect(p, 4);
    expect(starts).toEqual([0, 4, 8]);
    expect(data).toEqual(Array.from({ length: 70 }, (_, i) => i));
  });

  it('reads header versions 2.0 and 3.0, and float16/float64/int32/int64', async () => {
    const cases: [string, string][] = [
      ['v2', `np.lib.format.write_array(open(P,'wb'), np.arange(12, dtype='<f4').reshape(3,4), version=(2,0))`],
      ['v3', `np.lib.format.write_array(open(P,'wb'), np.arange(12, dtype='<f4').reshape(3,4), version=(3,0))`],
      ['f16', `np.save(P, (np.arange(12).reshape(3,4) * 0.5).astype('<f2'))`],
      ['f8', `np.save(P, (np.arange(12).reshape(3,4) * 0.5).astype('<f8'))`],
      ['i4', `np.save(P, np.arange(12, dtype='<i4').reshape(3,4))`],
      ['i8', `np.save(P, np.arange(12, dtype='<i8').reshape(3,4))`],
    ];
    for (const [name, code] of cases) {
      const p = join(dir, `${name}.npy`);
      py(`import numpy as np; P=${JSON.stringify(p)}; ${code}`);
      const m = await readNpyFloat32(p);
      expect(m.rows, name).toBe(3);
      expect(m.cols, name).toBe(4);
      const scale = name === 'f16' || name === 'f8' ? 0.5 : 1;
      expect(Array.from(m.data), name).toEqual(Array.from({ length: 12 }, (_, i) => i * scale));
    }
    expect((await readNpyHeader(join(dir, 'v2.npy'))).version).toEqual([2, 0]);
  });

  it('converts float16 specials (subnormal, inf, nan, negative zero) like numpy', async () => {
    const p = join(dir, 'f16s.npy');
    py(`import numpy as np; np.save(${JSON.stringify(p)}, np.array([[6e-8, -2.0, np.inf, -np.inf, np.nan, -0.0, 65504, 1/3]], dtype='<f2'))`);
    const got = Array.from((await readNpyFloat32(p)).data);
    const want = JSON.parse(py(`import numpy as np, json; a=np.load(${JSON.stringify(p)}).astype('f4'); print(json.dumps([str(x) for x in a.ravel().tolist()]))`)) as string[];
    expect(got.map((x) => (Number.isNaN(x) ? 'nan' : x === Infinity ? 'inf' : x === -Infinity ? '-inf' : Object.is(x, -0) ? '-0.0' : x))).toEqual(
      want.map((s) => (s === 'nan' || s === 'inf' || s === '-inf' || s === '-0.0' ? s : Number(s))),
    );
  });

  it('rejects Fortran order, big-endian, structured dtypes and bad magic with NPY_FORMAT naming the file', async () => {
    const f = join(dir, 'fortran.npy');
    py(`import numpy as np; np.save(${JSON.stringify(f)}, np.asfortranarray(np.ones((3,4), dtype='<f4')))`);
    const be = join(dir, 'be.npy');
    py(`import numpy as np; np.save(${JSON.stringify(be)}, np.ones((3,4), dtype='>f4'))`);
    const st = join(dir, 'struct.npy');
    py(`import numpy as np; np.save(${JSON.stringify(st)}, np.zeros(3, dtype='u8,u8'))`);
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, 'hello world, not numpy');
    await expect(collect(f, 2)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_NPY_FORMAT', context: { file: f } });
    for (const p of [be, st, bad]) {
      await expect(readNpyHeader(p)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_NPY_FORMAT', context: { file: p } });
    }
    await expect(readNpyHeader(join(dir, 'missing.npy'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
  });

  it('yields the complete rows of a truncated file, then NPY_TRUNCATED naming file and row', async () => {
    const p = join(dir, 'trunc.npy');
    py(`import numpy as np; np.save(${JSON.stringify(p)}, np.arange(40, dtype='<f4').reshape(10, 4))`);
    const h = await readNpyHeader(p);
    truncateSync(p, h.headerBytes + 6 * 16 + 5); // 6 full rows and a bit
    const seen: number[] = [];
    let err: unknown;
    try {
      for await (const b of readNpyRows(p, { batchRows: 4 })) seen.push(...b.data);
    } catch (e) {
      err = e;
    }
    expect(seen).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_NPY_TRUNCATED', context: { file: p, row: 6 } });
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toContain('row 6');
  });

  it('validates batchRows and honours an aborted signal', async () => {
    const p = join(dir, 'a.npy');
    await expect(collect(p, 0)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    const ac = new AbortController();
    ac.abort();
    await expect(readNpyRows(p, { signal: ac.signal }).next()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
  });
});

describe('npy writing (read back by numpy)', () => {
  it('NpyWriter streams rows and patches the count; numpy reads float32/float16/int32/int64', async () => {
    const p32 = join(dir, 'w32.npy');
    const w = await NpyWriter.create(p32, 'float32', 3);
    await w.write(new Float32Array([0, 1, 2, 3, 4, 5]));
    await w.write(new Float32Array([6, 7, 8]));
    expect(await w.close()).toEqual({ rows: 3 });
    const p16 = join(dir, 'w16.npy');
    const w16 = await NpyWriter.create(p16, 'float16', 2);
    await w16.write(new Float32Array([0.5, -1.25, 1 / 3, 70000]));
    await w16.close();
    const pi = join(dir, 'wi.npy');
    const wi = await NpyWriter.create(pi, 'int32', null);
    await wi.write(new Int32Array([-1, 2, 300000]));
    await wi.close();
    const pl = join(dir, 'wl.npy');
    await writeNpy(pl, new BigInt64Array([1n, -2n, 2n ** 40n, 4n]), [2, 2], 'int64');
    const out = py(
      `import numpy as np, json
a=np.load(${JSON.stringify(p32)}); b=np.load(${JSON.stringify(p16)}); c=np.load(${JSON.stringify(pi)}); d=np.load(${JSON.stringify(pl)})
print(json.dumps([str(a.dtype), a.shape, a.ravel().tolist(), str(b.dtype), b.shape, [str(x) for x in b.ravel().tolist()], str(c.dtype), c.shape, c.tolist(), str(d.dtype), d.tolist()]))`,
    );
    expect(JSON.parse(out)).toEqual([
      'float32', [3, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8],
      'float16', [2, 2], ['0.5', '-1.25', '0.333251953125', 'inf'],
      'int32', [3], [-1, 2, 300000],
      'int64', [[1, -2], [2 ** 40, 4]],
    ]);
    // and we read our own files back
    expect(Array.from((await readNpyFloat32(p32)).data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('writeNpy rejects a shape that does not match the data and a wrong array type', async () => {
    await expect(writeNpy(join(dir, 'x.npy'), new Float32Array(5), [2, 3])).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    await expect(writeNpy(join(dir, 'x.npy'), new Int32Array(6), [2, 3], 'float32')).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    const w = await NpyWriter.create(join(dir, 'y.npy'), 'float32', 4);
    await expect(w.write(new Float32Array(6))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
    await w.close();
    expect(readFileSync(join(dir, 'y.npy')).length % 64).toBe(0);
  });

  it('an empty NpyWriter is a valid (0, d) array', async () => {
    const p = join(dir, 'empty.npy');
    await (await NpyWriter.create(p, 'float32', 8)).close();
    expect(py(`import numpy as np; print(np.load(${JSON.stringify(p)}).shape)`).trim()).toBe('(0, 8)');
    expect(await collect(p, 4)).toEqual({ starts: [], data: [] });
  });
});
