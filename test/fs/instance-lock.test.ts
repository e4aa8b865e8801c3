import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InstanceLockedError } from '../../src/errors.js';
import { LOCK_FILE, acquireInstanceLock } from '../../src/fs/instance-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lockAt = () => join(dir, LOCK_FILE);
const holderOf = async () => JSON.parse(await readFile(lockAt(), 'utf8')) as Record<string, unknown>;

async function ownTicks(): Promise<number> {
  const s = await readFile('/proc/self/stat', 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]);
}

describe('the instance lock', () => {
  it('is refused while its holder runs, naming the holder and the fix; free again once released', async () => {
    const first = await acquireInstanceLock(dir, { self: { pid: 4242 }, isRunning: () => true });
    expect(await holderOf()).toMatchObject({ pid: 4242 });
    const refused = await acquireInstanceLock(dir, { self: { pid: 5353 }, isRunning: () => true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InstanceLockedError);
    expect((refused as InstanceLockedError).exitCode).toBe(2);
    expect((refused as Error).message).toContain('mysql-archiver pid 4242');
    expect((refused as InstanceLockedError).hint).toContain(lockAt());
    await first.release();
    await expect(stat(lockAt())).rejects.toThrow();
    const again = await acquireInstanceLock(dir, { self: { pid: 5353 }, isRunning: () => true });
    await again.release();
    // nothing else is left in the directory: no drafts, no stale copies
    expect(await readdir(dir)).toEqual([]);
  });

  it('is refused to a second daemon in the same process', async () => {
    const first = await acquireInstanceLock(dir);
    await expect(acquireInstanceLock(dir)).rejects.toBeInstanceOf(InstanceLockedError);
    await first.release();
  });

  it('takes over a lock whose process is gone (kill -9)', async () => {
    await acquireInstanceLock(dir, { self: { pid: 4242 } });
    const lock = await acquireInstanceLock(dir, { self: { pid: 5353 }, isRunning: (h) => h.pid !== 4242 });
    expect(await holderOf()).toMatchObject({ pid: 5353 });
    await lock.release();
  });

  it('takes over a lock from another boot, or whose PID now belongs to a process started later (power cut, PID reuse)', async () => {
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    // a PID that runs (this test's own), recorded by a holder from another boot
    await writeFile(lockAt(), `${JSON.stringify({ pid: process.pid, bootId: 'another-boot', startTicks: await ownTicks(), startedAt: 'then' })}\n`);
    let lock = await acquireInstanceLock(dir, { self: { pid: 5353, bootId } });
    expect(await holderOf()).toMatchObject({ pid: 5353 });
    await lock.release();
    // same boot, the PID runs, but it was started at another time: not the holder
    await writeFile(lockAt(), `${JSON.stringify({ pid: process.pid, bootId, startTicks: (await ownTicks()) - 1, startedAt: 'then' })}\n`);
    lock = await acquireInstanceLock(dir, { self: { pid: 5353, bootId } });
    expect(await holderOf()).toMatchObject({ pid: 5353 });
    await lock.release();
    // the same facts as a process that still runs: refused
    await writeFile(lockAt(), `${JSON.stringify({ pid: process.pid, bootId, startTicks: await ownTicks(), startedAt: 'now' })}\n`);
    await expect(acquireInstanceLock(dir, { self: { pid: 5353, bootId } })).rejects.toBeInstanceOf(InstanceLockedError);
  });

  it('takes over a lock file that is not whole', async () => {
    await writeFile(lockAt(), '{"pid": 12');
    const lock = await acquireInstanceLock(dir, { self: { pid: 5353 } });
    expect(await holderOf()).toMatchObject({ pid: 5353 });
    await lock.release();
  });

  it('release leaves a lock alone that another process took over', async () => {
    const mine = await acquireInstanceLock(dir, { self: { pid: 4242 } });
    await writeFile(lockAt(), `${JSON.stringify({ pid: 5353, startedAt: 'x' })}\n`);
    await mine.release();
    expect(await holderOf()).toMatchObject({ pid: 5353 });
  });
});
