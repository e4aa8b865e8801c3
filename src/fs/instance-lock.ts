import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstanceLockedError } from '../errors.js';
import { fsyncDir } from './durable.js';
import { readTextIfExists } from './read-optional.js';

/**
 * One running archiver per state or spool directory. Two daemons on the same directories would
 * both read the binlog (the server drops one of them again and again), seal the same segments and
 * upload each spooled file twice. `run` takes `<dir>/mysql-archiver.lock` for each directory before
 * anything else and refuses, exit 2, while its holder runs.
 *
 * A lock left by a process that is gone (kill -9, power cut) is taken over. "Gone" must survive PID
 * reuse, or a reboot could keep the service down for good (the unit does not restart on exit 2):
 * the lock records the boot id and the holder's start time, and a lock from another boot, or
 * whose PID now belongs to a process started at another time, is stale. The lock file appears
 * whole (written aside, then linked into place), and a stale one is moved aside and checked before
 * it is removed, so two daemons taking over the same stale lock cannot both win.
 */

export const LOCK_FILE = 'mysql-archiver.lock';

export interface InstanceLock {
  /** removes the lock if it is still this process's */
  release(): Promise<void>;
}

/** who holds a lock, as far as the system can tell */
export interface ProcessIdentity {
  pid: number;
  /** /proc/sys/kernel/random/boot_id; undefined where there is no /proc */
  bootId?: string;
  /** start time of the process in clock ticks since boot (/proc/PID/stat field 22) */
  startTicks?: number;
}

export interface LockOptions {
  /** this process; default read from /proc */
  self?: ProcessIdentity;
  /** whether the recorded holder still runs; default: same boot, PID alive and started when recorded */
  isRunning?(holder: ProcessIdentity): boolean | Promise<boolean>;
  clock?: () => number;
}

interface Holder extends ProcessIdentity {
  startedAt: string;
}

/** locks held in this process, by pid and real path: a second daemon in one process is as wrong as in two */
const heldHere = new Set<string>();

export async function acquireInstanceLock(dir: string, options: LockOptions = {}): Promise<InstanceLock> {
  await mkdir(dir, { recursive: true });
  const real = await realpath(dir);
  const path = join(real, LOCK_FILE);
  const self = options.self ?? (await currentProcess());
  const isRunning = options.isRunning ?? holderRuns;
  const clock = options.clock ?? Date.now;
  const mine: Holder = { ...self, startedAt: new Date(clock()).toISOString() };
  const held = `${self.pid}:${path}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (heldHere.has(held)) throw locked(dir, path, mine);
    // written aside and linked into place: a lock file is never seen half-written
    const draft = `${path}.${randomBytes(6).toString('hex')}.new`;
    await writeFile(draft, `${JSON.stringify(mine)}\n`, { mode: 0o644 });
    let linked = false;
    try {
      await link(draft, path);
      linked = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(draft).catch(() => undefined);
    }
    if (linked) {
      await fsyncDir(real);
      heldHere.add(held);
      return { release: () => release(path, held, mine) };
    }
    const holder = await readHolder(path);
    if (holder === undefined) continue;
    // this very process, but not held here: left by an acquisition it no longer has
    const isSelf = holder !== 'unreadable' && holder.pid === self.pid && holder.startTicks === self.startTicks && holder.bootId === self.bootId;
    if (holder !== 'unreadable' && !isSelf && (await isRunning(holder))) throw locked(dir, path, holder);
    await takeOver(path, holder);
  }
  throw new InstanceLockedError(`could not take the lock ${path}: it keeps changing`, {
    hint: 'Make sure only one mysql-archiver runs with this archiver.stateDir and archiver.spoolDir.',
  });
}

/** Moves a stale lock aside; if what moved is not the stale one (another daemon just took over), puts it back and refuses. */
async function takeOver(path: string, stale: Holder | 'unreadable'): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readHolder(aside);
  const same = stale === 'unreadable' ? moved === 'unreadable' : moved !== undefined && moved !== 'unreadable' && sameHolder(moved, stale);
  if (!same && moved !== undefined && moved !== 'unreadable') {
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    throw locked(path, path, moved);
  }
  await unlink(aside).catch(() => undefined);
}

async function release(path: string, held: string, mine: Holder): Promise<void> {
  heldHere.delete(held);
  const holder = await readHolder(path);
  if (holder !== undefined && holder !== 'unreadable' && sameHolder(holder, mine)) await unlink(path).catch(() => undefined);
}

function sameHolder(a: Holder, b: Holder): boolean {
  return a.pid === b.pid && a.startedAt === b.startedAt && a.bootId === b.bootId && a.startTicks === b.startTicks;
}

async function readHolder(path: string): Promise<Holder | 'unreadable' | undefined> {
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  try {
    const p = JSON.parse(text) as Partial<Holder>;
    if (typeof p.pid === 'number' && Number.isInteger(p.pid) && p.pid > 0) {
      return {
        pid: p.pid,
        startedAt: String(p.startedAt ?? ''),
        ...(typeof p.bootId === 'string' ? { bootId: p.bootId } : {}),
        ...(typeof p.startTicks === 'number' ? { startTicks: p.startTicks } : {}),
      };
    }
  } catch {
    // not a lock this tool wrote whole: stale
  }
  return 'unreadable';
}

function locked(dir: string, path: string, holder: Holder): InstanceLockedError {
  return new InstanceLockedError(`${dir} is in use by mysql-archiver pid ${holder.pid} (started ${holder.startedAt})`, {
    hint: `Stop the other archiver first (systemctl stop mysql-archiver), or give this one its own archiver.stateDir and archiver.spoolDir. If no archiver runs, delete ${path}.`,
  });
}

async function currentProcess(): Promise<ProcessIdentity> {
  const bootId = await readBootId();
  const startTicks = await readStartTicks(process.pid);
  return { pid: process.pid, ...(bootId !== undefined ? { bootId } : {}), ...(startTicks !== undefined ? { startTicks } : {}) };
}

/** Same boot, PID alive, and (where /proc tells) started when the lock says. */
async function holderRuns(holder: ProcessIdentity): Promise<boolean> {
  const bootId = await readBootId();
  if (holder.bootId !== undefined && bootId !== undefined && holder.bootId !== bootId) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: it runs, as another user
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.startTicks === undefined) return true;
  const ticks = await readStartTicks(holder.pid);
  return ticks === undefined || ticks === holder.startTicks;
}

async function readBootId(): Promise<string | undefined> {
  return readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (s) => s.trim() || undefined,
    () => undefined,
  );
}

async function readStartTicks(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}
