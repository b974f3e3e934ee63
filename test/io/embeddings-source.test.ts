import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import type { EmbeddingBatch } from '../../src/core/sample.js';
import { countEmbeddingRows, embeddingBatches, keysAreRowIndices, planEmbeddingSource, sampleRefBatches } from '../../src/io/embeddings-source.js';
import { readNpyHeader, writeNpy } from '../../src/io/npy.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-emb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeParquetFile(path: string, cols: Record<string, unknown[]>, rowGroup = 1 << 20): void {
  const t = tableFromArrays(cols as Parameters<typeof tableFromArrays>[0]);
  const props = new parquet.WriterPropertiesBuilder().setMaxRowGroupSize(rowGroup).build();
  writeFileSync(path, parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(t, 'stream')), props));
}

/** Rows whose first element encodes (file, row) so that alignment is checkable. */
async function writeEmb(path: string, file: number, rows: number, dim: number): Promise<void> {
  const a = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    a[r * dim] = file * 1000 + r;
    for (let j = 1; j < dim; j++) a[r * dim + j] = j; // not normalised: must pass unchanged
  }
  await writeNpy(path, a, [rows, dim]);
}

async function all(it: AsyncIterable<EmbeddingBatch>): Promise<EmbeddingBatch[]> {
  const out: EmbeddingBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

/** A clip-retrieval folder: img_emb/img_emb_{0,1,10}.npy + metadata/metadata_{0,1,10}.parquet. */
async function clipRetrieval(root: string, sizes: Record<number, number>, dim = 4): Promise<void> {
  mkdirSync(join(root, 'img_emb'), { recursive: true });
  mkdirSync(join(root, 'metadata'), { recursive: true });
  for (const [n, rows] of Object.entries(sizes)) {
    await writeEmb(join(root, 'img_emb', `img_emb_${n}.npy`), Number(n), rows, dim);
    writeParquetFile(
      join(root, 'metadata', `metadata_${n}.parquet`),
      {
        url: Array.from({ length: rows }, (_, i) => `http://x/${n}/${i}.jpg`),
        caption: Array.from({ length: rows }, (_, i) => `c${n}-${i}`),
      },
      3,
    );
  }
}

describe('embeddingBatches', () => {
  it('pairs img_emb_N with metadata_N by number (10 after 2), rows aligned and unchanged', async () => {
    const root = join(dir, 'cr');
    await clipRetrieval(root, { 0: 5, 2: 3, 10: 4 });
    const batches = await all(embeddingBatches({ embeddings: root, batchRows: 2 }));
    expect(batches.map((b) => b.rows.length)).toEqual([2, 2, 1, 2, 1, 2, 2]);
    const rows = batches.flatMap((b) => b.rows);
    const firsts = batches.flatMap((b) => Array.from({ length: b.rows.length }, (_, i) => b.embeddings[i * b.dim]));
    expect(rows.length).toBe(12);
    for (let i = 0; i < rows.length; i++) {
      const file = Math.floor(firsts[i] / 1000);
      const r = firsts[i] % 1000;
      expect(rows[i].url).toBe(`http://x/${file}/${r}.jpg`);
      expect(rows[i].caption).toBe(`c${file}-${r}`);
      expect(rows[i].shard).toBe(`img_emb_${file}`);
    }
    // no key column, no keys file: global row index
    expect(rows.map((r) => r.key)).toEqual(Array.from({ length: 12 }, (_, i) => String(i).padStart(9, '0')));
    expect(batches[0].dim).toBe(4);
    expect(Array.from(batches[0].embeddings.subarray(1, 4))).toEqual([1, 2, 3]);
    expect(await countEmbeddingRows({ embeddings: root })).toEqual({ rows: 12, dim: 4, files: 3 });
    // pass-2 view: same refs, same batch boundaries, no embeddings read
    const refs = [];
    for await (const b of sampleRefBatches({ embeddings: root, batchRows: 2 })) refs.push(b);
    expect(refs.map((b) => b.length)).toEqual(batches.map((b) => b.rows.length));
    expect(refs.flat()).toEqual(rows);
  });

  it('simple layout: a single npy with keys.txt; keys span several npy files', async () => {
    const a = join(dir, 'simple_a.npy');
    const b = join(dir, 'simple_b.npy');
    await writeEmb(a, 1, 3, 2);
    await writeEmb(b, 2, 4, 2);
    const keys = join(dir, 'keys.txt');
    writeFileSync(keys, ['a', 'b', 'c', 'd', 'e', 'f', 'g'].join('\n') + '\n');
    const batches = await all(embeddingBatches({ embeddings: [a, b], keys, batchRows: 2 }));
    expect(batches.flatMap((x) => x.rows.map((r) => r.key))).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(batches.flatMap((x) => x.rows.map((r) => r.shard))).toEqual(['simple_a', 'simple_a', 'simple_a', 'simple_b', 'simple_b', 'simple_b', 'simple_b']);
  });

  it('keysAreRowIndices: only without keys.txt and metadata, where the keys are distinct global row indices', async () => {
    const a = join(dir, 'rowidx_a.npy');
    const b = join(dir, 'rowidx_b.npy');
    await writeEmb(a, 1, 3, 2);
    await writeEmb(b, 2, 4, 2);
    const bare = await planEmbeddingSource({ embeddings: [a, b] });
    expect(keysAreRowIndices(bare)).toBe(true);
    const keys = (await all(embeddingBatches({ embeddings: [a, b], batchRows: 2 }))).flatMap((x) => x.rows.map((r) => r.key));
    expect(new Set(keys).size).toBe(7); // what the flag promises: no repeated key across the files
    const keysFile = join(dir, 'rowidx_keys.txt');
    writeFileSync(keysFile, 'a\nb\nc\nd\ne\nf\ng\n');
    expect(keysAreRowIndices(await planEmbeddingSource({ embeddings: [a, b], keys: keysFile }))).toBe(false);
    const root = join(dir, 'rowidx_cr');
    await clipRetrieval(root, { 0: 2 });
    expect(keysAreRowIndices(await planEmbeddingSource({ embeddings: root }))).toBe(false);
  });

  it('row-count mismatches (metadata or keys) → ROW_COUNT_MISMATCH naming both counts and files, before any batch', async () => {
    const root = join(dir, 'bad');
    await clipRetrieval(root, { 0: 5 });
    writeParquetFile(join(root, 'metadata', 'metadata_0.parquet'), { url: ['a', 'b', 'c'] });
    const it1 = embeddingBatches({ embeddings: root });
    const err = await it1.next().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_ROW_COUNT_MISMATCH', context: { embeddingRows: 5, metadataRows: 3 } });
    expect((err as Error).message).toMatch(/img_emb_0\.npy has 5 rows but .*metadata_0\.parquet has 3/);

    const e = join(dir, 'k.npy');
    await writeEmb(e, 0, 3, 2);
    const keys = join(dir, 'k.txt');
    writeFileSync(keys, 'a\nb\n');
    await expect(embeddingBatches({ embeddings: e, keys }).next()).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_ROW_COUNT_MISMATCH',
      context: { file: keys, keysRows: 2, embeddingRows: 3 },
    });
  });

  it('dimension mismatch → DIM_MISMATCH; 1-D npy → NPY_FORMAT; missing metadata partner → INPUT_NOT_FOUND', async () => {
    const a = join(dir, 'dim_1.npy');
    const b = join(dir, 'dim_2.npy');
    await writeEmb(a, 0, 2, 4);
    await writeEmb(b, 0, 2, 3);
    await expect(embeddingBatches({ embeddings: join(dir, 'dim_*.npy') }).next()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH', context: { expected: 4, got: 3 } });
    const flat = join(dir, 'flat.npy');
    await writeNpy(flat, new Float32Array(4), [4]);
    await expect(embeddingBatches({ embeddings: flat }).next()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_NPY_FORMAT', context: { file: flat } });
    const root = join(dir, 'partner');
    await clipRetrieval(root, { 0: 2, 1: 2 });
    rmSync(join(root, 'metadata', 'metadata_1.parquet'));
    await expect(embeddingBatches({ embeddings: root }).next()).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
  });

  it('a truncated npy yields its complete rows (with their metadata), then NPY_TRUNCATED', async () => {
    const root = join(dir, 'trunc');
    await clipRetrieval(root, { 0: 6 }, 4);
    const p = join(root, 'img_emb', 'img_emb_0.npy');
    truncateSync(p, (await readNpyHeader(p)).headerBytes + 4 * 16 + 3);
    const seen: string[] = [];
    let err: unknown;
    try {
      for await (const b of embeddingBatches({ embeddings: root, batchRows: 3 })) seen.push(...b.rows.map((r) => r.url ?? ''));
    } catch (e) {
      err = e;
    }
    expect(seen).toEqual([0, 1, 2, 3].map((i) => `http://x/0/${i}.jpg`));
    expect(err).toMatchObject({ code: 'ERR_DBPRUNE_NPY_TRUNCATED', context: { file: p, row: 4 } });
  });
});
