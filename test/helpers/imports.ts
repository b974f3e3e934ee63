/**
 * The module specifiers a child process resolves (test/helpers/record-imports.mjs): for tests that
 * a heavy dependency (the AWS SDK, sharp) is loaded only where it is needed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixture.js';

export interface ResolvedImports {
  code: number | null;
  specifiers: string[];
  stderr: string;
}

/**
 * Runs `node --import tsx --import record-imports <args>` (args start with the script, e.g.
 * src/cli/main.ts, or `--input-type=module -e CODE`), recording into `file`.
 */
export function importsOf(file: string, args: string[], env: NodeJS.ProcessEnv = {}): ResolvedImports {
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--import', join(repoRoot, 'test', 'helpers', 'record-imports.mjs'), ...args], {
    env: { ...process.env, ...env, DBPRUNE_RECORD_IMPORTS: file },
    encoding: 'utf8',
    timeout: 60_000,
  });
  let specifiers: string[] = [];
  try {
    specifiers = readFileSync(file, 'utf8').split('\n');
  } catch {
    /* nothing resolved */
  }
  return { code: r.status, specifiers, stderr: r.stderr };
}

/** {@link importsOf} for a `dbprune` command (src/cli/main.ts). */
export function cliImports(file: string, cliArgs: string[], env: NodeJS.ProcessEnv = {}): ResolvedImports {
  return importsOf(file, [join(repoRoot, 'src', 'cli', 'main.ts'), ...cliArgs], env);
}
