/**
 * How dbprune reaches S3: the AWS SDK's standard configuration (credentials chain, `AWS_REGION`,
 * `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`, `AWS_MAX_ATTEMPTS`) plus `AWS_S3_FORCE_PATH_STYLE`,
 * overridable by the CLI's `--s3-endpoint` / `--s3-path-style` through {@link configureS3}.
 */
import { checkOption, integerOption } from '../../core/validate.js';

/** Defaults and limits of the numeric settings (S3's own for the part size). */
const SPECS = {
  maxAttempts: { default: 5, min: 1, max: 20 },
  partSize: { default: 8 * 2 ** 20, min: 5 * 2 ** 20, max: 5 * 2 ** 30 },
  queueSize: { default: 2, min: 1, max: 16 },
} as const;

/** Settings of the S3 client and of multipart uploads. Unset fields come from the environment. */
export interface S3Settings {
  /** Endpoint of an S3-compatible store (`http://127.0.0.1:9000`). Env: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), needed for IP-address endpoints. Env: AWS_S3_FORCE_PATH_STYLE=true. */
  forcePathStyle?: boolean;
  /** Env: AWS_REGION, AWS_DEFAULT_REGION; default us-east-1. */
  region?: string;
  /** Attempts per request (the SDK's standard retry mode: exponential backoff with jitter on 5xx,
   *  throttling and connection errors). Env: AWS_MAX_ATTEMPTS; default 5. 1..20. */
  maxAttempts?: number;
  /** Multipart part size in bytes. Default 8 MiB; 5 MiB..5 GiB (S3's limits). */
  partSize?: number;
  /** Parts uploaded at once per output. Default 2; 1..16. Memory per output ≈ (queueSize + 1) × partSize. */
  queueSize?: number;
}

export type ResolvedS3Settings = Required<Omit<S3Settings, 'endpoint'>> & { endpoint?: string };

let overrides: S3Settings = {};
let generation = 0;

/** Sets S3 settings for this process (the CLI calls it from its flags). Validated here. */
export function configureS3(settings: S3Settings): void {
  const next = { ...overrides, ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) };
  validate(next);
  overrides = next;
  generation++;
}

/** Bumps whenever the settings change, so a cached client is rebuilt. */
export function s3SettingsGeneration(): number {
  return generation;
}

function validate(s: S3Settings): void {
  if (s.endpoint !== undefined) {
    checkOption(/^https?:\/\/[^/]+/i.test(s.endpoint), 's3Endpoint', 'an http(s) URL such as http://127.0.0.1:9000', s.endpoint);
  }
  // undefined stays undefined here: resolveS3Settings applies the defaults after the environment
  if (s.maxAttempts !== undefined) integerOption(s.maxAttempts, 's3MaxAttempts', SPECS.maxAttempts);
  if (s.partSize !== undefined) integerOption(s.partSize, 's3PartSize', SPECS.partSize);
  if (s.queueSize !== undefined) integerOption(s.queueSize, 's3QueueSize', SPECS.queueSize);
}

function envFlag(v: string | undefined): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  return /^(1|true|yes|on)$/i.test(v.trim());
}

/** The settings in force: {@link configureS3} overrides, then the environment, then defaults. */
export function resolveS3Settings(env: NodeJS.ProcessEnv = process.env): ResolvedS3Settings {
  const fromEnv: S3Settings = {
    endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
    forcePathStyle: envFlag(env.AWS_S3_FORCE_PATH_STYLE),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    maxAttempts: env.AWS_MAX_ATTEMPTS ? Number(env.AWS_MAX_ATTEMPTS) : undefined,
  };
  validate(fromEnv);
  const pick = <K extends keyof S3Settings>(k: K): S3Settings[K] => overrides[k] ?? fromEnv[k];
  return {
    endpoint: pick('endpoint'),
    forcePathStyle: pick('forcePathStyle') ?? false,
    region: pick('region') ?? 'us-east-1',
    maxAttempts: integerOption(pick('maxAttempts'), 's3MaxAttempts', SPECS.maxAttempts),
    partSize: integerOption(pick('partSize'), 's3PartSize', SPECS.partSize),
    queueSize: integerOption(pick('queueSize'), 's3QueueSize', SPECS.queueSize),
  };
}
