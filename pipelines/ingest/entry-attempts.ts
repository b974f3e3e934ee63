/**
 * Crash-loop guard of `ingest`: how many times processing started at one journal position
 * (entry, sample) without the process ending cleanly or the position moving on.
 *
 * The journal fixes the processing order for good, so an input that kills the process (an
 * uncatchable crash, the OOM killer) would be retried at every restart forever. `ingest` records
 * each start at a position here (`STATE/attempts.json`, written to a temp file, fsynced, renamed);
 * past a bound, the rest of that entry becomes one error row and processing moves on. A position
 * that moved (a commit advanced it) starts counting again from 1, and a clean stop clears it.
 */
import { open, rename, rm, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';

/** Starts at the same position before the entry is given up (error row). */
export const MAX_ENTRY_ATTEMPTS = 5;

interface AttemptsRecord {
  entry: number;
  sample: number;
  starts: number;
}

export class EntryAttempts {
  private constructor(private readonly path: string) {}

  static open(stateDir: string): EntryAttempts {
    return new EntryAttempts(join(stateDir, 'attempts.json'));
  }

  /** Records one more start at (entry, sample) durably; resolves with the starts there so far (1 = first). */
  async begin(entry: number, sample: number): Promise<number> {
    const last = await this.read();
    const starts = last && last.entry === entry && last.sample === sample ? last.starts + 1 : 1;
    const tmp = `${this.path}.tmp`;
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ entry, sample, starts } satisfies AttemptsRecord));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (e) {
      throw new DbpruneError(ErrorCodes.STATE, `cannot record the start of journal entry ${entry} in ${this.path}: ${(e as Error).message}`, { file: this.path }, { cause: e });
    }
    return starts;
  }

  /** Forgets the count (clean stop). */
  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }

  private async read(): Promise<AttemptsRecord | undefined> {
    try {
      const v = JSON.parse(await readFile(this.path, 'utf8')) as Partial<AttemptsRecord>;
      if (Number.isInteger(v.entry) && Number.isInteger(v.sample) && Number.isInteger(v.starts)) return v as AttemptsRecord;
    } catch {
      // missing or torn (a kill between write and rename leaves the old file): count from 1
    }
    return undefined;
  }
}
