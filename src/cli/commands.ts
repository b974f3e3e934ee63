/** Registers every `dbprune` sub-command on a commander program. */
// Each command loads its pipeline when it runs (dynamic import), so `dbprune prune` does not pay
// for sharp, undici, hnswlib and the image stages in start-up time or memory.
import type { Command } from 'commander';
import type { UrlListFormat } from '../io/url-list.js';
import { UsageError } from '../core/errors.js';
import { addDataCompOptions, dataCompFrom } from './datacomp-options.js';
import { addDbpParamOptions, dbpParamsFrom, parseChoice, parseEps, parseList, parseNumber, parseTriple } from './options.js';
import { Progress } from './progress.js';
import { formatSummary } from './summary.js';
import { registerIngest } from './ingest.js';
import { addClusterSubmitOptions, pruneOnCluster, registerWorker, runShardsOnCluster } from './cluster.js';
import { addImageFlags, imageOptionsFrom, registerEmbed } from './embed.js';
import { DEFAULT_RUN_KEEP } from './paths.js';
import { DEVICES, parseDevice } from '../io/devices.js';

/** img2dataset's URL-list formats (src/io/url-list.ts reads them; kept here so --help loads no reader). */
const URL_LIST_FORMATS: readonly UrlListFormat[] = ['parquet', 'csv', 'tsv', 'json', 'jsonl', 'txt'];

export interface CommandContext {
  signal: AbortSignal;
}

const FORMATS = ['parquet', 'arrow', 'jsonl'] as const;

/** Flags shared by `prune` and `run`: the DBP parameters plus output format, dedup, report and quiet. */
function dbpFlags(cmd: Command): Command {
  return addDataCompOptions(addDbpParamOptions(cmd))
    .option('--format <fmt>', `manifest format: ${FORMATS.join(' | ')}`, parseChoice('--format', FORMATS), 'parquet')
    .option('--dedup-eps <eps>', 'SemDeDup before DBP: ε (comma-separated list: the first decides, all are reported)', parseEps)
    .option('--no-report', 'do not write report.html')
    .option('-q, --quiet', 'no progress on stderr');
}

export function registerCommands(program: Command, ctx: CommandContext): void {
  const prune = dbpFlags(
    program
      .command('prune')
      .description('exact DBP over precomputed embeddings (two passes; reproduces the reference method)')
      .option('--target <n>', 'absolute N_target instead of --keep (kept samples, after filters and SemDeDup)', parseNumber('--target', { min: 1, integer: true }))
      .option('--embeddings <npy...>', '.npy file(s), glob, or a clip-retrieval folder (img_emb/ + metadata/)')
      .option('--keys <txt>', 'keys.txt, one key per embedding row')
      .option('--metadata <parquet...>', 'parquet metadata paired with the .npy files (key/uid/url/caption)')
      .requiredOption('--centroids <npy>', 'k×d centroids (.npy), from `dbprune fit`, faiss or SemDeDup')
      .requiredOption('--out <dir>', 'output folder')
      .option('--backend <b>', 'nearest-centroid backend: auto | ort | js', parseChoice('--backend', ['auto', 'ort', 'js'] as const), 'auto')
      .option('--json', 'print the stats totals as JSON on stdout instead of the summary'),
  );
  addClusterSubmitOptions(prune).action(async (o) => {
    if (o.cluster === undefined && (o.workDir !== undefined || o.queue !== 'dbprune')) throw new UsageError('--work-dir and --queue need --cluster', { option: 'work-dir' });
    if (o.cluster !== undefined) {
      if (o.dedupEps !== undefined) throw new UsageError('--dedup-eps is not supported with --cluster yet', { option: 'dedup-eps' });
      const dataCompFlag = ['datacomp', 'target', 'clipScoreMin', 'clipScoreTop', 'basicFilter', 'basicFilterNoLanguage', 'textModel'].find((f) => o[f] !== undefined);
      if (dataCompFlag) throw new UsageError(`--${dataCompFlag.replace(/[A-Z]/g, (c: string) => `-${c.toLowerCase()}`)} is not supported with --cluster yet`, { option: dataCompFlag });
      if (!o.embeddings) throw new UsageError('--cluster needs --embeddings', { option: 'embeddings' });
      await pruneOnCluster(o, dbpParamsFrom(o), ctx);
      return;
    }
    const progress = new Progress({ label: 'prune', quiet: o.quiet });
    const { pruneExact } = await import('../../pipelines/exact-prune.js');
    if (o.textModel) throw new UsageError('--text-model scores images: use it with `dbprune run` on shards or --urls', { option: 'text-model' });
    const dc = dataCompFrom(o);
    if (!o.embeddings && !dc.datacomp) throw new UsageError('give --embeddings or --datacomp', { option: 'embeddings' });
    const result = await pruneExact({
      embeddings: o.embeddings,
      keys: o.keys,
      metadata: o.metadata,
      centroids: o.centroids,
      out: o.out,
      ...dbpParamsFrom(o, o.target !== undefined ? 1 : undefined),
      ...(o.target !== undefined ? { keepRatio: o.keep, target: o.target } : {}),
      ...dc,
      format: o.format,
      backend: o.backend,
      dedupEps: o.dedupEps,
      report: o.report,
      signal: ctx.signal,
      onProgress: (p) => progress.update({ samples: p.samples, total: p.total, kept: p.kept, errors: p.errors }),
    });
    progress.clear();
    if (o.json) process.stdout.write(`${JSON.stringify(result.stats.totals)}\n`);
    else process.stdout.write(formatSummary(result.stats, result.files));
  });

  addImageFlags(
    program
      .command('fit')
      .description('spherical k-means centroids + calibration statistics for streaming mode, from embeddings or straight from images')
      .argument('[shards...]', 'image shards to embed a uniform sample of (with --model), instead of --embeddings')
      .option('--embeddings <npy...>', '.npy file(s), glob, or a clip-retrieval folder')
      .option('--datacomp <dir...>', 'DataComp shards: a folder or globs of NNNNNNNN.parquet (+ .npz beside them)')
      .option('--embedding-key <member>', 'npz member with --datacomp: l14_img | b32_img', 'l14_img')
      .option('-k, --k <k>', 'number of clusters', parseNumber('-k', { min: 1, integer: true }), 500)
      .option('--centroids <npy>', 'use these centroids (faiss/SemDeDup .npy) instead of k-means; only calibrate')
      .option('--sample <n>', 'uniform reservoir sample size (rows, or images embedded)', parseNumber('--sample', { min: 1, integer: true }), 100_000)
      .option('--iters <n>', 'k-means iterations', parseNumber('--iters', { min: 1, integer: true }), 25)
      .option('--seed <n>', 'random seed', parseNumber('--seed', { integer: true }), 0)
      .option('--minibatch', 'mini-batch k-means instead of Lloyd')
      .requiredOption('--out <dir>', 'output folder for centroids.npy and calibration.json')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(async (shards: string[], o) => {
    const common = {
      k: o.k,
      centroids: o.centroids,
      sample: o.sample,
      iters: o.iters,
      seed: o.seed,
      minibatch: Boolean(o.minibatch),
      out: o.out,
      signal: ctx.signal,
      log: o.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`),
    };
    if (o.embeddings || o.datacomp) {
      if (o.embeddings && o.datacomp) throw new UsageError('give one of --embeddings and --datacomp', { option: 'embeddings' });
      if (shards.length > 0 || o.urls) throw new UsageError('give one input: --embeddings, --datacomp, shards or --urls');
      const { fit } = await import('../../pipelines/fit.js');
      process.stdout.write(`${JSON.stringify(await fit({ ...common, embeddings: o.embeddings, datacomp: o.datacomp, embeddingKey: o.embeddingKey }))}\n`);
      return;
    }
    if (shards.length === 0 && !o.urls) throw new UsageError('give --embeddings, or image shards (or --urls) with --model');
    const images = imageOptionsFrom(shards, o);
    const { fitFromImages } = await import('../../pipelines/fit-images.js');
    process.stdout.write(`${JSON.stringify(await fitFromImages({ ...common, ...images }))}\n`);
  });

  const run = dbpFlags(
    program
      .command('run')
      .description('streaming DBP: shards (or precomputed embeddings) in, pruned manifest out; no arguments = the bundled data-samples')
      .argument('[shards...]', "shard paths, URLs, brace ranges ('{00000..00099}.tar'), folders, or - to read them from stdin")
      .option('--embeddings <npy...>', 'stream precomputed embeddings instead of images (.npy, glob, or clip-retrieval folder)')
      .option('--keys <txt>', 'keys.txt for --embeddings')
      .option('--metadata <parquet...>', 'parquet metadata for --embeddings')
      .option('--model <dir>', 'ONNX image encoder (.onnx or transformers.js/optimum folder); default: the bundled real MobileNetV2 with no input, else the tiny synthetic encoder')
      .option('--image-size <px>', "model input side (default: the model's preprocessor_config.json, else 224)", parseNumber('--image-size', { min: 1, max: 8192, integer: true }))
      .option('--resize-mode <mode>', 'shortest-center-crop (CLIP) | squash', parseChoice('--resize-mode', ['shortest-center-crop', 'squash'] as const))
      .option('--mean <r,g,b>', "per-channel mean after scaling to [0, 1] (default: the model's config, else CLIP's)", parseTriple('--mean'))
      .option('--std <r,g,b>', "per-channel std (default: the model's config, else CLIP's)", parseTriple('--std', { positive: true }))
      .option('--device <device>', `where the image encoder runs: ${DEVICES.join(' | ')} (cuda:1 = a device id); GPU providers need onnxruntime-node's GPU binaries (README: GPU)`, (v: string) => (parseDevice(v), v.trim().toLowerCase()))
      .option('--input-name <name>', 'model input to feed (default: pixel_values, else the first)')
      .option('--output-name <name>', 'model output to read (default: image_embeds, else pooler_output, else the first)')
      .option('--centroids <npy>', 'k×d centroids .npy; default: the bundled real ones with no input, else the synthetic ones')
      .option('--calibration <dir>', "folder with fit's calibration.json (default: beside the centroids)")
      .option('--out <dir>', 'output folder; without it, JSONL manifest rows go to stdout (default out/ for the bundled sample)')
      .option('--concurrency <n>', 'shards fetched at once', parseNumber('--concurrency', { min: 1, max: 64, integer: true }), 2)
      .option('--batch-size <n>', 'embedding micro-batch size', parseNumber('--batch-size', { min: 1, max: 4096, integer: true }), 64)
      .option('--assign <mode>', 'nearest centroid: auto | exact | hnsw', parseChoice('--assign', ['auto', 'exact', 'hnsw'] as const), 'auto')
      .option('--ef <n>', 'HNSW search breadth', parseNumber('--ef', { min: 1, max: 4096, integer: true }), 64)
      .option('--urls <list...>', 'URL list(s) to download: parquet/csv/tsv/json/jsonl/txt (also .gz), a folder, or - for stdin')
      .option('--input-format <fmt>', `URL list format (required for stdin): ${URL_LIST_FORMATS.join(' | ')}`, parseChoice('--input-format', URL_LIST_FORMATS))
      .option('--url-col <name>', 'URL column', 'url')
      .option('--caption-col <name>', 'caption column (default caption; when not given and absent, rows have no caption; when given, it must exist)')
      .option('--save-additional-columns <cols>', 'comma-separated extra columns kept in the sidecars and shard parquet', parseList)
      .option('--samples-per-shard <n>', 'img2dataset number_sample_per_shard (keys and --write-shards)', parseNumber('--samples-per-shard', { min: 1, integer: true }), 10_000)
      .option('--download-concurrency <n>', 'downloads in flight', parseNumber('--download-concurrency', { min: 1, max: 1024, integer: true }), 32)
      .option('--user-agent-token <token>', 'added to the user agent (e.g. your project or contact)')
      .option('--allow-private', 'allow image and shard URLs (and redirects) resolving to loopback/private/link-local addresses (SSRF guard off; hosts of shard URLs given as arguments are always allowed)')
      .option('--write-shards <dir>', 'also write the kept samples as webdataset shards (img2dataset layout)'),
  );
  addClusterSubmitOptions(run).action(async (shards: string[], o) => {
    if (o.cluster !== undefined) {
      await runShardsOnCluster(shards, o, dbpParamsFrom(o, DEFAULT_RUN_KEEP), ctx);
      return;
    }
    if (o.workDir !== undefined || o.queue !== 'dbprune') throw new UsageError('--work-dir and --queue need --cluster', { option: 'work-dir' });
    const { runStreaming } = await import('./run.js');
    await runStreaming(shards, o, ctx);
  });

  registerEmbed(program, ctx);
  registerIngest(program, ctx);
  registerWorker(program, ctx);

  program
    .command('report')
    .description('write report.html for an output folder (stats.json, thumbnails.json)')
    .argument('<out-dir>', 'a folder written by prune or run')
    .action(async (outDir: string) => {
      const { writeReport } = await import('../io/report-html.js');
      const path = await writeReport(outDir, { signal: ctx.signal });
      process.stdout.write(`${path}\n`);
    });
}

