import { createReadStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { extract as tarExtract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { errorRow, type ImageSample, type ManifestRow } from '../../src/core/sample.js';
import { createShardWriter, safeMemberKey, shardWriterSink, uniqueMemberKey } from '../../src/io/shard-writer.js';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const root = mkdtempSync(join(tmpdir(), 'dbprune-shards-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toBuffer();
});

async function tarMembers(path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tarExtract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  await pipeline(createReadStream(path), ex);
  await done;
  return out;
}

/** n samples; every 3rd dropped by DBP, every 5th a download error, every 7th a decode error. */
function samples(n: number): { sample: ImageSample; row: ManifestRow }[] {
  const out: { sample: ImageSample; row: ManifestRow }[] = [];
  for (let i = 0; i < n; i++) {
    const key = String(i).padStart(9, '0');
    const url = `http://img.example/${i}.jpg`;
    const base: ImageSample = { key, shard: '00000', url, caption: `caption ${i}`, json: { key, url, status: 'success', license: i % 2 ? 'cc0' : 'cc-by' } };
    if (i % 5 === 4) {
      const err = { reason: 'error:download' as const, message: `HTTP 404 from ${url}` };
      out.push({ sample: { ...base, error: err }, row: errorRow(base, err) });
    } else if (i % 7 === 6) {
      const err = { reason: 'error:decode' as const, message: `cannot decode ${key}` };
      out.push({ sample: { ...base, image: jpeg, imageExt: 'jpg', error: err }, row: errorRow(base, err) });
    } else {
      const keep = i % 3 !== 2;
      out.push({
        sample: { ...base, image: jpeg, imageExt: i % 4 === 0 ? 'jpeg' : 'jpg' },
        row: { key, shard: '00000', url, caption: `caption ${i}`, decision: keep ? 'keep' : 'drop', reason: 'dbp', cluster: i % 3, distance: 0.25, duplicate_of: null, error: null },
      });
    }
  }
  return out;
}

describe('createShardWriter', () => {
  it('writes img2dataset-layout shards: tar of kept samples, parquet of every row, stats', async () => {
    const dir = join(root, 'a');
    const items = samples(40);
    const w = createShardWriter({ dir, samplesPerShard: 8, additionalColumns: ['license'] });
    for (const { sample, row } of items) await w.write(sample, row);
    const res = await w.close();
    const keptKeys = items.filter((x) => x.row.decision === 'keep').map((x) => x.row.key);
    expect(res.rows).toBe(40);
    expect(res.kept).toBe(keptKeys.length);
    expect(res.shards.map((s) => s.shard)).toEqual(['00000', '00001', '00002'].slice(0, Math.ceil(keptKeys.length / 8)));
    expect(readdirSync(dir).sort()).toEqual(res.shards.flatMap((s) => [`${s.shard}.parquet`, `${s.shard}.tar`, `${s.shard}_stats.json`]).sort());

    // tar: KEY.jpg / KEY.txt / KEY.json for exactly the kept samples, in order
    const tarKeys: string[] = [];
    for (const s of res.shards) {
      const m = await tarMembers(s.tar);
      const names = [...m.keys()];
      expect(names.length).toBe(3 * s.kept);
      for (const n of names.filter((x) => x.endsWith('.jpg'))) {
        const key = n.slice(0, -4);
        tarKeys.push(key);
        expect(m.get(n)?.equals(jpeg)).toBe(true);
        expect(m.get(`${key}.txt`)?.toString()).toBe(`caption ${Number(key)}`);
        const j = JSON.parse(m.get(`${key}.json`)?.toString() ?? '{}') as Record<string, unknown>;
        expect(j).toMatchObject({ key, status: 'success', decision: 'keep', reason: 'dbp', width: 20, height: 10, license: Number(key) % 2 ? 'cc0' : 'cc-by' });
      }
      expect(s.kept).toBeLessThanOrEqual(8);
    }
    expect(tarKeys).toEqual(keptKeys);

    // parquet: every row once (kept and dropped), readable by hyparquet
    const rows: Record<string, unknown>[] = [];
    for (const s of res.shards) rows.push(...((await parquetReadObjects({ file: await asyncBufferFromFile(s.parquet) })) as Record<string, unknown>[]));
    expect(rows.map((r) => r.key)).toEqual(items.map((x) => x.row.key));
    const byKey = new Map(rows.map((r) => [r.key as string, r]));
    expect(byKey.get('000000004')).toMatchObject({ status: 'failed_to_download', decision: 'drop', reason: 'error:download', error_message: 'HTTP 404 from http://img.example/4.jpg', width: null });
    expect(byKey.get('000000006')).toMatchObject({ status: 'failed_to_resize', reason: 'error:decode' });
    expect(byKey.get('000000002')).toMatchObject({ status: 'success', decision: 'drop', reason: 'dbp', width: null });
    expect(byKey.get('000000000')).toMatchObject({ status: 'success', decision: 'keep', cluster: 0, width: 20, height: 10, license: 'cc-by', url: 'http://img.example/0.jpg' });

    // stats like img2dataset's
    let count = 0;
    for (const s of res.shards) {
      const st = JSON.parse(readFileSync(s.stats, 'utf8')) as { count: number; successes: number; failed_to_download: number; failed_to_resize: number; kept: number; duration: unknown };
      expect(st.count).toBe(s.rows);
      expect(st.successes + st.failed_to_download + st.failed_to_resize).toBe(st.count);
      expect(st.kept).toBe(s.kept);
      expect(typeof st.duration).toBe('number');
      count += st.count;
    }
    expect(count).toBe(40);
  });

  it('sanitises keys used as member names and refuses writes after close', async () => {
    expect(safeMemberKey('../../etc/passwd')).toBe('______etc_passwd');
    expect(safeMemberKey('a.b')).toBe('a_b');
    const dir = join(root, 'b');
    const w = createShardWriter({ dir });
    const s: ImageSample = { key: '../evil.x', image: jpeg, imageExt: 'jpg' };
    await w.write(s, { key: s.key, shard: null, url: null, caption: null, decision: 'keep', reason: 'dbp', cluster: 0, distance: 0.1, duplicate_of: null, error: null });
    const res = await w.close();
    const m = await tarMembers(res.shards[0].tar);
    expect([...m.keys()]).toEqual(['___evil_x.jpg', '___evil_x.json']);
    expect((JSON.parse(m.get('___evil_x.json')?.toString() ?? '{}') as { original_key?: string }).original_key).toBe('../evil.x');
    expect(readdirSync(root)).not.toContain('evil.x.jpg');
    await expect(w.write(s, errorRow(s, { reason: 'error:x', message: 'm' }))).rejects.toMatchObject({ code: ErrorCodes.INTERNAL });
    await expect(w.close()).resolves.toEqual(res);
  });

  it('never writes two members with one name: keys that sanitise alike, share 200 characters or come from two shards', async () => {
    const long = 'x'.repeat(200);
    const keys: [string, string][] = [['s1', 'a b'], ['s1', 'a_b'], ['s1', `${long}1`], ['s1', `${long}2`], ['s1', 'k'], ['s2', 'k']];
    const dir = join(root, 'collide');
    const w = createShardWriter({ dir });
    for (const [shard, key] of keys) {
      const s: ImageSample = { key, shard, image: jpeg, imageExt: 'jpg' };
      await w.write(s, { key, shard, url: null, caption: null, decision: 'keep', reason: 'dbp', cluster: 0, distance: 0.1, duplicate_of: null, error: null });
    }
    const res = await w.close();
    const m = await tarMembers(res.shards[0].tar);
    const images = [...m.keys()].filter((n) => n.endsWith('.jpg'));
    expect(images).toHaveLength(6);
    expect(new Set(images).size).toBe(6);
    // reversible: each sidecar names the key its member stands for
    const back = images.map((n) => {
      const j = JSON.parse(m.get(n.replace(/\.jpg$/, '.json'))?.toString() ?? '{}') as { key: string; original_key?: string };
      return j.original_key ?? j.key;
    });
    expect(back).toEqual(keys.map(([, k]) => k));
    expect(images[0]).toBe('a_b.jpg');
    expect(images[1]).toMatch(/^a_b-h[0-9a-f]{16}\.jpg$/);
    expect(uniqueMemberKey('k', 's', new Set(['k', uniqueMemberKey('k', 's', new Set(['k']))]))).toMatch(/-2$/);
  });

  it('works as a pipeline sink', async () => {
    const dir = join(root, 'c');
    let summary: { rows: number; kept: number } | undefined;
    await pipeline(Readable.from(samples(10), { objectMode: true }), shardWriterSink({ dir, onClose: (r) => (summary = r) }));
    expect(summary?.rows).toBe(10);
    expect(readdirSync(dir).sort()).toEqual(['00000.parquet', '00000.tar', '00000_stats.json']);
  });

  it('validates options', () => {
    expect(() => createShardWriter({ dir: '' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => createShardWriter({ dir: root, samplesPerShard: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
