import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArchiverError } from '../errors.js';
import { fsyncDir } from '../fs/durable.js';
import { readTextIfExists } from '../fs/read-optional.js';
import type { BinlogPosition, SealedSegment } from './segment-writer.js';

/**
 * The archiver's durable memory, one small JSON file in the state dir (written to a temp file,
 * fsynced, renamed, directory fsynced). It holds where the next stream starts and the segment that
 * is sealed but not yet handed to the spool: the archiver writes the checkpoint *before* the hand-
 * over, so after a crash the pending segment is found and spooled, and the stream resumes exactly
 * after it. Nothing is archived twice and nothing is skipped.
 */
export interface Checkpoint {
  v: 1;
  /** names the server history in object names; bumped when that history restarts (RESET MASTER, another server) */
  source: string;
  epoch: number;
  /** server_id that wrote the binlog files of this epoch */
  serverId: number;
  serverUuid?: string;
  /** where the next stream starts */
  next: BinlogPosition;
  /** time of the last archived event (ms since the epoch), for gap reports */
  lastEventTime?: number;
  /** sealed, durable in the segments dir, not yet in the spool */
  pending?: SealedSegment;
  /** the archive has a gap since the last full dump: the next dump is needed to recover past it */
  needsFullDump?: boolean;
  updatedAt: string;
}

export const CHECKPOINT_FILE = 'checkpoint.json';

export async function loadCheckpoint(stateDir: string): Promise<Checkpoint | undefined> {
  const path = join(stateDir, CHECKPOINT_FILE);
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Checkpoint;
    if (parsed.v !== 1 || typeof parsed.next?.file !== 'string' || !Number.isSafeInteger(parsed.next.position)) throw new Error('unexpected shape');
    return parsed;
  } catch (error) {
    throw new ArchiverError(`the checkpoint ${path} is unreadable: ${(error as Error).message}`, {
      cause: error,
      hint: 'It is only written by rename, so this means the disk or someone else changed it. Move it away to start over from the oldest binlog the server has (the archive then says where it resumed).',
    });
  }
}

export async function saveCheckpoint(stateDir: string, checkpoint: Checkpoint): Promise<void> {
  const path = join(stateDir, CHECKPOINT_FILE);
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(checkpoint, null, 1)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

export async function removeCheckpoint(stateDir: string): Promise<void> {
  await rm(join(stateDir, CHECKPOINT_FILE), { force: true });
}
