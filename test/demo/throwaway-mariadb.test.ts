import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { portIsOpen } from '../../src/demo/free-port.js';
import { findMariadbProgram, startThrowawayMariadb } from '../../src/demo/throwaway-mariadb.js';
import { ArchiverError } from '../../src/errors.js';

const T = { timeout: 90_000 };
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'throwaway-test-'));
  dirs.push(dir);
  return dir;
}

describe('findMariadbProgram', () => {
  it('finds mariadbd in /usr/sbin when PATH lacks it', () => {
    expect(findMariadbProgram('mariadbd', { PATH: '/nonexistent' })).toMatch(/\/mariadbd$/);
  });

  it('names the package to install when a program is missing', () => {
    const error = (() => {
      try {
        findMariadbProgram('no-such-mariadb-program' as 'mariadbd', { PATH: '/nonexistent' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ArchiverError);
    expect((error as ArchiverError).message).toMatch(/^no-such-mariadb-program not found/);
    expect((error as ArchiverError).hint).toContain('apt-get install mariadb-server');
  });
});

describe('startThrowawayMariadb (no template: the demo path)', () => {
  it('installs a datadir, starts with a chosen archiver password and a short socket for a long dir, then stops cleanly', T, async () => {
    // a dir so deep that dir/mysqld.sock would not fit in sun_path
    const dir = join(await scratchDir(), 'x'.repeat(60), 'y'.repeat(40));
    await mkdir(dir, { recursive: true });
    const password = 'chosen-password-for-test';
    const db = await startThrowawayMariadb({ dir, serverId: 7, archiverPassword: password, env: { PATH: '/nonexistent' } });
    try {
      expect(db.socket.startsWith(dir)).toBe(false);
      expect(db.socket.length).toBeLessThanOrEqual(100);
      const conn = await mysql.createConnection({ host: db.host, port: db.port, user: 'archiver', password });
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id, @@binlog_row_metadata AS meta');
      await conn.end();
      expect(rows[0]).toEqual({ id: 7, meta: 'FULL' });
      const cmdline = await readFile(`/proc/${db.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(password);
      expect(cmdline).not.toContain(db.rootPassword);
    } finally {
      await db.shutdown();
    }
    expect(db.running).toBe(false);
    expect(await portIsOpen(db.port)).toBe(false);
    // shutdown keeps the files (the demo's --keep); stop removes them and the socket dir
    expect(existsSync(db.dataDir)).toBe(true);
    await db.stop();
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(db.socket)).toBe(false);
  });

  it('stops waiting and leaves nothing running when aborted during startup', T, async () => {
    const dir = await scratchDir();
    const controller = new AbortController();
    const start = startThrowawayMariadb({ dir }, controller.signal);
    controller.abort();
    await expect(start).rejects.toThrow(/abort/i);
    expect(await readFile(join(dir, 'mariadbd.pid'), 'utf8').catch(() => 'none')).toBe('none');
  });
});
