import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManifestRow } from '../../src/core/sample.js';
import * as parquet from 'parquet-wasm';
import { createManifestWriter, readManifest } from '../../src/io/manifest.js';
import { PLAIN_PARQUET_COLUMNS } from '../../src/io/manifest/columns.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-manifest-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(i: number): ManifestRow {
  const err = i % 9 === 4;
  return {
    key: i % 17 === 3 ? `ключ-${i}` : `k${String(i).padStart(6, '0')}`,
    shard: i % 2 ? 'shard-00001' : null,
    url: `https://example.com/${i}.jpg`,
    caption: i % 3 ? `caption ${i} – ünïcödé 🌍 "quoted"\nnewline ${'long '.repeat(i % 20)}` : null,
    uid: i % 7 ? i.toString(16).padStart(32, '0') : null,
    decision: err || i % 2 ? 'drop' : 'keep',
    reason: err ? 'error:decode' : 'dbp',
    cluster: err ? -1 : i % 13,
    distance: err ? null : (i % 100) / 64,
    duplicate_of: i % 11 === 0 ? 'k000000' : null,
    error: err ? 'bad jpeg' : null,
  };
}
const rows = Array.from({ length: 5000 }, (_, i) => row(i));

async function write(path: string, encodeOnWorker: boolean, data: readonly ManifestRow[], rowGroupRows = 300): Promise<Buffer> {
  const w = createManifestWriter(path, 'parquet', { rowGroupRows, encodeOnWorker });
  for (let i = 0; i < data.length; i += 701) await w.write(data.slice(i, i + 701));
  expect(await w.close()).toEqual({ rows: data.length });
  return readFileSync(path);
}

/** Runs a script that writes a manifest on a worker and closes it: the process must end by itself. */
function exitsByItself(outPath: string): { status: number | null; stdout: string } {
  const script = join(dir, `exits-${Math.random().toString(36).slice(2)}.mts`);
  const manifest = pathToFileURL(join(import.meta.dirname, '../../src/io/manifest.ts')).href;
  writeFileSync(
    script,
    `import { createManifestWriter } from ${JSON.stringify(manifest)};
const w = createManifestWriter(${JSON.stringify(outPath)}, 'parquet', { rowGroupRows: 10, encodeOnWorker: true });
const row = { key: 'a', shard: null, url: null, caption: null, uid: null, decision: 'keep', reason: 'dbp', cluster: 0, distance: 0, duplicate_of: null, error: null };
try { await w.write(Array.from({ length: 25 }, () => row)); await w.close(); console.log('closed'); }
catch (e) { await w.close().catch(() => undefined); console.log(e.code); }
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000, cwd: join(import.meta.dirname, '../..') });
  return { status: r.status, stdout: r.stdout.trim() || r.stderr.slice(-500) };
}

describe('parquet manifest encoded on a worker thread', () => {
  it('writes the same bytes as the in-thread encoder, over many row groups', async () => {
    const inline = await write(join(dir, 'inline.parquet'), false, rows);
    const onWorker = await write(join(dir, 'worker.parquet'), true, rows);
    expect(onWorker.equals(inline)).toBe(true);
    expect(readManifest(join(dir, 'worker.parquet')).map(({ status: _status, ...r }) => r)).toEqual(rows);
  });

  it('an empty manifest and a single short row group are the same bytes too', async () => {
    expect((await write(join(dir, 'w0.parquet'), true, [])).equals(await write(join(dir, 'i0.parquet'), false, []))).toBe(true);
    const few = rows.slice(0, 7);
    expect((await write(join(dir, 'w7.parquet'), true, few)).equals(await write(join(dir, 'i7.parquet'), false, few))).toBe(true);
  });

  it('an unwritable path fails with ERR_DBPRUNE_OUTPUT naming the file', async () => {
    const path = join(dir, 'no-such-dir', 'm.parquet');
    const w = createManifestWriter(path, 'parquet', { rowGroupRows: 100, encodeOnWorker: true });
    const err = await (async () => {
      await w.write(rows.slice(0, 1000));
      await w.close();
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT', context: { file: path } });
    await w.close().catch(() => undefined);
    await expect(w.write(rows.slice(0, 1))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INTERNAL' });
  });

  it('close() ends the worker: a process exits by itself after a good and after a failed manifest', () => {
    expect(exitsByItself(join(dir, 'child.parquet'))).toEqual({ status: 0, stdout: 'closed' });
    expect(readManifest(join(dir, 'child.parquet'))).toHaveLength(25);
    expect(exitsByItself(join(dir, 'no-such-dir', 'child.parquet'))).toEqual({ status: 0, stdout: 'ERR_DBPRUNE_OUTPUT' });
  });

  it('writes the columns of distinct values (key, url, distance, …) without a dictionary, the others with one', async () => {
    for (const encodeOnWorker of [false, true]) {
      const bytes = await write(join(dir, `dict-${encodeOnWorker}.parquet`), encodeOnWorker, rows, 5000);
      const file = await parquet.ParquetFile.fromFile(new Blob([bytes]));
      const dictionary = new Map(
        file
          .metadata()
          .rowGroup(0)
          .columns()
          .map((c) => [c.columnPath().join('.'), c.encodings().some((e) => e === parquet.Encoding.RLE_DICTIONARY || e === parquet.Encoding.PLAIN_DICTIONARY)]),
      );
      for (const c of PLAIN_PARQUET_COLUMNS) expect([c, dictionary.get(c)]).toEqual([c, false]);
      for (const c of ['shard', 'decision', 'reason', 'cluster', 'status']) expect([c, dictionary.get(c)]).toEqual([c, true]);
    }
  });

  it('encodeOnWorker must be a boolean', () => {
    expect(() => createManifestWriter(join(dir, 'x.parquet'), 'parquet', { encodeOnWorker: 'yes' as unknown as boolean })).toThrow(
      expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }),
    );
  });
});
