import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterSketches } from '../../src/core/sketch.js';
import {
  CALIBRATION_VERSION,
  loadCalibration,
  saveCalibration,
  serializeCalibration,
  type Calibration,
} from '../../src/io/calibration.js';
import { sha256Hex } from '../../src/io/hash.js';
import { writeNpy } from '../../src/io/npy.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dbprune-cal-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function setup(): Promise<{ dir: string; cal: Calibration }> {
  const dir = await tempDir();
  const k = 3;
  const dim = 4;
  await writeNpy(join(dir, 'centroids.npy'), Float32Array.from({ length: k * dim }, (_, i) => (i % 5) + 1), [k, dim]);
  const sketches = new ClusterSketches(k, 64);
  sketches.addBatch(Int32Array.from([0, 0, 1, 2, -1]), Float32Array.from([0.1, 0.3, 0.5, 1.9, 0.2]));
  const cal: Calibration = {
    version: CALIBRATION_VERSION,
    k,
    dim,
    sampleSize: 4,
    totalSeen: 10,
    skipped: 1,
    seed: 7,
    numNNs: 20,
    counts: Float64Array.from([2, 1, 1]),
    dIntra: Float64Array.from([0.2, 0.5, 1.9]),
    dInter: Float64Array.from([0.123456789012345, 0.7, 1 / 3]),
    sketches,
    centroidsSha256: sha256Hex(await readFile(join(dir, 'centroids.npy'))),
  };
  await saveCalibration(dir, cal);
  return { dir, cal };
}

describe('calibration.json', () => {
  it('round-trips exactly and checks the centroids', async () => {
    const { dir, cal } = await setup();
    const back = await loadCalibration(dir);
    expect(back.k).toBe(3);
    expect(Array.from(back.dInter)).toEqual(Array.from(cal.dInter));
    expect(Array.from(back.counts)).toEqual([2, 1, 1]);
    expect(Array.from(back.sketches.counts)).toEqual(Array.from(cal.sketches.counts));
    expect(back.sketches.quantile(0, 0.5)).toBe(cal.sketches.quantile(0, 0.5));
    expect(serializeCalibration(back)).toBe(serializeCalibration(cal));
    // Explicit centroid path or bytes work as well.
    await loadCalibration(dir, join(dir, 'centroids.npy'));
    await loadCalibration(dir, await readFile(join(dir, 'centroids.npy')));
  });

  it('detects a corrupted file through its checksum', async () => {
    const { dir } = await setup();
    const file = join(dir, 'calibration.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"totalSeen":10', '"totalSeen":11'));
    await expect(loadCalibration(dir)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION', message: expect.stringContaining('checksum') as unknown });
    await writeFile(file, text.slice(0, 50));
    await expect(loadCalibration(dir)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION' });
  });

  it('rejects other centroids, a missing file, and a missing checksum', async () => {
    const { dir } = await setup();
    const other = join(dir, 'other.npy');
    await writeNpy(other, new Float32Array(12).fill(1), [3, 4]);
    await expect(loadCalibration(dir, other)).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_CALIBRATION',
      message: expect.stringContaining('other centroids') as unknown,
    });
    await expect(loadCalibration(join(dir, 'nope'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION' });
    const file = join(dir, 'calibration.json');
    const body = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    delete body.checksum;
    await writeFile(file, JSON.stringify(body));
    await expect(loadCalibration(dir)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION' });
  });

  it('version 1 files (linear histograms, no scale) still load with their linear layout; a bad scale is a coded error', async () => {
    const { dir, cal } = await setup();
    const file = join(dir, 'calibration.json');
    const v2 = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown> & { version: number; histogram: { scale?: unknown; [field: string]: unknown } };
    expect(v2.version).toBe(2);
    expect(v2.histogram.scale).toBe(cal.sketches.scale);
    const resign = async (body: Record<string, unknown>): Promise<void> => {
      delete body.checksum;
      body.checksum = `sha256:${sha256Hex(JSON.stringify(body))}`;
      await writeFile(file, JSON.stringify(body));
    };
    const linear = new ClusterSketches(3, 64, 'linear');
    linear.addBatch(Int32Array.from([0, 0, 1, 2]), Float32Array.from([0.1, 0.3, 0.5, 1.9]));
    const { scale: _none, ...v1Histogram } = { ...v2.histogram, counts: Buffer.from(linear.counts.buffer).toString('base64') };
    await resign({ ...v2, version: 1, histogram: v1Histogram });
    const back = await loadCalibration(dir);
    expect(back.sketches.scale).toBe('linear');
    expect(back.sketches.quantile(0, 0.5)).toBe(linear.quantile(0, 0.5));
    await resign({ ...v2, histogram: { ...v2.histogram, scale: 'cubic' } });
    await expect(loadCalibration(dir)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION', message: expect.stringContaining('scale') as unknown });
    await resign({ ...v2, version: 1 }); // a scale field in a version 1 file
    await expect(loadCalibration(dir)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_CALIBRATION', message: expect.stringContaining('scale') as unknown });
  });
});
