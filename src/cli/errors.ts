/** How the CLI turns errors into one stderr line and an exit code: 2 usage, 1 anything else. */
import { ErrorCodes, isDbpruneError } from '../core/errors.js';

export function exitCodeFor(e: unknown): number {
  if (isDbpruneError(e)) return e.code === ErrorCodes.USAGE || e.code === ErrorCodes.INVALID_OPTION ? 2 : 1;
  return 1;
}

export function oneLine(e: unknown): string {
  if (isDbpruneError(e)) return `dbprune: ${e.message} [${e.code}]`;
  if (e instanceof Error) return `dbprune: ${e.message}`;
  return `dbprune: ${String(e)}`;
}
