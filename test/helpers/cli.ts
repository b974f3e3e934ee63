import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './fixture.js';

/** tsx resolved from this repository, so the CLI also runs with another working directory. */
const tsxLoader = import.meta.resolve('tsx');

/** The built CLI (`npm run build` first): what a user's `dbprune` runs. */
export const builtMain = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /** Written to stdin, which is then closed (closed at once without it). */
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** SIGKILL after this long; default 60 s. */
  timeoutMs?: number;
  /** Run the built `dist/src/cli/main.js` instead of the TypeScript sources through tsx. */
  built?: boolean;
  /** `ulimit -f` in KiB: writes past it fail with EFBIG, as a full disk fails them with ENOSPC. */
  fileSizeKiB?: number;
  /** Redirect the CLI's stdout to this file (e.g. /dev/full) instead of capturing it. */
  stdoutFile?: string;
  /** Called once the child is spawned (to signal it, or close its stdout as `| head` does). */
  onSpawn?: (child: ChildProcessWithoutNullStreams) => void;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** Runs the real `dbprune` CLI (TypeScript sources through tsx, or the built one) as a child process. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const argv = [...(opts.built ? [builtMain] : ['--import', tsxLoader, join(repoRoot, 'src', 'cli', 'main.ts')]), ...args];
  // A shell only when a limit or a redirect needs one; `exec` keeps the CLI the child (signals reach it).
  const viaShell = opts.fileSizeKiB !== undefined || opts.stdoutFile !== undefined;
  const script = [
    ...(opts.fileSizeKiB !== undefined ? [`ulimit -f ${opts.fileSizeKiB};`] : []),
    `exec ${[process.execPath, ...argv].map(quote).join(' ')}`,
    ...(opts.stdoutFile !== undefined ? [`> ${quote(opts.stdoutFile)}`] : []),
  ].join(' ');
  return new Promise((resolve, reject) => {
    const spawnOpts = { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: 'pipe' as const };
    const child = viaShell ? spawn('bash', ['-c', script], spawnOpts) : spawn(process.execPath, argv, spawnOpts);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    opts.onSpawn?.(child);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
