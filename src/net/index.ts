/** The HTTP client (used by the download and shard-fetch stages): SSRF policy and guard, per-host scheduler, retry policy, response policy. */
export { SsrfError, guardOptions, isSsrfError, ssrfGuard, type SsrfGuard, type SsrfGuardOptions } from './guard.js';
export { HostScheduler, MIN_SLOWDOWN_INTERVAL_MS, type HostSchedulerOptions } from './host-scheduler.js';
export { abortedError, describeError, errorCodeOf, sleep } from './http.js';
export { DEFAULT_DISALLOWED_DIRECTIVES, contentTypeProblem, robotsDisallowed } from './response-policy.js';
export {
  RETRYABLE_NETWORK_CODES, backoffMs, honoursRetryAfter, isRetryableNetworkError, isRetryableStatus,
  parseRetryAfter, planRetry, retryPolicy, type AttemptFailure, type RetryDecision, type RetryPolicy,
  type RetryPolicyInput
} from './retry.js';
export {
  ALLOWED_SCHEMES, classifyAddress, isBlockedAddress, isIpLiteral, parseIPv4, parseIPv6, type AddressClass
} from './ssrf.js';
