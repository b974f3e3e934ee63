/**
 * Packaging: `npm pack`, install the tarball into a fresh folder offline, then from there run
 * `npx dbprune --help` and an ESM script that imports the public stages and runs the
 * custom-pipeline example on the bundled data-samples. No TypeScript runtime is involved on the
 * user's side: the bin and the library run from dist/. Then each entry point the README's "Public
 * API" documents is imported from the installed package and checked for the names listed there
 * (and for no internals), and `import('dbprune/core')` is shown to resolve no native addon.
 *
 * Offline on a fresh machine: `npm ci` fills the npm cache with tarballs but not with the registry
 * metadata that resolving the tarball's dependency ranges needs, so `npm install --offline` of the
 * tarball alone fails with ENOTCACHED on an empty cache. The app folder is therefore seeded with
 * the package's production dependency closure (`npm ls --omit=dev`, i.e. what the published
 * package.json declares) copied from this checkout's node_modules — a local mirror of exactly the
 * versions the lockfile pins — and the tarball is installed on top with an EMPTY npm cache and
 * `--offline`. A runtime import missing from `dependencies`, a file missing from `files`, or a
 * broken `bin`/`exports` still fails this test; no network is used.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixture.js';
import { parseJson } from '../helpers/json.js';
import { tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-pack-');
afterAll(() => tmp.cleanup());
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The entry points the README's "Public API" documents, each with a few of the names it lists there. */
const DOCUMENTED: Record<string, readonly string[]> = {
  dbprune: ['shardSource', 'decide', 'manifestSink', 'pruneExact', 'ingest', 'StreamingDbp', 'solveQuotas', 'sphericalKMeans', 'NearestCentroid', 'createManifestWriter', 'readNpyFloat32', 'OutputSet', 'writeReport', 'openRead', 'DbpruneError', 'ErrorCodes', 'isDbpruneError'],
  'dbprune/stages': ['shardSource', 'shardsToSamples', 'decode', 'embed', 'assign', 'dedup', 'decide', 'manifestSink', 'ASSIGN_MODES'],
  'dbprune/core': ['StreamingDbp', 'planDbp', 'solveQuotas', 'ClusterSketches', 'exactSemDedup', 'sphericalKMeansWith', 'createJsNearest', 'ThresholdSelector', 'integerOption', 'DbpruneError'],
  'dbprune/io': ['readNpyFloat32', 'createManifestWriter', 'urlListSource', 'loadCalibration', 'resolveModel', 'OutputSet', 'parseS3Uri', 'openRandomAccess'],
  'dbprune/pipelines': ['pruneExact', 'shardsToManifest', 'urlsToManifest', 'embeddingsToManifest', 'fit', 'startIngestListener'],
};
/** Internals that no entry point exports. */
const INTERNAL = ['fsyncDir', 'writeFileDurable', 'tokenMatches', 'parseIPv6', 'decideBatchRows'];
const NATIVE = /^(onnxruntime-node|onnxruntime-common|sharp|hnswlib-node|onnx-proto)(\/|$)/;

/** Copies the production dependency closure of this checkout into `app/node_modules` (hard links where the filesystem allows). */
function seedProductionDependencies(app: string): void {
  const listed = execFileSync(npm, ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repoRoot, encoding: 'utf8' });
  const rootModules = join(repoRoot, 'node_modules');
  for (const path of listed.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const rel = relative(rootModules, path);
    // the root itself, and packages nested under another package (copied with their parent)
    if (rel.startsWith('..') || rel === '' || rel.split(sep).includes('node_modules')) continue;
    const target = join(app, 'node_modules', rel);
    mkdirSync(dirname(target), { recursive: true });
    try {
      execFileSync('cp', ['-al', path, target], { stdio: 'ignore' });
    } catch {
      cpSync(path, target, { recursive: true, verbatimSymlinks: true });
    }
  }
}

describe('the npm package', () => {
  /** The app folder the tarball was installed into by the first test. */
  let installedApp: string | undefined;

  it('installs from its tarball offline; the bin and the ESM API work without TypeScript', { timeout: 300_000 }, () => {
    execFileSync(npm, ['pack', '--pack-destination', tmp.dir, '--silent'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const tarball = readdirSync(tmp.dir).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(tmp.dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
    seedProductionDependencies(app);
    // An empty cache proves nothing comes from it (a fresh machine's state); no scripts, no network.
    const env = { ...process.env, npm_config_cache: join(tmp.dir, 'empty-npm-cache') };
    const npmOffline = (args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(npm, [...args, '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, encoding: 'utf8', env });
    // bin links of the seeded packages (else npm re-fetches the packages that have bins)
    const links = npmOffline(['rebuild', '--ignore-scripts']);
    expect(links.status, String(links.stderr)).toBe(0);
    const install = npmOffline(['install', join(tmp.dir, tarball as string)]);
    expect(install.status, String(install.stderr)).toBe(0);

    const help = spawnSync('npx', ['--offline', 'dbprune', '--help'], { cwd: app, encoding: 'utf8', env });
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
    const out = parseJson<{ filterRows: number; rejected: number; ownRows: number }>(run.stdout.trim().split('\n').pop() as string);
    expect(out.filterRows).toBe(1200);
    expect(out.rejected).toBeGreaterThan(0);
    expect(out.ownRows).toBe(200);
    installedApp = app;
  });

  it('each documented entry point exports what the README lists; dbprune/core loads no native addon', { timeout: 120_000 }, () => {
    expect(installedApp, 'the install test above ran').toBeDefined();
    const app = installedApp as string;
    // Every documented entry point loads from the installed package and has the names the README lists.
    writeFileSync(
      join(app, 'entries.mjs'),
      `const out = {};\nfor (const e of ${JSON.stringify(Object.keys(DOCUMENTED))}) out[e] = Object.keys(await import(e));\nconsole.log(JSON.stringify(out));`,
    );
    const entries = spawnSync(process.execPath, ['entries.mjs'], { cwd: app, encoding: 'utf8' });
    expect(entries.status, entries.stderr).toBe(0);
    const exported = parseJson<Record<string, string[]>>(entries.stdout);
    for (const [entry, names] of Object.entries(DOCUMENTED)) {
      for (const name of names) expect(exported[entry], `${entry} exports ${name}`).toContain(name);
      for (const name of INTERNAL) expect(exported[entry], `${entry} hides ${name}`).not.toContain(name);
    }
    expect(exported.dbprune.length).toBeLessThan(100);

    // import('dbprune/core') from the installed package resolves no native addon (the hook of
    // test/core/pure-imports.test.ts records every specifier the process resolves).
    const resolvedBy = (entry: string): string[] => {
      const record = join(tmp.dir, `${entry.replace(/\W/g, '_')}-imports.txt`);
      const r = spawnSync(
        process.execPath,
        ['--import', join(repoRoot, 'test', 'helpers', 'record-imports.mjs'), '--input-type=module', '-e', `await import(${JSON.stringify(entry)});`],
        { cwd: app, encoding: 'utf8', env: { ...process.env, DBPRUNE_RECORD_IMPORTS: record } },
      );
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(record, 'utf8').split('\n').filter((l) => l.length > 0);
    };
    const core = resolvedBy('dbprune/core');
    expect(core).toContain('dbprune/core');
    expect(core.filter((l) => NATIVE.test(l))).toEqual([]);
    // Positive control: the same hook sees the root load onnxruntime-node.
    expect(resolvedBy('dbprune')).toContain('onnxruntime-node');
  });
});
