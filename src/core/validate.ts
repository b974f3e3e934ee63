/**
 * The one option-validation vocabulary (modelled on Node's internal `validateInteger(value, name,
 * min, max)`): each helper states the option's default and limits once, builds its error message
 * from them, and returns the value to use. Library factories call these at construction; the CLI's
 * flag parsers (src/cli/options.ts) describe their ranges with the same {@link describeRange}, so a
 * limit is written in one place and reads the same in both errors.
 *
 * The error is ERR_DBPRUNE_INVALID_OPTION, except for a `name` written as a CLI flag (`--target`):
 * library entry points whose options are the CLI's flags one to one (exact prune, the DataComp
 * filters) report those as ERR_DBPRUNE_USAGE (exit 2), worded like the CLI's own flag parsers.
 */
import { DbpruneError, ErrorCodes, UsageError } from './errors.js';

/** Limits of a numeric option. `min`/`max` are inclusive unless `exclusiveMin`/`exclusiveMax`. */
export interface NumberRange {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** A numeric option's spec: its limits and the default used when the value is `undefined`. */
export interface NumberSpec extends NumberRange {
  default?: number;
}

function fail(name: string, expected: string, got: unknown): never {
  let shown: string;
  try {
    shown = typeof got === 'function' ? 'a function' : (JSON.stringify(got) ?? String(got));
  } catch {
    shown = String(got);
  }
  if (name.startsWith('--')) throw new UsageError(`${name} must be ${expected}, got ${shown}`, { option: name.slice(2) });
  throw new DbpruneError(ErrorCodes.INVALID_OPTION, `option ${name} must be ${expected}, got ${shown}`, { option: name });
}

function fmt(n: number): string {
  if (n === Number.MAX_SAFE_INTEGER) return '2^53−1';
  if (n >= 2 ** 20 && Number.isInteger(Math.log2(n))) return `2^${Math.log2(n)}`;
  if (n >= 1e7 && Number.isInteger(Math.log10(n))) return `1e${Math.log10(n)}`;
  return String(n);
}

/** "an integer in 1..64", "a number > 0", "an integer ≥ 0", "a finite number": the range in words
 *  (`plural`: "integers in 0..255", for the elements of a list). */
export function describeRange(kind: 'integer' | 'number', r: NumberRange = {}, plural = false): string {
  const noun = kind === 'integer' ? (plural ? 'integers' : 'an integer') : plural ? 'numbers' : 'a number';
  const { min, max } = r;
  if (min !== undefined && max !== undefined && !r.exclusiveMin && !r.exclusiveMax) return `${noun} in ${fmt(min)}..${fmt(max)}`;
  const parts: string[] = [];
  if (min !== undefined) parts.push(`${r.exclusiveMin ? '>' : '≥'} ${fmt(min)}`);
  if (max !== undefined) parts.push(`${r.exclusiveMax ? '<' : '≤'} ${fmt(max)}`);
  if (parts.length === 0) return kind === 'integer' ? noun : plural ? 'finite numbers' : 'a finite number';
  return `${noun} ${parts.join(' and ')}`;
}

/** Whether `v` is a finite number (an integer when `kind` says so) within `r`. */
export function inRange(v: unknown, kind: 'integer' | 'number', r: NumberRange = {}): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  if (kind === 'integer' && !Number.isSafeInteger(v)) return false;
  if (r.min !== undefined && (r.exclusiveMin ? v <= r.min : v < r.min)) return false;
  if (r.max !== undefined && (r.exclusiveMax ? v >= r.max : v > r.max)) return false;
  return true;
}

/** An integer option: `spec.default` when `value` is undefined, else `value` if within the limits;
 *  otherwise throws ERR_DBPRUNE_INVALID_OPTION naming `name` and the range. */
export function integerOption(value: unknown, name: string, spec: NumberSpec = {}): number {
  const v = value === undefined ? spec.default : value;
  if (v === undefined) fail(name, describeRange('integer', spec), value);
  if (!inRange(v, 'integer', spec)) fail(name, describeRange('integer', spec), v);
  return v;
}

/** A finite-number option, as {@link integerOption}. */
export function numberOption(value: unknown, name: string, spec: NumberSpec = {}): number {
  const v = value === undefined ? spec.default : value;
  if (v === undefined) fail(name, describeRange('number', spec), value);
  if (!inRange(v, 'number', spec)) fail(name, describeRange('number', spec), v);
  return v;
}

/** One of a fixed list of values (a module's exported constant, e.g. `MANIFEST_FORMATS`). */
export function choiceOption<T extends string | number>(value: unknown, name: string, choices: readonly T[], fallback?: T): T {
  const v = value === undefined ? fallback : value;
  if (!(choices as readonly unknown[]).includes(v)) fail(name, `one of ${choices.join(' | ')}`, v);
  return v as T;
}

/** A list of exactly `length` numbers, each within `spec`'s limits ("3 integers in 0..255");
 *  `spec.default` when `value` is undefined. Returns the list as given. */
export function numberListOption(
  value: unknown,
  name: string,
  length: number,
  kind: 'integer' | 'number',
  spec: NumberRange & { default?: readonly number[] } = {},
): readonly number[] {
  const v = value === undefined ? spec.default : value;
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => inRange(x, kind, spec))) fail(name, `${length} ${describeRange(kind, spec, true)}`, v);
  return v;
}

/** One or more non-empty strings (paths, URLs, patterns), given as one string or a list; returns
 *  the list. `trimmed`: a string of only blanks counts as empty. For the message: `item` names an
 *  element ("path or URL"; default "string"), `orElse` what else the caller accepts ("a readable
 *  stream of lines"). */
export function stringListOption(value: unknown, name: string, spec: { trimmed?: boolean; item?: string; orElse?: string } = {}): string[] {
  const list: unknown = typeof value === 'string' ? [value] : value;
  const filled = (s: unknown): boolean => typeof s === 'string' && (spec.trimmed ? s.trim() : s).length > 0;
  if (!Array.isArray(list) || list.length === 0 || !list.every(filled)) {
    const one = `a non-empty ${spec.item ?? 'string'}`;
    fail(name, spec.orElse ? `${one}, a non-empty list of them, or ${spec.orElse}` : `${one}, or a non-empty list of them`, value);
  }
  return [...(list as string[])];
}

/** A boolean option. */
export function booleanOption(value: unknown, name: string, fallback?: boolean): boolean {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'boolean') fail(name, 'a boolean', v);
  return v;
}

/** A string option (non-empty unless `allowEmpty`). */
export function stringOption(value: unknown, name: string, spec: { default?: string; allowEmpty?: boolean } = {}): string {
  const v = value === undefined ? spec.default : value;
  if (typeof v !== 'string' || (!spec.allowEmpty && v.length === 0)) fail(name, spec.allowEmpty ? 'a string' : 'a non-empty string', v);
  return v;
}

/** An optional value that must satisfy `ok` when given (functions, signals, objects, lists). */
export function optionalOption<T>(value: unknown, name: string, expected: string, ok: (v: unknown) => boolean): T | undefined {
  if (value === undefined) return undefined;
  if (!ok(value)) fail(name, expected, value);
  return value as T;
}

/** An optional AbortSignal. */
export function signalOption(value: unknown, name = 'signal'): AbortSignal | undefined {
  return optionalOption<AbortSignal>(value, name, 'an AbortSignal', (v) => v instanceof AbortSignal);
}

/** `checkOption(ok, name, expected, got)`: for the irregular checks the typed helpers above do not
 *  express (3 finite numbers, a list of host names, a bound that depends on another option). */
export { checkOption } from './errors.js';
