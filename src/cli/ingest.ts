/**
 * `dbprune ingest`: continuous ingestion with crash-safe checkpoints (pipelines/ingest/).
 *
 *     dbprune ingest --state st/ --out manifest/ --watch incoming/ --listen 127.0.0.1:8080
 *     ls shards/*.tar | dbprune ingest --state st/ --out manifest/ --stdin --exit-when-done
 *     dbprune ingest --state st/ --out s3://bucket/segments/ --watch incoming/   (--state stays local: its LOCK locks the prefix)
 *
 * stderr: one line when ready (`dbprune ingest: ready {json}`, with the listener's URL), one per
 * commit unless --quiet, warnings. stdout: one JSON object when the run ends (exit 0 after
 * SIGTERM/SIGINT: intake stops, in-flight work drains, a final commit is made).
 */
import type { Command } from 'commander';
import { ASSIGN_MODES, MANIFEST_FORMATS } from './choices.js';
import type { AssignMode } from '../core/nearest.js';
import type { IngestMode } from '../../pipelines/ingest/index.js';
import { UsageError } from '../core/errors.js';
import { parseListenAddress } from '../../pipelines/ingest/listener.js';
import type { ManifestFormat } from '../io/manifest.js';
import { addDbpParamOptions, dbpParamsFrom, parseChoice, parseEps, parseNumber, type DbpParamFlags } from './options.js';
import { synthetic as bundled, DEFAULT_RUN_KEEP } from './paths.js';
import { parseLocalDir } from './storage-options.js';


interface IngestFlags extends DbpParamFlags {
  state: string;
  out: string;
  watch?: string;
  stdin?: boolean;
  listen?: string;
  token?: string;
  maxBody: number;
  exitWhenDone?: boolean;
  embeddings?: boolean;
  model: string;
  centroids: string;
  calibration?: string;
  format: ManifestFormat;
  checkpointEvery: number;
  checkpointSecs: number;
  keepCommits: number;
  dedupEps?: string;
  pollMs: number;
  batchSize: number;
  downloadConcurrency: number;
  /** Deprecated alias of --download-concurrency. */
  concurrency?: number;
  allowPrivate?: boolean;
  assign: AssignMode;
  ef: number;
  quiet?: boolean;
}

/**
 * Registers `dbprune ingest` on `program`. `ctx.signal` is the graceful-stop signal (the CLI's
 * SIGTERM/SIGINT handler aborts it). Exit codes: 0 after a clean stop or `--exit-when-done`, 2 for
 * usage errors, 1 for failures (the last commit stays valid; restart resumes from it).
 */
export function registerIngest(program: Command, ctx: { signal: AbortSignal }): void {
  addDbpParamOptions(program.command('ingest'))
    .description('continuous ingestion: shards / URL lists / embeddings keep arriving; crash-safe checkpoints, resumable')
    .requiredOption('--state <dir>', 'state folder (journal, commits); resume by running again with the same one', parseLocalDir('--state', 'it relies on fsync and rename'))
    .requiredOption('--out <dir>', 'output folder or s3:// prefix for manifest segments part-<seq>.<format>')
    .option('--watch <dir>', 'take new .tar shards / URL lists (or .npy with --embeddings) appearing in this folder', parseLocalDir('--watch', 'it is polled on the local disk'))
    .option('--stdin', 'read input paths/URLs from stdin, one a line')
    .option('--listen <host:port>', 'HTTP intake + /healthz + /metrics (POST /shards, POST /urls)')
    .option('--token <secret>', 'token required on every HTTP request (required beyond loopback; or DBPRUNE_INGEST_TOKEN)')
    .option('--max-body <bytes>', 'largest HTTP request body', parseNumber('--max-body', { min: 1, max: 2 ** 30, integer: true }), 16 * 1024 * 1024)
    .option('--exit-when-done', 'exit once stdin ended, the watched folder holds nothing new and everything is committed')
    .option('--embeddings', 'inputs are .npy embeddings (keys from <name>.keys.txt) instead of images')
    .option('--model <dir>', 'ONNX image encoder (.onnx or transformers.js/optimum folder)', bundled.model)
    .option('--centroids <npy>', 'k×d centroids .npy', bundled.centroids)
    .option('--calibration <dir>', "folder with fit's calibration.json (default: beside the centroids)")
    .option('--format <fmt>', `segment format: ${MANIFEST_FORMATS.join(' | ')}`, parseChoice('--format', MANIFEST_FORMATS), 'parquet')
    .option('--checkpoint-every <n>', 'commit at least every n samples', parseNumber('--checkpoint-every', { min: 1, max: 1e9, integer: true }), 100_000)
    .option('--checkpoint-secs <s>', 'commit at least every s seconds', parseNumber('--checkpoint-secs', { min: 0.05, max: 86_400 }), 30)
    .option('--keep-commits <n>', 'commits whose state is kept as fallbacks', parseNumber('--keep-commits', { min: 1, max: 1000, integer: true }), 3)
    .option('--dedup-eps <eps>', 'SemDeDup ε before DBP (e.g. 0.05); off by default', (v: string) => (parseEps(v), v))
    .option('--poll-ms <ms>', 'watch poll interval', parseNumber('--poll-ms', { min: 10, max: 600_000, integer: true }), 1000)
    .option('--batch-size <n>', 'embedding micro-batch size', parseNumber('--batch-size', { min: 1, max: 4096, integer: true }), 64)
    .option('--download-concurrency <n>', 'image downloads in flight (URL lists)', parseNumber('--download-concurrency', { min: 1, max: 1024, integer: true }), 32)
    .option('--concurrency <n>', 'deprecated: --download-concurrency (ingest reads one shard at a time)', parseNumber('--concurrency', { min: 1, max: 1024, integer: true }))
    .option('--allow-private', 'allow shards and URL-list images on loopback/private addresses, redirects included (SSRF guard off)')
    .option('--assign <mode>', `nearest centroid: ${ASSIGN_MODES.join(' | ')}`, parseChoice('--assign', ASSIGN_MODES), 'auto')
    .option('--ef <n>', 'HNSW search breadth', parseNumber('--ef', { min: 1, max: 4096, integer: true }), 64)
    .option('-q, --quiet', 'no per-commit lines on stderr')
    .action(async (o: IngestFlags) => {
      const token = o.token ?? process.env.DBPRUNE_INGEST_TOKEN;
      if (!o.watch && !o.stdin && !o.listen && o.exitWhenDone === undefined) {
        throw new UsageError('give at least one input source: --watch DIR, --stdin or --listen HOST:PORT');
      }
      const listen = o.listen !== undefined ? { ...parseListenAddress(o.listen), token, maxBodyBytes: o.maxBody } : undefined;
      const mode: IngestMode = o.embeddings ? 'embeddings' : 'images';
      const log = (line: string): void => {
        process.stderr.write(`${line}\n`);
      };
      // `--concurrency` means shards at once in run/embed; ingest reads one shard at a time, so its old
      // `--concurrency` (image downloads) is accepted as an alias of --download-concurrency, with a note.
      if (o.concurrency !== undefined) log('dbprune ingest: note: --concurrency is deprecated here; use --download-concurrency (image downloads in flight)');
      const downloadConcurrency = o.concurrency ?? o.downloadConcurrency;
      try {
        const { ingest } = await import('../../pipelines/ingest/index.js');
        const result = await ingest({
          state: o.state,
          out: o.out,
          format: o.format,
          mode,
          model: mode === 'images' ? o.model : undefined,
          centroids: o.centroids,
          calibration: o.calibration,
          ...dbpParamsFrom(o, DEFAULT_RUN_KEEP),
          watch: o.watch,
          pollMs: o.pollMs,
          stdin: o.stdin ? process.stdin : undefined,
          listen,
          exitWhenDone: Boolean(o.exitWhenDone),
          checkpointEvery: o.checkpointEvery,
          checkpointSecs: o.checkpointSecs,
          keepCommits: o.keepCommits,
          dedupEps: o.dedupEps,
          assignMode: o.assign,
          ef: o.ef,
          embed: { batchSize: o.batchSize },
          download: { concurrency: downloadConcurrency, allowPrivate: Boolean(o.allowPrivate) },
          fetch: { allowPrivate: Boolean(o.allowPrivate) },
          signal: ctx.signal,
          warn: log,
          onReady: (info) => log(`dbprune ingest: ready ${JSON.stringify({ pid: process.pid, ...info })}`),
          onCommit: o.quiet ? undefined : (cm) => log(`dbprune ingest: commit ${JSON.stringify(cm)}`),
        });
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } finally {
        if (o.stdin) process.stdin.destroy();
      }
    });
}
