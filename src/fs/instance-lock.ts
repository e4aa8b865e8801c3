import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InstanceLockedError } from '../errors.js';

/**
 * One running archiver per state or spool directory. Two daemons on the same directories would
 * both read the binlog (the server drops one of them again and again), seal the same segments and
 * upload each spooled file twice. `run` takes `<dir>/mysql-archiver.lock` (pid and start time) for
 * each directory before anything else and refuses, exit 2, while its holder runs. A lock whose
 * process is gone (kill -9, power cut) is taken over.
 *
 * Node has no flock(2): two daemons started in the same instant over a stale lock can both take it
 * over. systemd starts one; the lock is there for the second one started by hand.
 */

export const LOCK_FILE = 'mysql-archiver.lock';
/** a lock file still empty this long after it was created belongs to a process that died creating it */
const EMPTY_GRACE_MS = 10_000;

export interface InstanceLock {
  /** removes the lock if it is still this process's */
  release(): Promise<void>;
}

export interface LockOptions {
  pid?: number;
  /** whether a process runs; default: signal 0 */
  isRunning?(pid: number): boolean;
  clock?: () => number;
}

interface Holder {
  pid: number;
  startedAt: string;
}

export async function acquireInstanceLock(dir: string, options: LockOptions = {}): Promise<InstanceLock> {
  const pid = options.pid ?? process.pid;
  const isRunning = options.isRunning ?? processRuns;
  const clock = options.clock ?? Date.now;
  const path = join(dir, LOCK_FILE);
  await mkdir(dir, { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    let handle;
    try {
      handle = await open(path, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = await readHolder(path);
      if (holder === 'gone') continue;
      if (holder === 'starting') {
        const age = clock() - (await stat(path).then((s) => s.mtimeMs, () => 0));
        if (age < EMPTY_GRACE_MS) throw locked(dir, path, undefined);
      } else if (isRunning(holder.pid)) {
        // this process included: a second daemon in one process is as wrong as in two
        throw locked(dir, path, holder);
      }
      // left by a process that is gone: take it over
      await unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      continue;
    }
    try {
      const mine: Holder = { pid, startedAt: new Date(clock()).toISOString() };
      await handle.writeFile(`${JSON.stringify(mine)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return {
      async release() {
        const holder = await readHolder(path);
        if (typeof holder === 'object' && holder.pid === pid) await unlink(path).catch(() => undefined);
      },
    };
  }
  throw new InstanceLockedError(`could not take the lock ${path}: another process keeps replacing it`, {
    hint: 'Make sure only one mysql-archiver runs with this archiver.stateDir and archiver.spoolDir.',
  });
}

async function readHolder(path: string): Promise<Holder | 'starting' | 'gone'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Holder>;
    if (typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) && parsed.pid > 0) return { pid: parsed.pid, startedAt: String(parsed.startedAt ?? '') };
  } catch {
    // fall through: empty or cut short
  }
  return 'starting';
}

function locked(dir: string, path: string, holder: Holder | undefined): InstanceLockedError {
  const who = holder ? `mysql-archiver pid ${holder.pid} (started ${holder.startedAt})` : 'a mysql-archiver that is starting';
  return new InstanceLockedError(`${dir} is in use by ${who}`, {
    hint: `Stop the other archiver first (systemctl stop mysql-archiver), or give this one its own archiver.stateDir and archiver.spoolDir. If no archiver runs, delete ${path}.`,
  });
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
