/**
 * What a downloader honours in a response before keeping its body: `X-Robots-Tag` directives
 * (img2dataset's rule) and a declared Content-Type that is not an image.
 */

/** X-Robots-Tag directives that make a sample `error:robots` by default (img2dataset's list). */
export const DEFAULT_DISALLOWED_DIRECTIVES: readonly string[] = ['noai', 'noimageai', 'noindex', 'noimageindex'];

/**
 * True when one of the `X-Robots-Tag` values forbids the use: a value is `directives` or
 * `token: directives` (comma-separated); it applies when it names no token or names ours.
 * Same rule as img2dataset's `is_disallowed`.
 */
export function robotsDisallowed(values: readonly string[], disallowed: ReadonlySet<string>, token?: string): boolean {
  if (disallowed.size === 0) return false;
  for (const v of values) {
    const i = v.indexOf(':');
    const ua = i >= 0 ? v.slice(0, i).trim().toLowerCase() : undefined;
    const dirs = (i >= 0 ? v.slice(i + 1) : v).split(',').map((x) => x.trim().toLowerCase());
    if ((ua === undefined || ua === token) && dirs.some((d) => disallowed.has(d))) return true;
  }
  return false;
}

const OK_NON_IMAGE_TYPES = new Set([
  'application/octet-stream',
  'binary/octet-stream',
  'application/binary',
  'application/x-binary',
  'application/download',
  'application/x-download',
  'application/force-download',
  'application/unknown',
  'unknown/unknown',
]);

/** The problem with a declared Content-Type, or undefined when it may be an image. */
export function contentTypeProblem(ct: string | undefined): string | undefined {
  if (ct === undefined) return undefined;
  const mime = ct.split(';')[0].trim().toLowerCase();
  if (mime === '' || mime.startsWith('image/') || OK_NON_IMAGE_TYPES.has(mime)) return undefined;
  return `content type ${mime} is not an image`;
}
