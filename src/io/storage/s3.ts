/**
 * The S3 storage backend: AWS SDK for JavaScript v3 (`@aws-sdk/client-s3`, multipart uploads with
 * `@aws-sdk/lib-storage`), loaded lazily on the first s3:// location so that local runs and
 * `--help` never pay for it. Signing, credentials (the standard chain) and retries (standard mode:
 * exponential backoff with jitter on 5xx, throttling and connection errors) are the SDK's.
 */
import { PassThrough, Readable, Writable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { DbpruneError, ErrorCodes } from '../../core/errors.js';
import { resolveS3Settings, s3SettingsGeneration } from './s3-config.js';
import type { OpenReadOptions, OutputObject, RandomAccessReader, StorageBackend, StorageEntry, StorageStat } from './types.js';
import { finalNameOf } from './staging.js';
import { formatS3Uri, parseS3Uri } from './uri.js';

type ClientModule = typeof import('@aws-sdk/client-s3');
type StorageModule = typeof import('@aws-sdk/lib-storage');

interface Sdk {
  s3: ClientModule;
  lib: StorageModule;
  client: S3Client;
}

let cached: { generation: number; sdk: Promise<Sdk> } | undefined;

/** The SDK modules and a client built from the settings in force (rebuilt when they change). */
async function sdk(): Promise<Sdk> {
  // The SDK warns once (on stderr) that its 2027 releases will need Node 22; dbprune's CLI promises
  // one stderr line per failure, so that notice stays off unless the user set the variable.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const generation = s3SettingsGeneration();
  if (cached?.generation !== generation) {
    const settings = resolveS3Settings();
    cached = {
      generation,
      sdk: Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, lib]) => ({
        s3,
        lib,
        client: new s3.S3Client({
          region: settings.region,
          endpoint: settings.endpoint,
          forcePathStyle: settings.forcePathStyle,
          maxAttempts: settings.maxAttempts,
          retryMode: 'standard',
        }),
      })),
    };
  }
  return cached.sdk;
}

type Operation = 'read' | 'write' | 'list' | 'stat';

interface SdkErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const AUTH_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'CredentialsProviderError', 'ExpiredToken', 'InvalidToken']);

/** Maps an SDK failure to an ERR_DBPRUNE_* error naming the URI. */
export function s3Error(e: unknown, location: string, op: Operation, signal?: AbortSignal): DbpruneError {
  if (e instanceof DbpruneError) return e;
  const uri = finalNameOf(location); // a staged output is reported under the name the user gave
  const err = (e ?? {}) as SdkErrorShape;
  const name = err.name ?? 'Error';
  const status = err.$metadata?.httpStatusCode;
  const ctx = { file: uri, url: uri, s3Error: name, status };
  if (signal?.aborted || name === 'AbortError') return new DbpruneError(ErrorCodes.ABORTED, `${uri}: aborted`, ctx, { cause: e });
  const { bucket } = parseS3Uri(uri);
  if (name === 'NoSuchBucket') {
    const code = op === 'write' ? ErrorCodes.STORAGE : ErrorCodes.INPUT_NOT_FOUND;
    return new DbpruneError(code, `${uri}: bucket ${bucket} does not exist`, ctx, { cause: e });
  }
  if (name === 'CredentialsProviderError') {
    return new DbpruneError(
      ErrorCodes.STORAGE_AUTH,
      `${uri}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run where a role provides them): ${err.message ?? ''}`,
      ctx,
      { cause: e },
    );
  }
  if (AUTH_ERRORS.has(name) || status === 401 || status === 403) {
    return new DbpruneError(
      ErrorCodes.STORAGE_AUTH,
      `${uri}: the object store refused the request (${name}${status ? `, HTTP ${status}` : ''}); check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket's permissions`,
      ctx,
      { cause: e },
    );
  }
  if (op !== 'write' && (name === 'NoSuchKey' || name === 'NotFound' || status === 404)) {
    return new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${uri}: no such object`, ctx, { cause: e });
  }
  const what = { read: 'reading', write: 'writing', list: 'listing', stat: 'looking up' }[op];
  return new DbpruneError(ErrorCodes.STORAGE, `${what} ${uri} failed: ${name}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`, ctx, { cause: e });
}

async function openRead(uri: string, opts: OpenReadOptions = {}): Promise<Readable> {
  const { s3, client } = await sdk();
  const { bucket, key } = parseS3Uri(uri);
  const range = opts.start !== undefined || opts.end !== undefined ? `bytes=${opts.start ?? 0}-${opts.end === undefined ? '' : opts.end - 1}` : undefined;
  try {
    const res = await client.send(new s3.GetObjectCommand({ Bucket: bucket, Key: key, Range: range }), { abortSignal: opts.signal });
    const body = res.Body;
    if (body === undefined) return Readable.from([]);
    return body as Readable;
  } catch (e) {
    throw s3Error(e, uri, 'read', opts.signal);
  }
}

async function headSize(uri: string, signal?: AbortSignal): Promise<number | undefined> {
  const { s3, client } = await sdk();
  const { bucket, key } = parseS3Uri(uri);
  if (key === '' || key.endsWith('/')) return undefined;
  try {
    const res = await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return res.ContentLength ?? 0;
  } catch (e) {
    const mapped = s3Error(e, uri, 'stat', signal);
    if (mapped.code === ErrorCodes.INPUT_NOT_FOUND) return undefined;
    throw mapped;
  }
}

async function openRandomAccess(uri: string, signal?: AbortSignal): Promise<RandomAccessReader> {
  const size = await headSize(uri, signal);
  if (size === undefined) {
    await stat(uri, signal); // a missing bucket says so
    throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${uri}: no such object`, { file: uri, url: uri });
  }
  return {
    location: uri,
    size,
    async read(buf, position, readSignal) {
      const end = Math.min(size, position + buf.length);
      if (end <= position) return 0;
      const body = await openRead(uri, { start: position, end, signal: readSignal ?? signal });
      let got = 0;
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          const n = Math.min(chunk.length, buf.length - got);
          buf.set(n === chunk.length ? chunk : chunk.subarray(0, n), got);
          got += n;
        }
      } catch (e) {
        throw s3Error(e, uri, 'read', readSignal ?? signal);
      }
      return got;
    },
    close: () => Promise.resolve(),
  };
}

async function* list(prefixUri: string, signal?: AbortSignal, maxKeys?: number): AsyncGenerator<StorageEntry> {
  const { s3, client } = await sdk();
  const { bucket, key } = parseS3Uri(prefixUri);
  let token: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token, MaxKeys: maxKeys }), { abortSignal: signal });
    } catch (e) {
      throw s3Error(e, prefixUri, 'list', signal);
    }
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined && !o.Key.endsWith('/')) yield { location: formatS3Uri({ bucket, key: o.Key }), size: o.Size ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined && maxKeys === undefined);
}

/** An object is a file; a key with objects under `key/` (or the bucket root) is a directory. */
async function stat(uri: string, signal?: AbortSignal): Promise<StorageStat | undefined> {
  const size = await headSize(uri, signal);
  if (size !== undefined) return { kind: 'file', size };
  const { bucket, key } = parseS3Uri(uri);
  const dirPrefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  for await (const _ of list(formatS3Uri({ bucket, key: dirPrefix }), signal, 1)) return { kind: 'directory', size: 0 };
  return undefined;
}

/**
 * A multipart upload fed by a bounded stream: parts of `partSize` bytes are uploaded as they fill
 * (at most `queueSize` at once, so memory stays near (queueSize + 1) × partSize whatever the
 * output's length); the last part is held until `commit()`, which completes the upload (or makes
 * the single PUT of an output smaller than one part). A failure or `abort()` aborts the multipart
 * upload, so no object ever appears under the final name.
 */
async function openWrite(uri: string): Promise<OutputObject> {
  const { lib, client } = await sdk();
  const settings = resolveS3Settings();
  const { bucket, key } = parseS3Uri(uri);
  if (key === '' || key.endsWith('/')) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `${uri}: an output object needs a key, not a prefix`, { file: uri });
  }
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  const upload = new lib.Upload({
    client,
    params: { Bucket: bucket, Key: key, Body: body },
    partSize: settings.partSize,
    queueSize: settings.queueSize,
    leavePartsOnError: false,
  });
  let failure: DbpruneError | undefined;
  let blocked: ((e?: Error) => void) | undefined;
  let state: 'open' | 'committing' | 'committed' | 'aborted' = 'open';
  const stream: Writable = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (failure) return cb(failure);
      if (body.write(chunk)) return cb();
      blocked = cb;
      body.once('drain', () => {
        const f = blocked;
        blocked = undefined;
        f?.();
      });
    },
    // Ending the stream does not complete the upload: commit() does.
    final(cb) {
      cb(failure);
    },
  });
  // Failures also surface from write() callbacks and commit(); never as an unhandled 'error'.
  stream.on('error', () => undefined);
  const settled = upload.done().then(
    () => undefined,
    (e: unknown) => {
      failure ??= s3Error(e, uri, 'write');
      const f = blocked;
      blocked = undefined;
      f?.(failure);
      if (state === 'open') stream.destroy(failure);
    },
  );
  return {
    location: uri,
    stream,
    async commit() {
      if (state !== 'open') return;
      state = 'committing';
      if (!stream.writableFinished && !failure) {
        await new Promise<void>((resolve, reject) => {
          stream.once('error', reject);
          stream.end(() => resolve());
        }).catch((e: unknown) => {
          failure ??= s3Error(e, uri, 'write');
        });
      }
      if (failure) {
        body.destroy(failure);
      } else body.end();
      await settled;
      if (failure) {
        state = 'aborted';
        throw failure;
      }
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      failure ??= new DbpruneError(ErrorCodes.ABORTED, `${uri}: upload aborted`, { file: uri });
      // Failing the body makes lib-storage abort the multipart upload before done() settles.
      body.destroy(failure);
      stream.destroy();
      await settled;
    },
  };
}

async function remove(uri: string): Promise<void> {
  const { s3, client } = await sdk();
  const { bucket, key } = parseS3Uri(uri);
  try {
    await client.send(new s3.DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    throw s3Error(e, uri, 'write');
  }
}

/** CopyObject copies at most 5 GiB; larger objects are copied in parts (UploadPartCopy). */
const COPY_OBJECT_LIMIT = 5 * 2 ** 30;
const COPY_PART_BYTES = 2 ** 30;

/** `bucket/key` URL-encoded for CopySource (slashes kept). */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}

/** Server-side multipart copy of an object over 5 GiB, aborted on failure. */
async function copyInParts(src: { bucket: string; key: string }, dst: { bucket: string; key: string }, size: number): Promise<void> {
  const { s3, client } = await sdk();
  const { UploadId } = await client.send(new s3.CreateMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key }));
  try {
    const parts: { ETag?: string; PartNumber: number }[] = [];
    for (let start = 0, n = 1; start < size; start += COPY_PART_BYTES, n++) {
      const end = Math.min(size, start + COPY_PART_BYTES) - 1;
      const r = await client.send(
        new s3.UploadPartCopyCommand({ Bucket: dst.bucket, Key: dst.key, UploadId, PartNumber: n, CopySource: copySource(src.bucket, src.key), CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ ETag: r.CopyPartResult?.ETag, PartNumber: n });
    }
    await client.send(new s3.CompleteMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (e) {
    await client.send(new s3.AbortMultipartUploadCommand({ Bucket: dst.bucket, Key: dst.key, UploadId })).catch(() => undefined);
    throw e;
  }
}

/**
 * Moves a complete object to `to`: a server-side copy (no bytes pass through this process), then
 * the source is deleted. The destination is replaced whole: readers see the old or the new object.
 */
async function move(from: string, to: string): Promise<void> {
  const { s3, client } = await sdk();
  const src = parseS3Uri(from);
  const dst = parseS3Uri(to);
  const size = await headSize(from);
  if (size === undefined) throw new DbpruneError(ErrorCodes.STORAGE, `${to}: its staged object ${from} is gone`, { file: to, url: from });
  try {
    if (size > COPY_OBJECT_LIMIT) await copyInParts(src, dst, size);
    else await client.send(new s3.CopyObjectCommand({ Bucket: dst.bucket, Key: dst.key, CopySource: copySource(src.bucket, src.key) }));
  } catch (e) {
    throw s3Error(e, to, 'write');
  }
  await remove(from);
}

export const s3Backend: StorageBackend = { openRead, openRandomAccess, stat, list, openWrite, remove, move };
