/**
 * Packaging: `npm pack`, install the tarball into a fresh folder offline (the tarball plus the npm
 * cache that `npm ci` filled), then from there run `npx dbprune --help` and an ESM script that
 * imports the public stages and runs the custom-pipeline example on the bundled data-samples.
 * No TypeScript runtime is involved on the user's side: the bin and the library run from dist/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixture.js';
import { tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-pack-');
afterAll(() => tmp.cleanup());
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('the npm package', () => {
  it('installs from its tarball offline; the bin and the ESM API work without TypeScript', { timeout: 300_000 }, () => {
    execFileSync(npm, ['pack', '--pack-destination', tmp.dir, '--silent'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = readdirSync(tmp.dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(tmp.dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
    const install = spawnSync(npm, ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', join(tmp.dir, tarball as string)], { cwd: app, encoding: 'utf8' });
    expect(install.status, install.stderr).toBe(0);

    const help = spawnSync('npx', ['--offline', 'dbprune', '--help'], { cwd: app, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/prune/);
    expect(help.stdout).toMatch(/run/);

    writeFileSync(
      join(app, 'main.mjs'),
      [
        "import { shardSource, shardsToSamples, decode, embed, assign, decide, manifestSink, solveQuotas, StreamingDbp } from 'dbprune';",
        "import { pruneExact } from 'dbprune/pipelines';",
        "import { runCustomExample } from 'dbprune/examples/custom';",
        "for (const f of [shardSource, shardsToSamples, decode, embed, assign, decide, manifestSink, solveQuotas, StreamingDbp, pruneExact]) if (typeof f !== 'function') throw new Error('missing export');",
        "const r = await runCustomExample(process.argv[2]);",
        'console.log(JSON.stringify({ filterRows: r.filter.rows, rejected: r.filter.byReason["filter:caption-length"], ownRows: r.own.rows }));',
      ].join('\n'),
    );
    const run = spawnSync(process.execPath, ['main.mjs', join(tmp.dir, 'out')], { cwd: app, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').pop() as string);
    expect(out.filterRows).toBe(1200);
    expect(out.rejected).toBeGreaterThan(0);
    expect(out.ownRows).toBe(200);
  });
});
