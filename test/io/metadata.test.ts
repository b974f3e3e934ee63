import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { metadataRowCount, openMetadata, readMetadataBatches } from '../../src/io/metadata.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-meta-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a parquet file from columns, `rowGroup` rows per row group. */
function writeParquetFile(path: string, cols: Record<string, unknown[] | Int32Array | Float32Array>, rowGroup = 1 << 20): void {
  const t = tableFromArrays(cols as Parameters<typeof tableFromArrays>[0]);
  const props = new parquet.WriterPropertiesBuilder().setMaxRowGroupSize(rowGroup).setCompression(parquet.Compression.SNAPPY).build();
  writeFileSync(path, parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(t, 'stream')), props));
}

async function all(path: string, opts: Parameters<typeof readMetadataBatches>[1] = {}) {
  const out = [];
  for await (const b of readMetadataBatches(path, opts)) out.push(b);
  return out;
}

describe('readMetadataBatches', () => {
  it('reads key/url/caption/uid across row groups in exact batches', async () => {
    const p = join(dir, 'metadata_0.parquet');
    const n = 25;
    writeParquetFile(
      p,
      {
        key: Array.from({ length: n }, (_, i) => `k${i}`),
        url: Array.from({ length: n }, (_, i) => `http://x/${i}.jpg`),
        caption: Array.from({ length: n }, (_, i) => (i === 3 ? null : `cap ${i}`)),
        uid: Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, '0')),
        other: Int32Array.from({ length: n }, (_, i) => i),
      },
      7,
    );
    expect(await metadataRowCount(p)).toBe(25);
    const batches = await all(p, { batchRows: 10 });
    expect(batches.map((b) => b.length)).toEqual([10, 10, 5]);
    const rows = batches.flat();
    expect(rows[0]).toEqual({ key: 'k0', shard: 'metadata_0', url: 'http://x/0.jpg', caption: 'cap 0', uid: '0'.repeat(32) });
    expect(rows[3].caption).toBeUndefined();
    expect(rows.map((r) => r.key)).toEqual(Array.from({ length: n }, (_, i) => `k${i}`));
  });

  it('falls back to uid, then to the row index (%09d plus rowOffset) for keys; matches TEXT/URL case-insensitively', async () => {
    const pu = join(dir, 'uid.parquet');
    writeParquetFile(pu, { uid: ['aa', 'bb'], URL: ['u1', 'u2'], TEXT: ['t1', 't2'] });
    expect((await all(pu)).flat()).toEqual([
      { key: 'aa', uid: 'aa', url: 'u1', caption: 't1', shard: 'uid' },
      { key: 'bb', uid: 'bb', url: 'u2', caption: 't2', shard: 'uid' },
    ]);
    const pi = join(dir, 'idx.parquet');
    writeParquetFile(pi, { url: ['a', 'b', 'c'] });
    expect((await all(pi, { rowOffset: 1000, shard: 's' })).flat().map((r) => [r.key, r.shard])).toEqual([
      ['000001000', 's'],
      ['000001001', 's'],
      ['000001002', 's'],
    ]);
  });

  it('numeric key columns become strings', async () => {
    const p = join(dir, 'numkey.parquet');
    writeParquetFile(p, { key: Int32Array.from([5, 6]) });
    expect((await all(p)).flat().map((r) => r.key)).toEqual(['5', '6']);
  });

  it('a struct key column gives each row its JSON, not "[object Object]" for every row', async () => {
    const p = join(dir, 'struct-keys.parquet');
    writeParquetFile(p, { key: [{ shard: 'a', n: 1 }, { shard: 'a', n: 2 }] });
    const keys = (await all(p)).flat().map((r) => r.key);
    expect(keys).toEqual(['{"shard":"a","n":1}', '{"shard":"a","n":2}']);
  });

  it('missing file, non-parquet file, missing required column → INPUT_FORMAT with the file', async () => {
    const missing = join(dir, 'nope.parquet');
    await expect(all(missing)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT', context: { file: missing } });
    const junk = join(dir, 'junk.parquet');
    writeFileSync(junk, 'not parquet at all, definitely not');
    await expect(openMetadata(junk)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT', context: { file: junk } });
    const p = join(dir, 'nourl.parquet');
    writeParquetFile(p, { key: ['a'] });
    await expect(all(p, { require: ['url'] })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT', context: { file: p } });
  });
});
