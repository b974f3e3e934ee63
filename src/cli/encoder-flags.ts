/**
 * The image-encoder flags `run`, `embed` and `fit` share: preprocessing overrides, model
 * input/output names, batch size, rows per inference call and the execution provider.
 */
import type { Command } from 'commander';
import { DEVICES, parseDevice } from '../io/devices.js';
import type { ImageEncoderOptions } from '../../pipelines/decision-tail.js';
import { RESIZE_MODES } from './choices.js';
import { parseChoice, parseNumber, parseTriple } from './options.js';

/** Values of {@link addEncoderFlags}. */
export interface EncoderFlags {
  imageSize?: number;
  resizeMode?: (typeof RESIZE_MODES)[number];
  mean?: [number, number, number];
  std?: [number, number, number];
  inputName?: string;
  outputName?: string;
  batchSize: number;
  rowsPerRun?: number;
  device?: string;
}

/** Adds the flags of {@link EncoderFlags} to `cmd`. */
export function addEncoderFlags(cmd: Command): Command {
  return cmd
    .option('--image-size <px>', "model input side (default: the model's preprocessor_config.json, else 224)", parseNumber('--image-size', { min: 1, max: 8192, integer: true }))
    .option('--resize-mode <mode>', 'shortest-center-crop (CLIP) | squash', parseChoice('--resize-mode', RESIZE_MODES))
    .option('--mean <r,g,b>', "per-channel mean after scaling to [0, 1] (default: the model's config, else CLIP's)", parseTriple('--mean'))
    .option('--std <r,g,b>', "per-channel std (default: the model's config, else CLIP's)", parseTriple('--std', { positive: true }))
    .option('--input-name <name>', 'model input to feed (default: pixel_values, else the first)')
    .option('--output-name <name>', 'model output to read (default: image_embeds, else pooler_output, else the first)')
    .option('--batch-size <n>', 'embedding micro-batch size', parseNumber('--batch-size', { min: 1, max: 4096, integer: true }), 64)
    .option(
      '--rows-per-run <n>',
      'rows per inference call (default: 16 on the CPU, where more only costs memory; --batch-size on a GPU)',
      parseNumber('--rows-per-run', { min: 1, max: 4096, integer: true }),
    )
    .option(
      '--device <device>',
      `where the image encoder runs: ${DEVICES.join(' | ')} (cuda:1 = a device id); GPU providers need onnxruntime-node's GPU binaries (README: GPU)`,
      (v: string) => (parseDevice(v), v.trim().toLowerCase()),
    );
}

/** The embed stage's options from the flags (the library's `ImageEncoderOptions.embed`). */
export function embedOptionsFrom(o: EncoderFlags): NonNullable<ImageEncoderOptions['embed']> {
  return { batchSize: o.batchSize, rowsPerRun: o.rowsPerRun, inputName: o.inputName, outputName: o.outputName, device: o.device };
}
