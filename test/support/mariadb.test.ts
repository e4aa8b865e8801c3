import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { startMariadb, stopAllMariadb, type MariadbServer } from './mariadb.js';

const T = { timeout: 60_000 };

afterAll(() => stopAllMariadb(), 60_000);

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function variables(server: MariadbServer): Promise<Record<string, string>> {
  const rows = await server.query<{ Variable_name: string; Value: string }[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN
      ('log_bin','binlog_format','binlog_row_image','binlog_row_metadata','binlog_checksum','server_id','log_slave_updates','bind_address','port')`,
  );
  return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
}

describe('startMariadb', () => {
  it('starts two servers in parallel with the binlog settings the archiver needs', T, async () => {
    const started = Date.now();
    const [a, b] = await Promise.all([startMariadb({ serverId: 11 }), startMariadb({ serverId: 12 })]);
    // documents the cost of a start in the test log
    console.info(`two mariadbd started in parallel in ${Date.now() - started} ms`);
    expect(a.port).not.toBe(b.port);
    expect(a.dir).not.toBe(b.dir);
    for (const [server, id] of [[a, '11'], [b, '12']] as const) {
      expect(await variables(server)).toEqual({
        log_bin: 'ON',
        binlog_format: 'ROW',
        binlog_row_image: 'FULL',
        binlog_row_metadata: 'FULL',
        binlog_checksum: 'CRC32',
        server_id: id,
        log_slave_updates: 'OFF',
        bind_address: '127.0.0.1',
        port: String(server.port),
      });
      expect(await readdir(server.binlogDir)).toContain('mysql-bin.000001');

      const conn = await mysql.createConnection({
        host: server.host,
        port: server.port,
        user: server.archiver.user,
        password: server.archiver.password,
      });
      const [grants] = await conn.query<mysql.RowDataPacket[]>('SHOW GRANTS FOR CURRENT_USER()');
      await conn.end();
      const text = String(Object.values(grants[0] ?? {})[0]);
      for (const privilege of ['REPLICATION SLAVE', 'BINLOG MONITOR', 'SELECT', 'RELOAD', 'LOCK TABLES', 'SHOW VIEW', 'EVENT', 'TRIGGER']) {
        expect(text).toContain(privilege);
      }
    }
  });

  it('keeps setup out of the binlog and runs initSql into it', T, async () => {
    const server = await startMariadb({ initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY)'] });
    const events = await server.query<{ Event_type: string; Info: string }[]>("SHOW BINLOG EVENTS IN 'mysql-bin.000001'");
    const statements = events.filter((e) => e.Event_type === 'Query').map((e) => e.Info);
    expect(statements.some((s) => s.includes('CREATE DATABASE app'))).toBe(true);
    expect(statements.some((s) => /archiver|ALTER USER/i.test(s))).toBe(false);
  });

  it('keeps committed data across a clean restart and across kill + restart', T, async () => {
    const server = await startMariadb({ initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))'] });
    const port = server.port;
    await server.query('INSERT INTO app.t VALUES (1, ?)', ['before restart']);
    await server.restart();
    expect(server.port).toBe(port);
    await server.query('INSERT INTO app.t VALUES (2, ?)', ['before kill']);
    await server.kill();
    await server.restart();
    expect(await server.query('SELECT id, v FROM app.t ORDER BY id')).toEqual([
      { id: 1, v: 'before restart' },
      { id: 2, v: 'before kill' },
    ]);
  });

  it('leaves nothing listening after kill', T, async () => {
    const server = await startMariadb();
    expect(await tcpConnects(server.port)).toBe(true);
    await server.kill();
    expect(await tcpConnects(server.port)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(true);
    await server.stop();
    expect(existsSync(server.dir)).toBe(false);
  });

  it('removes its dir on stop and stops only once', T, async () => {
    const server = await startMariadb();
    expect(existsSync(server.dataDir)).toBe(true);
    await server.stop();
    expect(existsSync(server.dir)).toBe(false);
    expect(await tcpConnects(server.port)).toBe(false);
    await server.stop();
    await expect(server.restart()).rejects.toThrow(/stopped/);
  });

  it('reports the tail of the error log when mariadbd cannot start', T, async () => {
    const error: Error = await startMariadb({ extraArgs: ['--no-such-option-for-test'] }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(/mariadbd failed to start/);
    expect(error.message).toMatch(/no-such-option-for-test/);
    const dir = /failed to start \(([^)]+)\)/.exec(error.message)?.[1];
    expect(dir && existsSync(dir)).toBe(false);
  });
});
