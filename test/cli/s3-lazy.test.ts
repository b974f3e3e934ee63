/**
 * The AWS SDK is loaded only when an s3:// location appears: `--help` and a local `prune` resolve
 * no `@aws-sdk/*` module; an s3:// path does (checked with a module-resolution hook). Flags that
 * must stay local (ingest's --state and --watch) refuse s3:// up front; ingest's --out may be s3://.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbpSmallDir } from '../helpers/fixture.js';
import { cliImports, type ResolvedImports } from '../helpers/imports.js';

const tmp = mkdtempSync(join(tmpdir(), 'dbprune-s3-lazy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const AWS_ENV = { AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' };
const importsOf = (name: string, args: string[]): ResolvedImports => cliImports(join(tmp, `${name}.txt`), args, AWS_ENV);

describe('the AWS SDK loads lazily', { timeout: 120_000 }, () => {
  it('ingest refuses s3:// for --state and --watch (usage error, exit 2), loading no SDK; --out s3:// loads it', () => {
    for (const flag of ['--state', '--watch']) {
      const args = ['ingest', '--state', join(tmp, 'st'), '--out', join(tmp, 'seg'), '--stdin'];
      const i = args.indexOf(flag);
      if (i >= 0) args[i + 1] = 's3://bucket/x';
      else args.push(flag, 's3://bucket/x');
      const r = importsOf(`ingest${flag}`, args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${flag} must be a local folder`));
      expect(r.specifiers.filter((s) => s.includes('@aws-sdk'))).toEqual([]);
    }
    const out = importsOf('ingest-out', ['ingest', '--state', join(tmp, 'st-out'), '--out', 's3://bucket/x', '--stdin', '--exit-when-done']);
    expect(out.code, out.stderr).toBe(1); // nothing listens on 127.0.0.1:9
    expect(out.stderr).toMatch(/s3:\/\/bucket\/x.*\[ERR_DBPRUNE_STORAGE\]/);
    expect(out.specifiers).toContain('@aws-sdk/client-s3');
  });


  it('is not loaded by --help or a local prune, and is by an s3:// path', () => {
    const help = importsOf('help', ['--help']);
    expect(help.code).toBe(0);
    expect(help.specifiers.length).toBeGreaterThan(3);
    expect(help.specifiers.filter((s) => s.includes('@aws-sdk'))).toEqual([]);

    const args = ['--embeddings', join(dbpSmallDir, 'embeddings.npy'), '--centroids', join(dbpSmallDir, 'centroids.npy'), '--keep', '0.3', '--no-report', '-q'];
    const local = importsOf('local', ['prune', ...args, '--out', join(tmp, 'out')]);
    expect(local.code, local.stderr).toBe(0);
    expect(local.specifiers.filter((s) => s.includes('@aws-sdk'))).toEqual([]);

    const remote = importsOf('remote', ['prune', ...args, '--out', 's3://bucket/out']);
    expect(remote.code).toBe(1); // nothing listens on 127.0.0.1:9
    expect(remote.specifiers).toContain('@aws-sdk/client-s3');
  });
});
