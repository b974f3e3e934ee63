/**
 * A failed fetch attempt as the HTTP client reports it to a stage: the row reason it becomes
 * (`error:download`, `error:robots`, `error:ssrf`, `error:input`), whether a retry may help, and
 * the HTTP status and Retry-After when the server answered.
 */
import { ErrorCodes } from '../core/errors.js';

export type FetchFailureReason = 'error:download' | 'error:robots' | 'error:ssrf' | 'error:input';

export class FetchFailure extends Error {
  constructor(
    readonly reason: FetchFailureReason,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The stable error code of each reason. */
export const CODE_OF_FAILURE: Readonly<Record<FetchFailureReason, string>> = {
  'error:download': ErrorCodes.DOWNLOAD,
  'error:robots': ErrorCodes.ROBOTS,
  'error:ssrf': ErrorCodes.SSRF,
  'error:input': ErrorCodes.INPUT_FORMAT,
};
