/**
 * The cluster work dir on s3:// (WorkStore of src/cluster/work-store.ts over src/io/storage): every
 * object is written whole (a single PUT or a multipart upload completed at once), so a reader sees
 * nothing or all of it; there are no temp objects to sweep (an interrupted upload never becomes an
 * object). "Folders" are key prefixes.
 */
import { ErrorCodes, isDbpruneError } from '../core/errors.js';
import { joinLocation, listLocation, locationExists, readLocation, removeLocation, statLocation, writeLocation } from '../io/storage/index.js';
import type { WorkStore } from './work-store.js';

export class S3WorkStore implements WorkStore {
  constructor(readonly root: string) {}

  private full(path: string): string {
    return joinLocation(this.root, path);
  }

  read(path: string): Promise<Buffer> {
    return readLocation(this.full(path));
  }

  async readIfExists(path: string): Promise<Buffer | undefined> {
    try {
      return await readLocation(this.full(path));
    } catch (e) {
      if (isDbpruneError(e) && e.code === ErrorCodes.INPUT_NOT_FOUND) return undefined;
      throw e;
    }
  }

  async readTextIfExists(path: string): Promise<string | undefined> {
    return (await this.readIfExists(path))?.toString('utf8');
  }

  write(path: string, data: Uint8Array | string): Promise<void> {
    return writeLocation(this.full(path), data);
  }

  exists(path: string): Promise<boolean> {
    return locationExists(this.full(path));
  }

  async list(dir: string): Promise<string[]> {
    const prefix = `${this.full(dir).replace(/\/+$/, '')}/`;
    const names = new Set<string>();
    for await (const e of listLocation(prefix)) names.add(e.location.slice(prefix.length).split('/')[0]);
    return [...names];
  }

  async remove(path: string): Promise<void> {
    const full = this.full(path);
    if ((await statLocation(full))?.kind === 'file') await removeLocation(full);
    const doomed: string[] = [];
    for await (const e of listLocation(`${full.replace(/\/+$/, '')}/`)) doomed.push(e.location);
    for (const loc of doomed) await removeLocation(loc);
  }

  sweepTemp(): Promise<number> {
    return Promise.resolve(0);
  }
}
