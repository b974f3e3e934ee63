// `device` / `--device`: the execution provider list handed to ORT, a real run on cpu, and the
// error a user gets when the GPU provider's binaries are not installed (as in this project's own
// checkout: .npmrc says onnxruntime-node-install=skip).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import type { DecodedSample, EmbeddingBatch } from '../../src/core/sample.js';
import { executionProviders, parseDevice } from '../../src/io/devices.js';
import { embed, embedSettings } from '../../src/stages/embed.js';
import { writeTinyModel } from '../../scripts/make-model.js';
import { runCli } from '../helpers/cli.js';
import { runThrough, tempDir } from './image-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let modelDir: string;
beforeAll(() => {
  tmp = tempDir();
  modelDir = join(tmp.dir, 'model');
  writeTinyModel(modelDir);
});
afterAll(() => tmp.cleanup());

function samples(n: number, size = 32): DecodedSample[] {
  const rng = new Rng(3);
  return Array.from({ length: n }, (_, i) => ({ key: `k${i}`, pixels: Float32Array.from({ length: 3 * size * size }, () => rng.normal()) }));
}

const ortBin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
const cudaInstalled = existsSync(join(ortBin, 'libonnxruntime_providers_cuda.so'));

describe('execution providers', () => {
  it('maps devices to ORT provider lists, GPU first with the CPU fallback', () => {
    expect(executionProviders(parseDevice('cpu'))).toEqual(['cpu']);
    expect(executionProviders(parseDevice('cuda'))).toEqual([{ name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(executionProviders(parseDevice(' CUDA:1 '))).toEqual([{ name: 'cuda', deviceId: 1 }, 'cpu']);
    expect(executionProviders(parseDevice('tensorrt'))).toEqual([{ name: 'tensorrt', deviceId: 0 }, { name: 'cuda', deviceId: 0 }, 'cpu']);
    expect(() => parseDevice('gpu')).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => parseDevice('cpu:1')).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
  });

  it('device cpu gives the same embeddings as the default session', async () => {
    const a = await runThrough<EmbeddingBatch>(samples(5), embed({ model: modelDir, batchSize: 5 }));
    const b = await runThrough<EmbeddingBatch>(samples(5), embed({ model: modelDir, batchSize: 5, device: 'cpu' }));
    expect(Array.from(b[0].embeddings)).toEqual(Array.from(a[0].embeddings));
    expect(b[0].rows.map((r) => r.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  });

  it('rejects an unknown device at construction', () => {
    expect(() => embed({ model: modelDir, device: 'tpu' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });

  it.skipIf(cudaInstalled)('device cuda without the GPU binaries fails with ERR_DBPRUNE_DEVICE saying how to install them', async () => {
    const err = await runThrough(samples(1), embed({ model: modelDir, device: 'cuda' })).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.code).toBe(ErrorCodes.DEVICE);
    expect(err?.message).toContain('libonnxruntime_providers_cuda.so');
    expect(err?.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
  });

  it.skipIf(cudaInstalled)('the CLI: --device cuda exits 1 with one ERR_DBPRUNE_DEVICE line; a bad --device exits 2', async () => {
    const out = join(tmp.dir, 'out');
    const cuda = await runCli(['run', '--device', 'cuda', '--out', out, '-q']);
    expect(cuda.code).toBe(1);
    const lines = cuda.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('[ERR_DBPRUNE_DEVICE]');
    expect(lines[0]).toContain('onnxruntime-node-install=cuda12');
    const bad = await runCli(['run', '--device', 'gpu', '--out', out, '-q']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ERR_DBPRUNE_USAGE');
    // embed (images → embeddings, the long job a GPU is for) takes the same flag
    const embedded = await runCli(['embed', 'data-samples/shards', '--model', 'data-samples/model', '--device', 'cuda', '--out', join(tmp.dir, 'emb'), '-q']);
    expect(embedded.code).toBe(1);
    expect(embedded.stderr.trim().split('\n')).toHaveLength(1);
    expect(embedded.stderr).toContain('[ERR_DBPRUNE_DEVICE]');
    const rows = await runCli(['embed', 'data-samples/shards', '--model', 'data-samples/model', '--rows-per-run', '0', '--out', join(tmp.dir, 'emb'), '-q']);
    expect(rows.code).toBe(2);
    expect(rows.stderr).toContain('--rows-per-run');
  }, 120_000);

  it('rowsPerRun: 16 on the CPU by default, the batch size on another device, and any value given', () => {
    const rows = (o: { device?: string; rowsPerRun?: number }): number => embedSettings({ model: modelDir, batchSize: 48, ...o }).rowsPerRun;
    expect(rows({})).toBe(16);
    expect(rows({ device: 'cuda' })).toBe(48);
    expect(rows({ device: 'cuda', rowsPerRun: 8 })).toBe(8);
    expect(() => rows({ rowsPerRun: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
