/** Parsers for CLI option values: each throws UsageError (exit 2) with the flag's name. */
import type { Command } from 'commander';
import type { DbpParams } from '../core/dbp.js';
import { UsageError } from '../core/errors.js';
import { MAX_EPS_VALUES, parseEpsList } from '../core/semdedup.js';
import { SELECTION_POLICIES, type SelectionPolicy } from '../core/select.js';
import { describeRange, inRange, type NumberRange } from '../core/validate.js';

export function parseNumber(flag: string, opts: NumberRange & { integer?: boolean } = {}) {
  const kind = opts.integer ? 'integer' : 'number';
  return (value: string): number => {
    const v = Number(value);
    if (value.trim() === '' || !inRange(v, kind, opts)) {
      throw new UsageError(`${flag} must be ${describeRange(kind, opts)}, got '${value}'`, { option: flag });
    }
    return v;
  };
}

export function parseChoice<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got '${value}'`, { option: flag });
    return value as T;
  };
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses `--dedup-eps 0.01,0.02` with the library's one ε parser (src/core/semdedup.ts
 *  `parseEpsList`): 1..32 values in (0, 1); the first decides. A bad value is a usage error (exit 2). */
export function parseEps(value: string): number[] {
  try {
    return parseEpsList(value);
  } catch {
    throw new UsageError(`--dedup-eps must be 1 to ${MAX_EPS_VALUES} comma-separated numbers in (0, 1), got '${value}'`, { option: 'dedup-eps' });
  }
}

/** Parses a comma-separated list of names. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

/** Parses three comma-separated numbers (per-channel RGB mean/std). */
export function parseTriple(flag: string, opts: { positive?: boolean } = {}) {
  return (value: string): [number, number, number] => {
    const v = value.split(',').map((x) => Number(x.trim()));
    if (v.length !== 3 || v.some((x) => !Number.isFinite(x) || (opts.positive && x <= 0))) {
      throw new UsageError(`${flag} must be three comma-separated ${opts.positive ? 'positive ' : ''}numbers (R,G,B), got '${value}'`, { option: flag });
    }
    return [v[0], v[1], v[2]];
  };
}

/** Values of the DBP parameter flags (see {@link addDbpParamOptions}). */
export interface DbpParamFlags {
  keep?: number;
  temperature: number;
  numNns: number;
  balance: number;
  which: SelectionPolicy;
  seed: number;
}

/** The DBP parameters as flags, named after the paper's symbols in --help: prune, run and ingest share them. */
export function addDbpParamOptions(cmd: Command): Command {
  return cmd
    .option('--keep <ratio>', 'keep ratio r in (0, 1]: N_target = ⌊r·N⌋', parseNumber('--keep', { min: 0, exclusiveMin: true, max: 1 }))
    .option('--temperature <tau>', 'softmax temperature τ', parseNumber('--temperature', { min: 0, exclusiveMin: true }), 0.5)
    .option('--num-nns <n>', 'numNNs: nearest other centroids in d_inter', parseNumber('--num-nns', { min: 1, integer: true }), 20)
    .option('--balance <ratio>', 'class-balance ratio in [0, 1]: lb_j = min(⌊N_target/k·balance⌋, n_j−1); 0 ⇒ 1', parseNumber('--balance', { min: 0, max: 1 }), 0.5)
    .option('--which <policy>', `members kept in a cluster: ${SELECTION_POLICIES.join(' | ')}`, parseChoice('--which', SELECTION_POLICIES), 'hard')
    .option('--seed <n>', 'seed for --which random', parseNumber('--seed', { integer: true }), 0);
}

/** DbpParams from the flags; `keep` falls back to `defaultKeep` (UsageError when neither is given). */
export function dbpParamsFrom(o: DbpParamFlags, defaultKeep?: number): Required<DbpParams> {
  const keepRatio = o.keep ?? defaultKeep;
  if (keepRatio === undefined) throw new UsageError('--keep <ratio> is required', { option: 'keep' });
  return { keepRatio, temperature: o.temperature, numNNs: o.numNns, balance: o.balance, which: o.which, seed: o.seed };
}

/** Values of the two concurrency flags (see {@link addConcurrencyOptions}). */
export interface ConcurrencyFlags {
  concurrency: number;
  downloadConcurrency: number;
}

/**
 * One name per meaning, on every command that fetches: `--concurrency` = shards fetched at once
 * (the fetch-shard stage's `concurrency`), `--download-concurrency` = image downloads in flight
 * (the download stage's `concurrency`). Limits and defaults are those of the stages.
 */
export function addConcurrencyOptions(cmd: Command): Command {
  return cmd
    .option('--concurrency <n>', 'shards fetched at once', parseNumber('--concurrency', { min: 1, max: 64, integer: true }), 2)
    .option('--download-concurrency <n>', 'image downloads in flight (URL lists)', parseNumber('--download-concurrency', { min: 1, max: 1024, integer: true }), 32);
}

/** Values of `--cluster`, `--work-dir`, `--queue` (src/cli/cluster.ts `addClusterSubmitOptions`) on `prune` and `run`. */
export interface ClusterSubmitFlags {
  cluster?: string;
  workDir?: string;
  queue: string;
  redisLostMs?: number;
}

/** Throws a usage error naming the first of `flags` that `o` has set (camelCase keys, shown as
 *  --kebab-case), e.g. the flags a command does not support with --cluster. */
export function refuseFlags<T extends object>(o: T, flags: readonly (keyof T & string)[], why: string): void {
  const set = flags.find((f) => o[f] !== undefined);
  if (set === undefined) return;
  const flag = `--${set.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  throw new UsageError(`${flag} ${why}`, { option: flag.slice(2) });
}
