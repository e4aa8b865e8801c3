import { open } from 'node:fs/promises';

/**
 * The two fsyncs every crash-safe write here needs: the file's bytes, and the directory entry that
 * a rename or create changed (without the latter a power cut can lose a renamed file).
 */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
