/**
 * JSON in tests, typed: the caller names the shape it expects (e.g. `RunStats`, plus the sections
 * it reads), so that property reads are checked instead of flowing through `any`. The values are
 * still the test's to assert.
 */
import { readFileSync } from 'node:fs';

/** `JSON.parse(text)` as `T`. */
export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** A JSON file (UTF-8) as `T`. */
export function readJson<T>(path: string): T {
  return parseJson<T>(readFileSync(path, 'utf8'));
}

/** Each line of a JSONL text as `T` (a final newline is optional; any other empty line fails to parse). */
export function parseJsonLines<T>(text: string): T[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => parseJson<T>(line));
}
