import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The daemon's view of itself, rewritten every few seconds into the state dir, so `status` (another
 * process, maybe another user) can show lag, spool and gaps without talking to the daemon.
 */
export const STATUS_FILE = 'status.json';
/** older than this, the daemon is considered not running */
export const STATUS_STALE_MS = 30_000;

export async function writeStatusFile(stateDir: string, doc: object): Promise<void> {
  const path = join(stateDir, STATUS_FILE);
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(doc, null, 1)}\n`);
  } finally {
    await handle.close();
  }
  // no fsync: a status lost in a power cut is rewritten seconds after the restart
  await rename(tmp, path);
}

export async function readStatusFile<T>(stateDir: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, STATUS_FILE), 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
