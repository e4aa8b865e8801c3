import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
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

describe('the instance lock', () => {
  it('is refused while its holder runs, naming the holder and the fix; free again once released', async () => {
    const first = await acquireInstanceLock(dir, { pid: 4242, isRunning: () => true });
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: 4242 });
    const refused = await acquireInstanceLock(dir, { pid: 5353, isRunning: () => true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InstanceLockedError);
    expect((refused as InstanceLockedError).exitCode).toBe(2);
    expect((refused as Error).message).toContain('mysql-archiver pid 4242');
    expect((refused as InstanceLockedError).hint).toContain(join(dir, LOCK_FILE));
    await first.release();
    await expect(stat(join(dir, LOCK_FILE))).rejects.toThrow();
    const again = await acquireInstanceLock(dir, { pid: 5353, isRunning: () => true });
    await again.release();
  });

  it('takes over a lock whose process is gone (kill -9, power cut)', async () => {
    await acquireInstanceLock(dir, { pid: 4242 });
    const lock = await acquireInstanceLock(dir, { pid: 5353, isRunning: (pid) => pid !== 4242 });
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: 5353 });
    await lock.release();
  });

  it('waits out a lock file still empty (its process is writing it), then takes it over', async () => {
    const path = join(dir, LOCK_FILE);
    await writeFile(path, '');
    let now = Date.now();
    const refused = await acquireInstanceLock(dir, { pid: 5353, clock: () => now }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InstanceLockedError);
    expect((refused as Error).message).toContain('starting');
    await utimes(path, new Date(now - 60_000), new Date(now - 60_000));
    now = Date.now();
    const lock = await acquireInstanceLock(dir, { pid: 5353, clock: () => now });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ pid: 5353 });
    await lock.release();
  });

  it('release leaves a lock alone that another process took over', async () => {
    const mine = await acquireInstanceLock(dir, { pid: 4242 });
    await writeFile(join(dir, LOCK_FILE), `${JSON.stringify({ pid: 5353, startedAt: 'x' })}\n`);
    await mine.release();
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: 5353 });
  });
});
