/** How the CLI turns errors into one stderr line and an exit code: 2 usage, 1 anything else. */
import { ErrorCodes, isDbpruneError } from '../core/errors.js';

export function exitCodeFor(e: unknown): number {
  if (isDbpruneError(e)) return e.code === ErrorCodes.USAGE || e.code === ErrorCodes.INVALID_OPTION ? 2 : 1;
  return 1;
}

/** errno codes that only writing produces: reported as ERR_DBPRUNE_OUTPUT wherever they surface. */
const OUTPUT_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EFBIG']);

/** Every line carries an ERR_DBPRUNE_* code: errors that escaped without one are labelled here. */
export function oneLine(e: unknown): string {
  if (isDbpruneError(e)) return `dbprune: ${e.message} [${e.code}]`;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const code = typeof errno === 'string' && OUTPUT_ERRNOS.has(errno) ? ErrorCodes.OUTPUT : ErrorCodes.INTERNAL;
  if (e instanceof Error) return `dbprune: ${e.message} [${code}]`;
  return `dbprune: ${String(e)} [${code}]`;
}
