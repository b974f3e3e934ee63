/**
 * `--device`: which onnxruntime-node execution provider runs the image encoder, and the session
 * options that go with it. `cpu` is always there; `cuda` / `tensorrt` (Linux x64) need
 * onnxruntime-node's GPU provider libraries, which npm does not ship in the package: they are
 * downloaded by its install script (`script/install.js`) only when asked to
 * (`onnxruntime-node-install=cuda12`). This project's own .npmrc says `skip`, so a clone has no
 * GPU binaries until a user installs them. The check below looks for those files before ORT
 * tries to load them (ORT would print its own multi-line log to stderr, then fail).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DbpruneError, ErrorCodes, UsageError } from '../core/errors.js';

/** Execution providers `--device` accepts (onnxruntime-node's names). */
export const DEVICES = ['cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'] as const;
export type DeviceName = (typeof DEVICES)[number];

/** A parsed `--device` value: `cuda` or `cuda:1` (device id). */
export interface Device {
  name: DeviceName;
  deviceId: number;
}

/** One execution provider entry of ORT's session options. */
export type ExecutionProvider = string | { name: string; deviceId?: number };

/** Parses `cpu`, `cuda`, `cuda:1`, … Throws a UsageError (exit 2) naming the accepted values. */
export function parseDevice(value: string): Device {
  const m = /^([a-z]+)(?::(\d+))?$/.exec(value.trim().toLowerCase());
  const name = m?.[1] as DeviceName | undefined;
  if (!m || !name || !DEVICES.includes(name)) {
    throw new UsageError(`--device must be one of ${DEVICES.join(', ')} (optionally :<device id>, e.g. cuda:1), got ${value}`, { option: 'device' });
  }
  const deviceId = m[2] === undefined ? 0 : Number(m[2]);
  if (name === 'cpu' && deviceId !== 0) throw new UsageError(`--device cpu takes no device id, got ${value}`, { option: 'device' });
  return { name, deviceId };
}

/**
 * Execution providers for a device, in ORT's order of preference. GPU providers are followed by
 * `cpu`, so the few operators a provider does not implement still run (ORT assigns each node to
 * the first provider that has it); the model's heavy nodes run on the device.
 */
export function executionProviders(device: Device): ExecutionProvider[] {
  switch (device.name) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return [{ name: 'cuda', deviceId: device.deviceId }, 'cpu'];
    case 'tensorrt':
      return [{ name: 'tensorrt', deviceId: device.deviceId }, { name: 'cuda', deviceId: device.deviceId }, 'cpu'];
    default:
      return [device.name, 'cpu'];
  }
}

/** The onnxruntime-node native folder (bin/napi-v6/<platform>/<arch>), or undefined when not found. */
function ortBinFolder(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** How to get the GPU binaries, for the error message. */
export const GPU_INSTALL_HINT =
  'install onnxruntime-node\'s CUDA 12 binaries (needs an NVIDIA driver, CUDA 12 and cuDNN 9): ' +
  'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js ' +
  '(or `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12`; an .npmrc line onnxruntime-node-install=skip prevents it)';

/**
 * Throws ERR_DBPRUNE_DEVICE when `device` cannot work in this install: a provider this build of
 * onnxruntime-node does not know (e.g. dml off Windows), or cuda/tensorrt whose provider
 * libraries were never downloaded. The message says how to install them. `cpu` always passes.
 */
export async function checkDevice(device: Device): Promise<void> {
  if (device.name === 'cpu') return;
  const ort = await import('onnxruntime-node');
  const known = ort.listSupportedBackends?.() ?? [];
  if (known.length > 0 && !known.some((b) => b.name === device.name)) {
    throw new DbpruneError(
      ErrorCodes.DEVICE,
      `--device ${device.name}: this onnxruntime-node build (${process.platform}/${process.arch}) has no ${device.name} execution provider; it has ${known.map((b) => b.name).join(', ')}`,
      { device: device.name },
    );
  }
  if (device.name === 'cuda' || device.name === 'tensorrt') {
    const bin = ortBinFolder();
    const lib = `libonnxruntime_providers_${device.name}.so`;
    const missing = bin ? [lib, 'libonnxruntime_providers_shared.so'].filter((f) => !existsSync(join(bin, f))) : [lib];
    if (process.platform === 'linux' && missing.length > 0) {
      throw new DbpruneError(ErrorCodes.DEVICE, `--device ${device.name}: onnxruntime-node's ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed; ${GPU_INSTALL_HINT}`, {
        device: device.name,
        folder: bin,
      });
    }
  }
}

/** Wraps a session-creation failure on a non-CPU device into ERR_DBPRUNE_DEVICE with the install hint. */
export function deviceError(device: Device, file: string, cause: unknown): DbpruneError {
  const hint = device.name === 'cuda' || device.name === 'tensorrt' ? `; if the GPU binaries are missing, ${GPU_INSTALL_HINT}` : '';
  return new DbpruneError(ErrorCodes.DEVICE, `--device ${device.name}:${device.deviceId}: cannot open ${file} on this execution provider: ${(cause as Error)?.message ?? String(cause)}${hint}`, { device: device.name, file }, { cause });
}
