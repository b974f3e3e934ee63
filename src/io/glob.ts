/**
 * Input path expansion: webdataset-style brace ranges (`shard-{00000..00099}.tar`), `{a,b}`
 * alternation, and `*` / `?` / `**` globs on local files. Hand-written because Node 20 has no
 * `fs.glob` and no installed dependency does this.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { stringListOption } from '../core/validate.js';
import { pathExists } from './fs.js';
import { isS3Uri, listLocation, parseS3Uri } from './storage/index.js';

const RANGE_RE = /^(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?$/;
/** Upper bound on what one pattern may expand to (guards against `{0..999999999}` typos). */
const MAX_EXPANSION = 10_000_000;

/** Finds the first top-level `{…}` group: [open, close] indices, or undefined. */
function findBraceGroup(s: string): [number, number] | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '{') continue;
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      if (s[j] === '{') depth++;
      else if (s[j] === '}') {
        depth--;
        if (depth === 0) return [i, j];
      }
    }
    return undefined; // unbalanced: treat the rest literally
  }
  return undefined;
}

/** Splits `a,b{c,d},e` on top-level commas. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function rangeValues(a: string, b: string, stepStr: string | undefined): string[] {
  const lo = Number(a);
  const hi = Number(b);
  const step = stepStr === undefined ? 1 : Number(stepStr);
  if (step <= 0) return [];
  // Zero-padded when either end is written with a leading zero (like braceexpand/webdataset).
  const padded = /^-?0\d/.test(a) || /^-?0\d/.test(b);
  const width = padded ? Math.max(a.replace('-', '').length, b.replace('-', '').length) : 0;
  const n = rangeCount(a, b, stepStr); // within MAX_EXPANSION: expandBraces counted first
  const dir = hi >= lo ? 1 : -1;
  const out: string[] = [];
  for (let i = 0, v = lo; i < n; i++, v += dir * step) {
    const abs = String(Math.abs(v)).padStart(width, '0');
    out.push(v < 0 ? `-${abs}` : abs);
  }
  return out;
}

/** Values a numeric range brace has (0 for a non-positive step). */
function rangeCount(a: string, b: string, stepStr: string | undefined): number {
  const step = stepStr === undefined ? 1 : Number(stepStr);
  return step <= 0 ? 0 : Math.floor(Math.abs(Number(b) - Number(a)) / step) + 1;
}

/**
 * How many strings {@link expandBraces} would produce, computed without producing them (sums over
 * alternatives, products over consecutive groups), so a pattern like `{a,b}` repeated 24 times is
 * refused before it allocates anything.
 */
export function countBraces(pattern: string): number {
  const g = findBraceGroup(pattern);
  if (!g) return 1;
  const [open, close] = g;
  const body = pattern.slice(open + 1, close);
  const rest = countBraces(pattern.slice(close + 1));
  const m = RANGE_RE.exec(body);
  if (m) return rangeCount(m[1], m[2], m[3]) * rest;
  const parts = splitTopLevel(body);
  if (parts.length < 2) return rest; // literal braces
  return parts.reduce((n, p) => n + countBraces(p), 0) * rest;
}

/**
 * Expands braces: `{00000..00003}` (zero-padded numeric range, optional `..step`) and `{a,b,c}`
 * alternation, nested and repeated, left to right in order. A group that is neither (`{x}`,
 * unbalanced) stays literal. Counts first: more than 10 million results throw
 * ERR_DBPRUNE_INVALID_OPTION before anything is expanded.
 */
export function expandBraces(pattern: string): string[] {
  const n = countBraces(pattern);
  if (n > MAX_EXPANSION) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `pattern ${pattern.length > 200 ? `${pattern.slice(0, 200)}…` : pattern} expands to ${n} items (max ${MAX_EXPANSION})`, {
      option: 'input',
    });
  }
  return expandChecked(pattern);
}

function expandChecked(pattern: string): string[] {
  const g = findBraceGroup(pattern);
  if (!g) return [pattern];
  const [open, close] = g;
  const pre = pattern.slice(0, open);
  const body = pattern.slice(open + 1, close);
  const rest = expandChecked(pattern.slice(close + 1));
  let alts: string[];
  const m = RANGE_RE.exec(body);
  if (m) alts = rangeValues(m[1], m[2], m[3]);
  else {
    const parts = splitTopLevel(body);
    if (parts.length < 2) {
      // literal braces: keep them, expand what follows
      return rest.map((r) => `${pre}{${body}}${r}`);
    }
    alts = parts.flatMap((p) => expandChecked(p));
  }
  const out: string[] = [];
  for (const a of alts) for (const r of rest) out.push(pre + a + r);
  return out;
}

/** True for http(s) URLs, which are passed through without globbing. */
export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function hasGlob(s: string): boolean {
  return /[*?]/.test(s);
}

function segmentRegex(seg: string): RegExp {
  let re = '';
  for (const c of seg) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });
/** Natural order: `shard2` before `shard10`. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<{ name: string; dir: boolean }[]> {
  try {
    const ents = await readdir(dir, { withFileTypes: true });
    const out: { name: string; dir: boolean }[] = [];
    for (const e of ents) {
      let d = e.isDirectory();
      if (e.isSymbolicLink()) d = await isDir(join(dir, e.name));
      out.push({ name: e.name, dir: d });
    }
    return out;
  } catch {
    return [];
  }
}

/** Matches a glob against the local file system; returns files (not directories), naturally sorted. */
async function globFiles(pattern: string): Promise<string[]> {
  const norm = pattern.split(sep).join('/');
  const absolute = norm.startsWith('/');
  const segs = norm.split('/').filter((s, i) => s !== '' || i === 0);
  // fixed prefix: segments without glob characters
  let i = 0;
  const fixed: string[] = [];
  for (; i < segs.length && !hasGlob(segs[i]); i++) fixed.push(segs[i]);
  let base = fixed.join('/');
  if (absolute && base === '') base = '/';
  const rest = segs.slice(i);
  const results: string[] = [];

  const walk = async (dir: string, k: number): Promise<void> => {
    const seg = rest[k];
    const last = k === rest.length - 1;
    const entries = await listDir(dir === '' ? '.' : dir);
    const joinName = (n: string): string => (dir === '' ? n : dir === '/' ? `/${n}` : `${dir}/${n}`);
    if (seg === '**') {
      // zero directories
      if (last) {
        for (const e of entries) if (!e.dir && !e.name.startsWith('.')) results.push(joinName(e.name));
      } else await walk(dir, k + 1);
      // one or more
      for (const e of entries) if (e.dir && !e.name.startsWith('.')) await walk(joinName(e.name), k);
      return;
    }
    const re = segmentRegex(seg);
    for (const e of entries) {
      if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
      if (!re.test(e.name)) continue;
      if (last) {
        if (!e.dir) results.push(joinName(e.name));
      } else if (e.dir) await walk(joinName(e.name), k + 1);
    }
  };
  await walk(base, 0);
  return [...new Set(results)].sort(naturalCompare);
}

/** Regex for a whole key suffix: `*` and `?` stay within a segment, `**` (a whole segment) spans any depth. */
function keyGlobRegex(pattern: string): RegExp {
  const segs = pattern.split('/');
  let re = '';
  segs.forEach((seg, i) => {
    const last = i === segs.length - 1;
    if (seg === '**') re += last ? '.*' : '(?:[^/]+/)*';
    else re += segmentRegex(seg).source.slice(1, -1) + (last ? '' : '/');
  });
  return new RegExp(`^${re}$`);
}

/**
 * Matches a glob against the keys of an S3 bucket: lists (ListObjectsV2, every page) the fixed
 * prefix up to the first glob character and keeps the keys the pattern matches, naturally sorted.
 */
async function globS3(pattern: string): Promise<string[]> {
  const { bucket, key } = parseS3Uri(pattern);
  const firstGlob = key.search(/[*?]/);
  const fixedDir = key.slice(0, key.lastIndexOf('/', firstGlob) + 1);
  const re = keyGlobRegex(key.slice(fixedDir.length));
  const out: string[] = [];
  for await (const e of listLocation(`s3://${bucket}/${fixedDir}`)) {
    const rest = e.location.slice(`s3://${bucket}/${fixedDir}`.length);
    if (re.test(rest)) out.push(e.location);
  }
  return out.sort(naturalCompare);
}

/**
 * Expands input patterns to a list of local paths, s3:// URIs and URLs, in order:
 * - brace ranges `{00000..00099}` (zero-padded like webdataset) and `{a,b}` alternation, for
 *   paths and URLs alike;
 * - `*`, `?` (within one path segment) and `**` (any depth) globs on local paths, results sorted
 *   naturally (`2` before `10`); hidden entries only when the pattern names them;
 * - http(s) URLs pass through (brace-expanded, never globbed or checked);
 * - `s3://bucket/key` URIs: globs are matched against a ListObjectsV2 listing of the prefix before
 *   the first glob character (all pages); a literal URI passes through unchecked, like a URL.
 * Duplicates are dropped (first occurrence wins).
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND (context.file = pattern) when a glob matches nothing or a
 *   literal local path does not exist.
 * @throws ERR_DBPRUNE_INVALID_OPTION for an empty pattern list or a range over 10M items.
 */
export async function expandInputs(patterns: string | readonly string[]): Promise<string[]> {
  const list = stringListOption(patterns, 'input', { item: 'path or URL' });
  const out: string[] = [];
  const seen = new Set<string>();
  const push = (p: string): void => {
    if (!seen.has(p)) {
      seen.add(p);
      out.push(p);
    }
  };
  for (const pattern of list) {
    for (const p of expandBraces(pattern)) {
      if (isUrl(p) || (isS3Uri(p) && !hasGlob(p))) {
        // Not checked here: one HEAD per shard would stall the start of a 100,000-shard run; the
        // reader reports a missing object (a shard becomes an error row, like a URL's 404).
        push(p);
        continue;
      }
      if (hasGlob(p)) {
        const found = isS3Uri(p) ? await globS3(p) : await globFiles(p);
        if (found.length === 0) {
          throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `no file matches ${p}`, { file: p, pattern });
        }
        found.forEach(push);
        continue;
      }
      if (!(await pathExists(p))) {
        throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${p}: no such file`, { file: p, pattern });
      }
      push(p);
    }
  }
  return out;
}
