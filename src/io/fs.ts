/** Small file-system predicates shared by the readers and the state store. */
import { stat } from 'node:fs/promises';

/** Whether `p` exists (any kind of entry). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
