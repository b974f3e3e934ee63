import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { CLIP_MEAN, CLIP_STD, preprocessingFromConfig, resolveModel } from '../../src/io/model-config.js';
import { repoRoot } from '../helpers/fixture.js';
import { tempDir } from '../stages/image-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

describe('preprocessingFromConfig', () => {
  it('reads a CLIP config (shortest edge + centre crop, bicubic)', () => {
    const p = preprocessingFromConfig({
      crop_size: { height: 224, width: 224 },
      do_center_crop: true,
      image_mean: CLIP_MEAN,
      image_std: CLIP_STD,
      resample: 3,
      size: { shortest_edge: 224 },
    });
    expect(p).toEqual({ size: 224, mode: 'shortest-center-crop', mean: CLIP_MEAN, std: CLIP_STD, kernel: 'cubic', rescaleFactor: 1 / 255 });
  });

  it('reads a SigLIP-style config (squash to height×width, bilinear, 0.5 mean/std)', () => {
    const p = preprocessingFromConfig({ do_center_crop: false, size: { height: 256, width: 256 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2 });
    expect(p).toMatchObject({ size: 256, mode: 'squash', mean: [0.5, 0.5, 0.5], kernel: 'linear' });
  });

  it('reads the bundled real encoder (nsfwjs MobileNetV2): squash to 224, bilinear, x/255 with no mean/std', async () => {
    const m = await resolveModel(join(repoRoot, 'data-samples', 'openclipart', 'model'));
    expect(m.onnxPath).toBe(join(repoRoot, 'data-samples', 'openclipart', 'model', 'onnx', 'vision_model.onnx'));
    expect(m.preprocessing).toEqual({ size: 224, mode: 'squash', mean: [0, 0, 0], std: [1, 1, 1], kernel: 'linear', rescaleFactor: 1 / 255 });
  });

  it('rejects malformed or non-square configs', () => {
    expect(() => preprocessingFromConfig({ size: { height: 224, width: 256 }, do_center_crop: false })).toThrow(expect.objectContaining({ code: ErrorCodes.MODEL }));
    expect(() => preprocessingFromConfig({ image_mean: [1, 2] })).toThrow(expect.objectContaining({ code: ErrorCodes.MODEL }));
  });
});

describe('resolveModel', () => {
  it('finds onnx/vision_model.onnx and the config in a model directory, or beside a file', async () => {
    const dir = join(tmp.dir, 'm');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    writeFileSync(join(dir, 'onnx', 'vision_model.onnx'), 'x');
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ crop_size: 32, size: 32 }));
    const a = await resolveModel(dir);
    expect(a.onnxPath).toBe(join(dir, 'onnx', 'vision_model.onnx'));
    expect(a.preprocessing?.size).toBe(32);
    const b = await resolveModel(join(dir, 'onnx', 'vision_model.onnx'));
    expect(b.configPath).toBe(join(dir, 'preprocessor_config.json'));
  });

  it('fails with ERR_DBPRUNE_MODEL for a missing model or a directory without one', async () => {
    await expect(resolveModel(join(tmp.dir, 'nothing'))).rejects.toMatchObject({ code: ErrorCodes.MODEL });
    mkdirSync(join(tmp.dir, 'empty'));
    await expect(resolveModel(join(tmp.dir, 'empty'))).rejects.toMatchObject({ code: ErrorCodes.MODEL });
  });
});
