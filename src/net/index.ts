/** The HTTP client (used by the download and shard-fetch stages): SSRF policy and guard, per-host scheduler, retry policy, response policy. */
export * from './guard.js';
export * from './host-scheduler.js';
export * from './http.js';
export * from './response-policy.js';
export * from './retry.js';
export * from './ssrf.js';
