/**
 * `untar`: one tar byte stream in, samples out. For many shards (local or remote) use
 * `shardsToSamples` from `./fetch-shard.js`, which runs the same parser per shard.
 */
import type { Duplex } from 'node:stream';
import { generatorStage } from './generator-stage.js';
import { ErrorCodes, isDbpruneError } from '../core/errors.js';
import { integerOption, stringOption } from '../core/validate.js';
import type { ImageSample } from '../core/sample.js';
import { DEFAULT_MAX_MEMBER_BYTES, readTarSamples, shardErrorSample, type TarWarning } from '../io/tar.js';

/** Options of {@link untar}: the shard name copied into each sample and error row (default `stream.tar`), largest member read (bytes), a warning callback and a signal. */
export interface UntarOptions {
  /** Name of the shard the bytes come from; copied into each sample and the error row. Default `stream.tar`. */
  shard?: string;
  /** Largest member read into memory, bytes. Default 256 MiB, ≥ 1. */
  maxMemberBytes?: number;
  /** Called for non-fatal problems (bad JSON sidecar, second image for a key); the sample is kept. */
  onWarning?: (w: TarWarning) => void;
  signal?: AbortSignal;
}

/**
 * Stage: consumes the bytes of ONE tar shard (Buffer chunks, e.g. `fs.createReadStream('00000.tar')`
 * piped in) and emits one {@link ImageSample} per key, in tar order. Members are grouped by key
 * (`KEY.<image>` in any format sharp decodes — see IMAGE_EXTENSIONS —, `KEY.txt` caption, `KEY.json`
 * sidecar); a key without a decodable image (only `.cls`, `.bmp`, … members) gets `error:missing-image`; a sidecar that is not JSON is ignored (sample kept,
 * `onWarning` called). Memory holds one key at a time.
 *
 * A broken or truncated tar, an empty one (0 bytes, or no `KEY.ext` member), or a failing byte
 * source does not fail the stage: the samples
 * completed before the failure are emitted, then one error row with key `<shard>:shard` and reason
 * `error:untar` (or `error:download` when the upstream failed with `ERR_DBPRUNE_DOWNLOAD`).
 * Fails only with `ERR_DBPRUNE_ABORTED` on `signal`; bad options throw `ERR_DBPRUNE_INVALID_OPTION`.
 */
export function untar(opts: UntarOptions = {}): Duplex {
  const shard = stringOption(opts.shard, 'shard', { default: 'stream.tar' });
  const maxMemberBytes = integerOption(opts.maxMemberBytes, 'maxMemberBytes', { default: DEFAULT_MAX_MEMBER_BYTES, min: 1 });
  const { onWarning, signal } = opts;
  return generatorStage(async function* (source: AsyncIterable<Uint8Array | string>): AsyncGenerator<ImageSample> {
    async function* bytes(): AsyncGenerator<Uint8Array> {
      for await (const c of source) yield typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
    }
    try {
      yield* readTarSamples(bytes(), { shard, maxMemberBytes, onWarning, signal });
    } catch (e) {
      if (isDbpruneError(e) && e.code === ErrorCodes.ABORTED) throw e;
      yield shardErrorSample(shard, e);
    }
  });
}
