/**
 * The storage API on the local backend (outputs appear only at commit, abort leaves nothing),
 * location helpers for s3:// URIs, and S3 settings from flags and the environment.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  abortPendingWrites,
  configureS3,
  joinLocation,
  locationBasename,
  openWrite,
  parentLocation,
  parseS3Uri,
  resolveS3Settings,
  statLocation,
} from '../../src/io/storage/index.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-storage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('local outputs', () => {
  it('appear under their name only at commit, from a temp file beside it', async () => {
    const target = join(dir, 'a.txt');
    const out = await openWrite(target);
    out.stream.write('hello ');
    await new Promise<void>((r) => out.stream.end('world', () => r()));
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir).some((n) => n.startsWith('.a.txt.tmp-'))).toBe(true);
    await out.commit();
    expect(readFileSync(target, 'utf8')).toBe('hello world');
    expect(readdirSync(dir)).toEqual(['a.txt']);
    expect(await statLocation(target)).toEqual({ kind: 'file', size: 11 });
  });

  it('abort (and abortPendingWrites for a failed run) leaves no file and no temp file', async () => {
    const one = await openWrite(join(dir, 'b.txt'));
    one.stream.write('partial');
    await one.abort();
    const two = await openWrite(join(dir, 'c.txt'));
    two.stream.write('partial');
    await abortPendingWrites();
    await two.commit(); // a no-op after abort
    expect(readdirSync(dir).sort()).toEqual(['a.txt']);
  });
});

describe('locations', () => {
  it('joins, splits and parses s3:// URIs without path.join mangling the scheme', () => {
    expect(joinLocation('s3://bucket/out/', 'manifest.parquet')).toBe('s3://bucket/out/manifest.parquet');
    expect(joinLocation('s3://bucket', 'img_emb', '/x.npy')).toBe('s3://bucket/img_emb/x.npy');
    expect(parentLocation('s3://bucket/c/centroids.npy')).toBe('s3://bucket/c');
    expect(locationBasename('s3://bucket/c/centroids.npy')).toBe('centroids.npy');
    expect(parseS3Uri('s3://bucket/a/b.tar')).toEqual({ bucket: 'bucket', key: 'a/b.tar' });
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', key: '' });
    expect(() => parseS3Uri('s3:///key')).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(joinLocation('out', 'kept.txt')).toBe(join('out', 'kept.txt'));
  });
});

describe('S3 settings', () => {
  it('come from the environment, flags override them, and bad values are refused at configuration', () => {
    const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9000', AWS_S3_FORCE_PATH_STYLE: 'true', AWS_REGION: 'eu-west-1', AWS_MAX_ATTEMPTS: '3' };
    expect(resolveS3Settings(env)).toMatchObject({ endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, region: 'eu-west-1', maxAttempts: 3 });
    expect(resolveS3Settings({})).toMatchObject({ endpoint: undefined, forcePathStyle: false, region: 'us-east-1', maxAttempts: 5, partSize: 8 << 20 });
    expect(resolveS3Settings({ AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://s3only:2' }).endpoint).toBe('http://s3only:2');
    configureS3({ endpoint: 'http://127.0.0.1:1234', forcePathStyle: true });
    expect(resolveS3Settings(env)).toMatchObject({ endpoint: 'http://127.0.0.1:1234', forcePathStyle: true });
    expect(() => configureS3({ endpoint: 'ftp://x' })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => configureS3({ partSize: 1024 })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => resolveS3Settings({ AWS_MAX_ATTEMPTS: 'lots' })).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});
