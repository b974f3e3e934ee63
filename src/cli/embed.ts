/**
 * `dbprune embed` (images → clip-retrieval embeddings) and the image half of `dbprune fit`
 * (`fit <shards…> --model M`): the flags they share and the glue from flags to the pipelines.
 */
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import type { UrlListFormat } from '../io/url-list.js';
import type { ImageInputOptions } from '../../pipelines/images-to-embeddings.js';
import type { ImageEncoderOptions } from '../../pipelines/decision-tail.js';
import { addConcurrencyOptions, parseChoice, parseList, parseNumber } from './options.js';
import { addEncoderFlags, embedOptionsFrom } from './encoder-flags.js';
import { Progress, fmtInt } from './progress.js';
import type { CommandContext } from './context.js';
import { URL_LIST_FORMATS } from './choices.js';

/** Flags of an image input (shards or --urls) and its encoder, as `run` spells them. */
export interface ImageFlags {
  model?: string;
  imageSize?: number;
  resizeMode?: 'shortest-center-crop' | 'squash';
  mean?: [number, number, number];
  std?: [number, number, number];
  inputName?: string;
  outputName?: string;
  batchSize: number;
  rowsPerRun?: number;
  device?: string;
  concurrency: number;
  urls?: string[];
  inputFormat?: UrlListFormat;
  urlCol: string;
  captionCol: string;
  saveAdditionalColumns?: string[];
  samplesPerShard: number;
  downloadConcurrency: number;
  userAgentToken?: string;
  allowPrivate?: boolean;
  quiet?: boolean;
}

/** Adds the image-input and encoder flags (same names and limits as `run`). */
export function addImageFlags(cmd: Command): Command {
  return addEncoderFlags(addConcurrencyOptions(cmd).option('--model <dir>', 'ONNX image encoder (.onnx or transformers.js/optimum folder)'))
    .option('--urls <list...>', 'URL list(s) to download: parquet/csv/tsv/json/jsonl/txt (also .gz), a folder, or - for stdin')
    .option('--input-format <fmt>', `URL list format (required for stdin): ${URL_LIST_FORMATS.join(' | ')}`, parseChoice('--input-format', URL_LIST_FORMATS))
    .option('--url-col <name>', 'URL column', 'url')
    .option('--caption-col <name>', 'caption column', 'caption')
    .option('--save-additional-columns <cols>', 'comma-separated extra columns kept in the metadata', parseList)
    .option('--samples-per-shard <n>', 'img2dataset number_sample_per_shard (keys of --urls rows)', parseNumber('--samples-per-shard', { min: 1, integer: true }), 10_000)
    .option('--user-agent-token <token>', 'added to the user agent (e.g. your project or contact)')
    .option('--allow-private', 'allow URLs resolving to loopback/private/link-local addresses (SSRF guard off)');
}

/** Decode overrides from the image flags; only the flags given (the model's config fills the rest). */
export function decodeOverrides(o: Pick<ImageFlags, 'imageSize' | 'resizeMode' | 'mean' | 'std'>): NonNullable<ImageEncoderOptions['decode']> {
  const d: NonNullable<ImageEncoderOptions['decode']> = {};
  if (o.imageSize !== undefined) d.size = o.imageSize;
  if (o.resizeMode !== undefined) d.mode = o.resizeMode;
  if (o.mean !== undefined) d.mean = o.mean;
  if (o.std !== undefined) d.std = o.std;
  return d;
}

/** Input + encoder options of the image pipelines from the flags; exactly one of shards / --urls. */
export function imageOptionsFrom(shards: string[], o: ImageFlags): ImageInputOptions & ImageEncoderOptions {
  if (shards.length > 0 && o.urls) throw new UsageError('give one input: shards or --urls');
  if (shards.length === 0 && !o.urls) throw new UsageError('give shards (paths, URLs, brace ranges, folders, or - for stdin) or --urls');
  if (!o.model) throw new UsageError('--model is required with image input (an .onnx file or a transformers.js/optimum folder)');
  const encoder: ImageEncoderOptions = { model: o.model, decode: decodeOverrides(o), embed: embedOptionsFrom(o) };
  if (o.urls) {
    const stdin = o.urls.length === 1 && o.urls[0] === '-';
    if (stdin && !o.inputFormat) throw new UsageError('--urls - (stdin) needs --input-format');
    return {
      ...encoder,
      urls: stdin ? process.stdin : o.urls,
      list: { format: o.inputFormat, urlCol: o.urlCol, captionCol: o.captionCol, saveAdditionalColumns: o.saveAdditionalColumns, samplesPerShard: o.samplesPerShard },
      download: { concurrency: o.downloadConcurrency, userAgentToken: o.userAgentToken, allowPrivate: Boolean(o.allowPrivate) },
    };
  }
  return { ...encoder, inputs: shards.length === 1 && shards[0] === '-' ? process.stdin : shards, fetch: { concurrency: o.concurrency } };
}

export function registerEmbed(program: Command, ctx: CommandContext): void {
  addImageFlags(
    program
      .command('embed')
      .description('images (shards or --urls) → embeddings in the clip-retrieval layout (img_emb/*.npy + metadata/*.parquet), for prune and fit')
      .argument('[shards...]', "shard paths, URLs, brace ranges ('{00000..00099}.tar'), folders, or - to read them from stdin")
      .requiredOption('--out <dir>', 'output folder or s3:// prefix (img_emb/, metadata/, embed.json)')
      .option('--format <fmt>', 'embedding format: npy', parseChoice('--format', ['npy'] as const), 'npy')
      .option('--part-rows <n>', 'samples per output part (the unit of resuming)', parseNumber('--part-rows', { min: 1, max: 1e9, integer: true }), 100_000)
      .option('--no-resume', 'start over instead of keeping the complete parts already in --out')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(async (shards: string[], o: ImageFlags & { out: string; partRows: number; resume: boolean }) => {
    const options = imageOptionsFrom(shards, o);
    const progress = new Progress({ label: 'embed', quiet: o.quiet, keptLabel: 'embedded' });
    const { imagesToEmbeddings } = await import('../../pipelines/images-to-embeddings.js');
    const r = await imagesToEmbeddings({
      ...options,
      out: o.out,
      partRows: o.partRows,
      resume: o.resume,
      signal: ctx.signal,
      onProgress: (p) => progress.update({ samples: p.samples, kept: p.samples - p.errors, errors: p.errors }),
    });
    progress.done({ samples: r.samples, kept: r.embedded, errors: r.errors });
    const rate = r.samples / Math.max(1e-9, r.seconds);
    const reasons = Object.entries(r.errorsByReason).map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ');
    const lines = [
      `embedded ${fmtInt(r.embedded)} of ${fmtInt(r.samples)} samples (${fmtInt(r.errors)} errors${reasons ? `: ${reasons}` : ''}) in ${r.seconds.toFixed(1)} s, ${rate.toFixed(1)} rows/s, d = ${r.dim}`,
      ...(r.resumedParts > 0 ? [`resumed: kept ${r.resumedParts} complete part(s), ${fmtInt(r.resumedSamples)} samples`] : []),
      `wrote ${r.parts.length} part(s): ${o.out}/img_emb/img_emb_N.npy + ${o.out}/metadata/metadata_N.parquet`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
