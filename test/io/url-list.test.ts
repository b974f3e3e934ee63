import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Int32, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { img2datasetKey, oomOf, shardName, urlListBatches, urlListFormatFromPath, urlListSource, type UrlRef } from '../../src/io/url-list.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-urllist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, data: string | Buffer, gz = false): string {
  const p = join(dir, name);
  writeFileSync(p, gz ? gzipSync(data) : data);
  return p;
}

async function all(opts: Parameters<typeof urlListBatches>[0]): Promise<UrlRef[]> {
  const out: UrlRef[] = [];
  for await (const b of urlListBatches(opts)) out.push(...b);
  return out;
}

const ROWS = [
  { url: 'http://a.example/1.jpg', caption: 'one, with comma', license: 'cc-by', n: 1 },
  { url: 'http://a.example/2.jpg', caption: 'two "quoted"', license: 'cc0', n: 2 },
  { url: '', caption: 'no url here', license: 'x', n: 3 },
  { url: 'http://b.example/4.png', caption: 'multi\nline', license: 'cc-by', n: 4 },
];

function csv(delim: string): string {
  const q = (s: string): string => (/[",\n\t]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [['url', 'caption', 'license', 'n'].join(delim), ...ROWS.map((r) => [q(r.url), q(r.caption), q(r.license), String(r.n)].join(delim))].join('\r\n') + '\r\n';
}

function parquetFile(name: string): string {
  const t = new Table({
    url: vectorFromArray(ROWS.map((r) => r.url || null), new Utf8()),
    caption: vectorFromArray(ROWS.map((r) => r.caption), new Utf8()),
    license: vectorFromArray(ROWS.map((r) => r.license), new Utf8()),
    n: vectorFromArray(ROWS.map((r) => r.n), new Int32()),
  });
  return write(name, Buffer.from(parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(t, 'stream')))));
}

function expectRows(refs: UrlRef[], withCaption = true): void {
  expect(refs).toHaveLength(4);
  expect(refs.map((r) => r.key)).toEqual(['000000000', '000000001', '000000002', '000000003']);
  expect(refs.every((r) => r.shard === '00000')).toBe(true);
  expect(refs[0].url).toBe('http://a.example/1.jpg');
  if (withCaption) {
    expect(refs[0].caption).toBe('one, with comma');
    expect(refs[1].caption).toBe('two "quoted"');
    expect(refs[3].caption).toBe('multi\nline');
  }
  // the row without url is still a row, with error:input
  expect(refs[2].url).toBeUndefined();
  expect(refs[2].error?.reason).toBe('error:input');
  expect(refs[2].error?.message).toMatch(/row 2/);
  expect(refs.filter((r) => r.error)).toHaveLength(1);
}

describe('img2dataset key numbering', () => {
  it('matches compute_key: shard · 10^oom + index, padded to oom + 5 digits', () => {
    expect(oomOf(10_000)).toBe(4);
    expect(oomOf(10_001)).toBe(5);
    expect(oomOf(1)).toBe(0);
    expect(img2datasetKey(0, 0)).toBe('000000000');
    expect(img2datasetKey(1, 12)).toBe('000010012');
    expect(img2datasetKey(123, 9999)).toBe('001239999');
    expect(img2datasetKey(3, 7, 100)).toBe('0000307');
    expect(img2datasetKey(2, 5, 5000)).toBe('000020005');
    expect(img2datasetKey(4, 0, 1)).toBe('00004');
    expect(img2datasetKey(123456, 1)).toBe('1234560001'); // wider than the pad, like Python's format
    expect(shardName(7)).toBe('00007');
  });

  it('cuts each file into shards and starts a new shard with each file', async () => {
    const sub = join(dir, 'multi');
    mkdirSync(sub);
    writeFileSync(join(sub, 'part2.txt'), Array.from({ length: 3 }, (_, i) => `http://x.example/b${i}`).join('\n'));
    writeFileSync(join(sub, 'part1.txt'), Array.from({ length: 5 }, (_, i) => `http://x.example/a${i}`).join('\n') + '\n\n');
    writeFileSync(join(sub, 'notes.md'), 'ignored');
    const refs = await all({ input: sub, samplesPerShard: 2, batchRows: 3 });
    expect(refs.map((r) => [r.key, r.shard, r.url?.slice(-2)])).toEqual([
      ['000000', '00000', 'a0'], // ⌈log10 2⌉ = 1 digit for the index, 1 + 5 in all
      ['000001', '00000', 'a1'],
      ['000010', '00001', 'a2'],
      ['000011', '00001', 'a3'],
      ['000020', '00002', 'a4'],
      ['000030', '00003', 'b0'], // new file → new shard
      ['000031', '00003', 'b1'],
      ['000040', '00004', 'b2'],
    ]);
  });

  it('honours startShardId and oomShardCount', async () => {
    const p = write('few.txt', 'http://x.example/1\nhttp://x.example/2\n');
    const refs = await all({ input: p, samplesPerShard: 10, startShardId: 41, oomShardCount: 3 });
    expect(refs.map((r) => [r.key, r.shard])).toEqual([
      ['0410', '041'], // 41 · 10^1 + 0, padded to 1 + 3 digits
      ['0411', '041'],
    ]);
  });
});

describe('urlListBatches formats', () => {
  it('reads csv and csv.gz (quotes, commas, newlines in fields, CRLF)', async () => {
    expectRows(await all({ input: write('l.csv', csv(',')) }));
    expectRows(await all({ input: write('l.csv.gz', csv(','), true) }));
  });

  it('reads tsv and tsv.gz (no quoting: a quote is an ordinary character)', async () => {
    const tsv = ['url\tcaption\tlicense\tn', ...ROWS.map((r) => [r.url, r.caption.replace(/\n/g, ' '), r.license, String(r.n)].join('\t'))].join('\r\n') + '\r\n';
    for (const p of [write('l.tsv', tsv), write('l.tsv.gz', tsv, true)]) {
      const refs = await all({ input: p });
      expectRows(refs, false);
      expect(refs.map((r) => r.caption)).toEqual(['one, with comma', 'two "quoted"', 'no url here', 'multi line']);
    }
  });

  it('a stray quote in a TSV swallows nothing: 1,000 rows in, 1,000 rows out, keys in place', async () => {
    const lines = ['url\tcaption'];
    for (let i = 0; i < 1000; i++) lines.push(`http://a.example/${i}.jpg\t${i === 9 ? '"12 inch pizza' : `caption ${i}`}`);
    const refs = await all({ input: write('stray.tsv', lines.join('\n') + '\n') });
    expect(refs).toHaveLength(1000);
    expect(refs[9].caption).toBe('"12 inch pizza');
    expect(refs.map((r) => r.url)).toEqual(Array.from({ length: 1000 }, (_, i) => `http://a.example/${i}.jpg`));
    expect(refs[999].key).toBe('000000999');
  });

  it('a stray quote in a CSV is an error naming the line, never a silent loss of rows', async () => {
    const body = (stray: number, closeAt?: number): string => {
      const lines = ['url,caption'];
      for (let i = 0; i < 1000; i++) {
        const cap = i === stray ? '"12 inch pizza' : i === closeAt ? '"a, b"' : `caption ${i}`;
        lines.push(`http://a.example/${i}.jpg,${cap}`);
      }
      return lines.join('\n') + '\n';
    };
    // never closes: the file ends inside the quoted field opened on line 11 (header = line 1)
    await expect(all({ input: write('stray.csv', body(9)) })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { line: 11 } });
    // pairs with the opening quote of a properly quoted field 500 lines later
    await expect(all({ input: write('stray2.csv', body(9, 509)) })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { line: 11 } });
    // too many / too few fields name their line
    await expect(all({ input: write('wide.csv', 'url,caption\nhttp://a/1,x\nhttp://a/2,x,extra\n') })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { line: 3 } });
    // a correctly quoted file with quotes, commas and newlines is still read
    expectRows(await all({ input: write('ok.csv', csv(',')) }));
  });

  it('reads jsonl and jsonl.gz (a broken line is still a row)', async () => {
    const text = ROWS.map((r) => JSON.stringify(r)).join('\n') + '\n';
    expectRows(await all({ input: write('l.jsonl', text) }));
    expectRows(await all({ input: write('l.jsonl.gz', text, true) }));
    const broken = await all({ input: write('b.jsonl', `${JSON.stringify(ROWS[0])}\n{not json\n`) });
    expect(broken).toHaveLength(2);
    expect(broken[1].error?.reason).toBe('error:input');
  });

  it('reads json arrays (and pandas column objects), also gzipped', async () => {
    expectRows(await all({ input: write('l.json', JSON.stringify(ROWS)) }));
    expectRows(await all({ input: write('l.json.gz', JSON.stringify(ROWS), true) }));
    const cols = { url: Object.fromEntries(ROWS.map((r, i) => [String(i), r.url])), caption: Object.fromEntries(ROWS.map((r, i) => [String(i), r.caption])) };
    expectRows(await all({ input: write('cols.json', JSON.stringify(cols)) }));
  });

  it('reads txt and txt.gz (one url a line, blank lines skipped, no caption)', async () => {
    const text = 'http://a.example/1.jpg\n\nhttp://a.example/2.jpg\r\nhttp://a.example/3.jpg';
    for (const p of [write('l.txt', text), write('l.txt.gz', text, true)]) {
      const refs = await all({ input: p });
      expect(refs.map((r) => r.url)).toEqual(['http://a.example/1.jpg', 'http://a.example/2.jpg', 'http://a.example/3.jpg']);
      expect(refs.every((r) => r.caption === undefined && !r.error)).toBe(true);
    }
  });

  it('reads parquet with additional columns', async () => {
    const refs = await all({ input: parquetFile('l.parquet'), saveAdditionalColumns: ['license', 'n'], batchRows: 3 });
    expectRows(refs);
    expect(refs[0].extra).toEqual({ license: 'cc-by', n: 1 });
    expect(refs[3].extra).toEqual({ license: 'cc-by', n: 4 });
  });

  it('reads a Readable (stdin) with the format given, gzip detected from the bytes', async () => {
    expectRows(await all({ input: Readable.from([Buffer.from(csv(','))]), format: 'csv' }));
    expectRows(await all({ input: Readable.from([gzipSync(csv(','))]), format: 'csv' }));
    const pq = (await import('node:fs')).readFileSync(parquetFile('stdin.parquet'));
    expectRows(await all({ input: Readable.from([pq]), format: 'parquet' }));
    await expect(all({ input: Readable.from([Buffer.from('x')]) })).rejects.toMatchObject({ code: ErrorCodes.INVALID_OPTION });
  });

  it('uses url-col / caption-col / additional columns; missing columns are errors', async () => {
    const p = write('renamed.csv', 'URL,TEXT,extra\nhttp://a.example/x,hello,7\n');
    const refs = await all({ input: p, urlCol: 'URL', captionCol: 'TEXT', saveAdditionalColumns: ['extra'] });
    expect(refs).toEqual([{ key: '000000000', shard: '00000', url: 'http://a.example/x', caption: 'hello', extra: { extra: '7' } }]);
    await expect(all({ input: p })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT });
    await expect(all({ input: p, urlCol: 'URL', captionCol: 'caption' })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT });
    await expect(all({ input: p, urlCol: 'URL', saveAdditionalColumns: ['nope'] })).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT });
    await expect(all({ input: p, urlCol: 'URL', saveAdditionalColumns: ['status'] })).rejects.toMatchObject({ code: ErrorCodes.INVALID_OPTION });
    await expect(all({ input: join(dir, 'missing.csv') })).rejects.toMatchObject({ code: ErrorCodes.INPUT_NOT_FOUND });
  });

  it('urlListSource streams one UrlRef per chunk', async () => {
    const refs: UrlRef[] = [];
    for await (const r of urlListSource({ input: write('s.csv', csv(',')), batchRows: 1 })) refs.push(r as UrlRef);
    expectRows(refs);
  });

  it('tells formats from names', () => {
    expect(urlListFormatFromPath('a/b.tsv.gz')).toBe('tsv');
    expect(urlListFormatFromPath('x.PARQUET')).toBe('parquet');
    expect(urlListFormatFromPath('x.ndjson')).toBe('jsonl');
    expect(urlListFormatFromPath('x.md')).toBeUndefined();
  });
});
