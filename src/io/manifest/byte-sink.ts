/**
 * Byte sinks with backpressure, for the manifest encoders: a Node Writable (stdout, a pipe) or a
 * file (local, written in place, or an s3:// multipart upload). A failed write surfaces as
 * ERR_DBPRUNE_OUTPUT naming the file; a short write to a local file is caught at `end()`.
 */
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { DbpruneError } from '../../core/errors.js';
import { outputError } from '../output-set.js';
import { isS3Uri, openWrite, type OutputObject } from '../storage/index.js';

export interface ByteSink {
  write(chunk: Uint8Array | string): Promise<void>;
  end(): Promise<void>;
}

export function writableSink(out: Writable, end: boolean, file?: string): ByteSink {
  let failure: Error | undefined;
  let bytes = 0;
  out.on('error', (e: Error) => {
    failure ??= e;
  });
  const name = file ?? (out === process.stdout ? 'stdout' : 'manifest stream');
  const fail = (e: Error): DbpruneError => outputError(name, e);
  return {
    async write(chunk) {
      if (failure) throw fail(failure);
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = (): void => {
            out.off('error', onError);
            resolve();
          };
          const onError = (e: Error): void => {
            out.off('drain', onDrain);
            reject(fail(e));
          };
          out.once('drain', onDrain);
          out.once('error', onError);
        });
      }
    },
    async end() {
      if (failure) throw fail(failure);
      if (!end) return;
      // end()'s callback gets the error of a failed write (ENOSPC, EIO): it must fail the run,
      // whether or not the 'error' event has been emitted yet.
      await new Promise<void>((resolve, reject) => {
        out.end((e?: Error | null) => (e ? reject(fail(e)) : resolve()));
      });
      if (failure) throw fail(failure);
      if (file !== undefined && !isS3Uri(file)) {
        // What is on disk, not what was handed over: a short write fails here (an s3:// upload
        // checks its parts itself).
        let size: number;
        try {
          size = (await stat(file)).size;
        } catch (e) {
          throw fail(e as Error);
        }
        if (size !== bytes) throw outputError(file, new Error(`${size} of ${bytes} bytes reached the disk`));
      }
    },
  };
}

/**
 * A sink into a local file (written in place: callers that want atomic replacement pass a temporary
 * path) or an s3:// object (src/io/storage: a multipart upload that appears under `path` only when
 * `end()` commits it; a failed write aborts it, and a run that fails before `end()` leaves it to
 * `abortPendingWrites`).
 */
export function fileSink(path: string): ByteSink {
  if (!isS3Uri(path)) return writableSink(createWriteStream(path, { highWaterMark: 1 << 20 }), true, path);
  const opening = openWrite(path);
  opening.catch(() => undefined); // surfaced by the first write or end
  let sink: ByteSink | undefined;
  const ready = async (): Promise<{ out: OutputObject; sink: ByteSink }> => {
    const out = await opening;
    sink ??= writableSink(out.stream, true, path);
    return { out, sink };
  };
  const failed = async (out: OutputObject, e: unknown): Promise<never> => {
    await out.abort();
    throw e;
  };
  return {
    async write(chunk) {
      const { out, sink } = await ready();
      await sink.write(chunk).catch((e: unknown) => failed(out, e));
    },
    async end() {
      const { out, sink } = await ready();
      await sink.end().catch((e: unknown) => failed(out, e));
      await out.commit().catch((e: unknown) => failed(out, e));
    },
  };
}
