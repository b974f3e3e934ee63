/**
 * The import rule of docs/architecture.md, checked on the source: every relative import in src/ and
 * pipelines/ is resolved to its folder, and a folder may only import the folders listed for it.
 * A violation names the file, the import and the rule it breaks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Folder → the project folders it may import (itself always allowed). */
const ALLOWED: Record<string, readonly string[]> = {
  'src/core': [],
  'src/kernels': ['src/core'],
  'src/net': ['src/core'],
  'src/io': ['src/core', 'src/net'],
  'src/report': ['src/core', 'src/io'],
  'src/stages': ['src/core', 'src/kernels', 'src/net', 'src/io', 'src/report'],
  pipelines: ['src/core', 'src/kernels', 'src/net', 'src/io', 'src/report', 'src/stages'],
  'src/cluster': ['src/core', 'src/kernels', 'src/net', 'src/io', 'src/report', 'src/stages', 'pipelines'],
  'src/cli': ['src/core', 'src/kernels', 'src/net', 'src/io', 'src/report', 'src/stages', 'pipelines', 'src/cluster', 'src'],
  // The entry points (src/index.ts, src/pipelines.ts) re-export the public folders, never the CLI.
  src: ['src/core', 'src/kernels', 'src/net', 'src/io', 'src/report', 'src/stages', 'pipelines', 'src/cluster'],
};

/** Packages that load native addons or do I/O: src/core must import none of them. */
const CORE_FORBIDDEN_PACKAGES = /^(onnxruntime-node|onnx-proto|sharp|hnswlib-node|undici|bullmq|ioredis|@aws-sdk\/|node:(fs|net|http|https|dns|child_process|worker_threads)|fs|net|http|https)(\/|$)/;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The folder a project file belongs to: the longest key of ALLOWED that contains it. */
function folderOf(relPath: string): string | undefined {
  const keys = Object.keys(ALLOWED).sort((a, b) => b.length - a.length);
  const dir = dirname(relPath);
  return keys.find((k) => dir === k || dir.startsWith(`${k}/`));
}

/** Static `import … from`, `export … from` and dynamic `import('…')` specifiers (type-only included:
 *  a type import still couples the folders). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (let m = re.exec(source); m; m = re.exec(source)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Files that may break the rule, and why. */
const EXCEPTIONS: Record<string, string> = {
  // The worked example is written as a user writes it: against the package root.
  'pipelines/custom-example.ts': 'src',
};

const files = [...tsFiles(join(root, 'src')), ...tsFiles(join(root, 'pipelines'))].map((f) => relative(root, f));

describe('import rule (docs/architecture.md)', () => {
  it('finds the project files and their folders', () => {
    expect(files.length).toBeGreaterThan(50);
    const unplaced = files.filter((f) => folderOf(f) === undefined);
    expect(unplaced).toEqual([]);
  });

  it('no folder imports a folder it may not', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = folderOf(file)!;
      for (const spec of specifiers(readFileSync(join(root, file), 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = relative(root, resolve(root, dirname(file), spec));
        const to = folderOf(target.endsWith('.js') ? target : `${target}/index.js`);
        if (to === undefined || to === from) continue;
        if (EXCEPTIONS[file] === to) continue;
        if (!ALLOWED[from].includes(to)) violations.push(`${file} imports ${spec} (${from} ↛ ${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('src/core imports no native addon and does no I/O', () => {
    const violations: string[] = [];
    for (const file of files.filter((f) => folderOf(f) === 'src/core')) {
      for (const spec of specifiers(readFileSync(join(root, file), 'utf8'))) {
        if (CORE_FORBIDDEN_PACKAGES.test(spec)) violations.push(`${file} imports ${spec}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
