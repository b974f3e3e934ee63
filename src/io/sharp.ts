/**
 * sharp (libvips), loaded on first use. Importing it costs ~50 ms and ~30 MB of resident memory
 * (libvips and its thread pool start up), which runs over precomputed embeddings never need: the
 * modules that decode or measure images call {@link loadSharp} where they first touch an image.
 */
import type SharpModule from 'sharp';

export type Sharp = typeof SharpModule;

let loading: Promise<Sharp> | undefined;

/** The sharp function, imported once. */
export function loadSharp(): Promise<Sharp> {
  loading ??= import('sharp').then((m) => m.default);
  return loading;
}
