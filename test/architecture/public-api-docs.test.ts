/**
 * Every name the package root (`dbprune`, src/index.ts) exports — runtime names and types — carries
 * a TSDoc comment on its declaration, and the root stays curated: well under 100 runtime names, and
 * no entry point uses `export *`. Read with the TypeScript compiler API from the source, so it needs
 * no build.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY_POINTS = [
  'src/index.ts',
  'src/core/index.ts',
  'src/stages/index.ts',
  'src/io/index.ts',
  'src/pipelines.ts',
  'src/kernels/index.ts',
  'src/net/index.ts',
  'src/report/index.ts',
];

interface RootExport {
  name: string;
  isValue: boolean;
  documented: boolean;
}

function rootExports(): RootExport[] {
  const entry = join(root, 'src/index.ts');
  const program = ts.createProgram({
    rootNames: [entry],
    options: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, noEmit: true },
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  if (source === undefined) throw new Error(`${entry} not in the program`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);
  return checker.getExportsOfModule(moduleSymbol).map((exported) => {
    const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const documented = ts.displayPartsToString(target.getDocumentationComment(checker)).trim().length > 0;
    return { name: exported.name, isValue: (target.flags & ts.SymbolFlags.Value) !== 0, documented };
  });
}

describe('the public API (src/index.ts)', { timeout: 120_000 }, () => {
  const exported = rootExports();

  it('exports the curated set: well under 100 runtime names, the documented ones among them', () => {
    const values = exported.filter((e) => e.isValue).map((e) => e.name);
    expect(values.length).toBeGreaterThan(50);
    expect(values.length).toBeLessThan(100);
    for (const name of ['StreamingDbp', 'planDbp', 'solveQuotas', 'sphericalKMeans', 'NearestCentroid', 'ClusterSketches', 'exactSemDedup', 'DbpruneError', 'UsageError', 'ErrorCodes', 'isDbpruneError', 'OutputSet', 'resolveModel', 'pruneExact', 'manifestSink']) {
      expect(values).toContain(name);
    }
    // Internals stay internal.
    for (const name of ['fsyncDir', 'writeFileAtomic', 'tokenMatches', 'parseIPv6', 'decideBatchRows']) expect(values).not.toContain(name);
  });

  it('every exported name has a TSDoc comment', () => {
    expect(exported.length).toBeGreaterThan(100);
    expect(exported.filter((e) => !e.documented).map((e) => e.name)).toEqual([]);
  });

  it('no entry point re-exports with export *', () => {
    const starred = ENTRY_POINTS.filter((file) => /^\s*export\s*\*/m.test(readFileSync(join(root, file), 'utf8')));
    expect(starred).toEqual([]);
  });
});
