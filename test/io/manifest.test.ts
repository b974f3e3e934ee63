import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RecordBatchReader, tableFromIPC } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManifestRow } from '../../src/core/sample.js';
import {
  createKeptKeysWriter,
  createManifestWriter,
  createUidSubsetWriter,
  readManifest,
  writeManifestStream,
  MANIFEST_FORMATS,
  type ManifestFormat,
} from '../../src/io/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(i: number): ManifestRow {
  const err = i % 5 === 4;
  return {
    key: `k${String(i).padStart(6, '0')}`,
    shard: i % 2 ? 'shard-00001' : null,
    url: `https://example.com/${i}.jpg`,
    caption: i % 3 ? `caption ${i} – ünïcödé 🌍 "quoted"\nnewline` : null,
    uid: i % 7 ? i.toString(16).padStart(32, '0') : null,
    decision: err || i % 2 ? 'drop' : 'keep',
    reason: err ? 'error:decode' : 'dbp',
    cluster: err ? -1 : i % 13,
    distance: err ? null : (i % 100) / 64, // exactly representable in float32
    duplicate_of: i % 11 === 0 ? 'k000000' : null,
    error: err ? 'bad jpeg' : null,
  };
}
const N = 1000;
const rows = Array.from({ length: N }, (_, i) => row(i));
/** What a reader gets back: every row plus img2dataset's status, derived from the reason. */
const records = rows.map((r) => ({ ...r, status: r.reason === 'error:decode' ? 'failed_to_resize' : 'success' }));
const COLUMNS = ['key', 'shard', 'url', 'caption', 'uid', 'decision', 'reason', 'cluster', 'distance', 'duplicate_of', 'error', 'status'];

async function writeAll(path: string, format: ManifestFormat, rowGroupRows: number): Promise<{ rows: number }> {
  const w = createManifestWriter(path, format, { rowGroupRows });
  for (let i = 0; i < N; i += 97) await w.write(rows.slice(i, i + 97));
  return w.close();
}

describe('manifest writers', () => {
  for (const format of MANIFEST_FORMATS) {
    it(`${format}: round-trips every column, nulls and unicode, over several row groups`, async () => {
      const path = join(dir, `m.${format}`);
      expect(await writeAll(path, format, 128)).toEqual({ rows: N });
      expect(readManifest(path)).toEqual(records);
    });
  }

  it('parquet is one file with many row groups, readable by an independent reader (hyparquet)', async () => {
    const path = join(dir, 'm.parquet');
    const file = await asyncBufferFromFile(path);
    const meta = await parquetMetadataAsync(file);
    expect(Number(meta.num_rows)).toBe(N);
    expect(meta.row_groups.length).toBe(Math.ceil(N / 128));
    expect(meta.schema.map((s) => s.name).slice(1)).toEqual(COLUMNS);
    const objs = await parquetReadObjects({ file, columns: ['key', 'cluster', 'distance', 'caption', 'status'], rowStart: 300, rowEnd: 305 });
    expect(objs).toEqual(records.slice(300, 305).map((r) => ({ key: r.key, cluster: r.cluster, distance: r.distance, caption: r.caption, status: r.status })));
  });

  it('arrow is an IPC file with a record batch per row group', () => {
    const bytes = readFileSync(join(dir, 'm.arrow'));
    expect(bytes.subarray(0, 6).toString()).toBe('ARROW1');
    const batches = [...RecordBatchReader.from(bytes)];
    expect(batches.length).toBe(Math.ceil(N / 128));
    const typeName = (name: string): string | undefined => (batches[0].schema.fields.find((f) => f.name === name)?.type as { toString(): string } | undefined)?.toString(); // arrow's DataType names itself at runtime
    expect(typeName('cluster')).toBe('Int32');
    expect(typeName('distance')).toBe('Float32');
  });

  it('empty manifests are valid files in every format', async () => {
    for (const format of MANIFEST_FORMATS) {
      const path = join(dir, `empty.${format}`);
      expect(await createManifestWriter(path, format).close()).toEqual({ rows: 0 });
      expect(readManifest(path)).toEqual([]);
    }
  });

  it('NaN distance is written as null; write after close and bad options fail', async () => {
    const path = join(dir, 'nan.jsonl');
    const w = createManifestWriter(path, 'jsonl');
    await w.write([{ ...rows[0], distance: Number.NaN }]);
    await w.close();
    expect(readManifest(path)[0].distance).toBeNull();
    await expect(w.write([rows[0]])).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INTERNAL' });
    expect(() => createManifestWriter(join(dir, 'x'), 'csv' as ManifestFormat)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => createManifestWriter(join(dir, 'x'), 'jsonl', { rowGroupRows: 0 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });

  it('an unwritable path fails on write/close with ERR_DBPRUNE_OUTPUT naming the file', async () => {
    for (const format of MANIFEST_FORMATS) {
      const path = join(dir, 'no-such-dir', `m.${format}`);
      const w = createManifestWriter(path, format, { rowGroupRows: 10 });
      const err = await (async () => {
        await w.write(rows.slice(0, 30));
        await w.close();
      })().catch((e: unknown) => e);
      expect(err, format).toMatchObject({ code: 'ERR_DBPRUNE_OUTPUT', context: { file: path } });
    }
  });

  it('writeManifestStream: JSONL lines and an Arrow IPC stream to a Writable', async () => {
    for (const format of ['jsonl', 'arrow', 'parquet'] as const) {
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise((r) => out.on('end', r));
      const w = writeManifestStream(format, out, { rowGroupRows: 100 });
      await w.write(rows.slice(0, 250));
      expect(await w.close()).toEqual({ rows: 250 });
      await ended;
      const buf = Buffer.concat(chunks);
      if (format === 'jsonl') {
        const lines = buf.toString('utf8').trimEnd().split('\n');
        expect(lines.length).toBe(250);
        expect(JSON.parse(lines[1])).toEqual(records[1]);
        expect(Object.keys(JSON.parse(lines[0]) as object)).toEqual(COLUMNS);
      } else if (format === 'arrow') {
        expect(tableFromIPC(buf).numRows).toBe(250);
      } else {
        const p = join(dir, 'streamed.parquet');
        writeFileSync(p, buf);
        expect(readManifest(p)).toEqual(records.slice(0, 250));
      }
    }
  });
});

describe('kept keys and DataComp uid subsets', () => {
  it('kept.txt holds one key a line', async () => {
    const path = join(dir, 'kept.txt');
    const w = createKeptKeysWriter(path);
    await w.write(['a', 'b']);
    await w.write([]);
    await w.write(['c']);
    expect(await w.close()).toEqual({ rows: 3 });
    expect(readFileSync(path, 'utf8')).toBe('a\nb\nc\n');
  });

  it('uid subset is a sorted, deduplicated u8,u8 .npy that numpy reads like DataComp builds it', async () => {
    const uids = ['6e356964a967af455c8016b75d691203', '139e4a9b22a614771f06c700a8ebe150', 'FFFFFFFFFFFFFFFF0000000000000001', '139e4a9b22a614771f06c700a8ebe150', '139e4a9b22a614771f06c700a8ebe14f'];
    const path = join(dir, 'uids.npy');
    const w = createUidSubsetWriter(path);
    await w.write(uids.slice(0, 2));
    await w.write(uids.slice(2));
    expect(await w.close()).toEqual({ rows: 4 });
    const out = execFileSync(
      'python3',
      [
        '-c',
        `import numpy as np, json, sys
uids = json.loads(sys.argv[2])
want = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in uids], np.dtype("u8,u8")); want.sort(); want = np.unique(want)
got = np.load(sys.argv[1])
print(json.dumps([str(got.dtype), got.shape[0], bool((got == want).all()), bool(got.dtype == np.dtype("u8,u8"))]))`,
        path,
        JSON.stringify(uids),
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual([`[('f0', '<u8'), ('f1', '<u8')]`, 4, true, true]);
    const bad = createUidSubsetWriter(join(dir, 'bad.npy'));
    await expect(bad.write(['not-a-uid'])).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT' });
  });
});
