/** The HTTP client (imported by the download and shard-fetch stages): SSRF policy, guarded DNS lookup, transient-error vocabulary. */
export * from './http.js';
export * from './ssrf.js';
