/**
 * The value lists of the CLI's choice flags. Each list is checked at compile time against the union
 * type its owning module exports (see {@link everyMemberOf}), so it cannot drift from the library.
 * Lists that a light module exports as a constant are imported as they are (SELECTION_POLICIES,
 * DEVICES, MANIFEST_FORMATS, ASSIGN_MODES, NEAREST_BACKENDS); the others are written here rather than imported, so that `--help` loads no reader,
 * writer or native addon (their modules export only the type today).
 */
import type { ResizeMode } from '../io/model-config.js';
import type { UrlListFormat } from '../io/url-list.js';
import type { ClipScoreSource } from '../io/datacomp.js';

/**
 * Returns `list` unchanged; does not compile unless `list` names every member of the union `T`
 * (and nothing else): `everyMemberOf<'a' | 'b'>()(['a'] as const)` is a type error.
 */
export function everyMemberOf<T extends string>() {
  return <const L extends readonly T[]>(list: L & ([T] extends [L[number]] ? unknown : { missing: Exclude<T, L[number]> })): L => list;
}

/** Manifest formats, assignment modes and nearest-centroid backends: the owning modules' own lists
 *  (light modules, so `--help` still loads no reader, writer or native addon). */
export { MANIFEST_FORMATS } from '../io/manifest/types.js';
export { ASSIGN_MODES, NEAREST_BACKENDS } from '../core/nearest.js';

/** img2dataset's URL-list formats (src/io/url-list.ts `UrlListFormat`; that module loads the readers). */
export const URL_LIST_FORMATS = everyMemberOf<UrlListFormat>()(['parquet', 'csv', 'tsv', 'json', 'jsonl', 'txt']);


/** How images are resized to the model input (src/io/model-config.ts `ResizeMode`). */
export const RESIZE_MODES = everyMemberOf<ResizeMode>()(['shortest-center-crop', 'squash']);

/** The CLIP towers a DataComp score can be computed from (src/io/datacomp.ts `ClipScoreSource['from']`). */
export const CLIP_SCORE_TOWERS = everyMemberOf<NonNullable<ClipScoreSource['from']>>()(['l14', 'b32']);
