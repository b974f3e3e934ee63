/**
 * Pid lock files: one process owns a folder (`dbprune ingest`'s state and output folders). The file
 * holds the owner's pid; a lock whose pid is no longer a live process (a `kill -9` leftover) is stale
 * and is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { DbpruneError, ErrorCodes } from '../../src/core/errors.js';

/**
 * Takes a pid lock file (created exclusively, holding our pid). A lock whose pid is not a live
 * process is stale (its owner was killed) and is taken over. Throws ERR_DBPRUNE_STATE naming the
 * holder when a live process holds it.
 */
export async function takePidLock(path: string, what: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new DbpruneError(ErrorCodes.STATE, `${what} is in use by process ${pid} (remove ${path} if that is wrong)`, { file: path, pid });
      }
      await rm(path, { force: true }); // stale: its owner died (kill -9)
    }
  }
  throw new DbpruneError(ErrorCodes.STATE, `cannot take the lock ${path}`, { file: path });
}

/** Removes a pid lock file if this process holds it. */
export async function releasePidLock(path: string): Promise<void> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
