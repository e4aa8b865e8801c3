import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertServerReady, checkServer, type PreflightReport } from '../../src/binlog/preflight.js';
import { connectSource } from '../../src/db/connect.js';
import type { SourceOptions } from '../../src/db/source-options.js';
import { ConfigError, PreflightError, SourceConnectionError, type ArchiverError } from '../../src/errors.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { waitFor } from '../support/wait.js';

const T = { timeout: 60_000 };
const ARCHIVER_SERVER_ID = 4242;

afterAll(() => stopAllMariadb(), 60_000);

function archiverOptions(db: MariadbServer, extra: Partial<SourceOptions> = {}): SourceOptions {
  return { host: db.host, port: db.port, user: db.archiver.user, password: db.archiver.password, serverId: ARCHIVER_SERVER_ID, ...extra };
}

function rootOptions(db: MariadbServer): SourceOptions {
  return { host: db.host, port: db.port, user: db.rootUser, password: db.rootPassword, serverId: ARCHIVER_SERVER_ID };
}

async function check(db: MariadbServer, opts: { root?: boolean; serverId?: number; role?: 'archiver' | 'dump'; user?: SourceOptions } = {}) {
  const conn = await connectSource(opts.user ?? (opts.root ? rootOptions(db) : archiverOptions(db)));
  try {
    return await checkServer(conn, { serverId: opts.serverId ?? ARCHIVER_SERVER_ID, role: opts.role ?? 'archiver' });
  } finally {
    await conn.end();
  }
}

const errors = (report: PreflightReport) => report.findings.filter((f) => f.severity === 'error');
const warnings = (report: PreflightReport) => report.findings.filter((f) => f.severity === 'warning');

describe('checkServer on a throwaway MariaDB', () => {
  let db: MariadbServer;

  beforeAll(async () => {
    db = await startMariadb({ serverId: 101, initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY)', 'INSERT INTO app.t VALUES (1)'] });
  }, 60_000);

  afterEach(async () => {
    // each test bends one global setting; put every one back
    await db.query(
      'SET GLOBAL binlog_format=ROW, GLOBAL binlog_row_image=FULL, GLOBAL binlog_row_metadata=FULL, GLOBAL binlog_checksum=CRC32',
    );
    await db.query("DROP USER IF EXISTS 'weak'@'127.0.0.1'");
  });

  it('passes a healthy server for the archiver user and for root, and reports its facts', T, async () => {
    for (const root of [false, true]) {
      const report = await check(db, { root });
      expect(report.findings).toEqual([]);
      expect(report.server).toMatchObject({
        isMariaDb: true,
        serverId: 101,
        isReplica: false,
        logBin: true,
        binlogFormat: 'ROW',
        binlogRowImage: 'FULL',
        binlogRowMetadata: 'FULL',
        binlogChecksum: 'CRC32',
        logSlaveUpdates: false,
        gtidBinlogPos: '0-101-3',
      });
      expect(report.server.version).toMatch(/^10\.11\..*MariaDB/);
      expect(assertServerReady(report)).toEqual([]);
    }
    // the archiver user also holds everything a dump needs
    expect(errors(await check(db, { role: 'dump' }))).toEqual([]);
  });

  it('refuses binlog_format=STATEMENT with the fix', T, async () => {
    await db.query('SET GLOBAL binlog_format=STATEMENT');
    const report = await check(db);
    expect(errors(report)).toEqual([
      {
        setting: 'binlog_format',
        severity: 'error',
        problem: 'binlog_format is STATEMENT, not ROW',
        fix: expect.stringContaining('SET GLOBAL binlog_format=ROW and binlog_format=ROW under [mysqld] in my.cnf'),
      },
    ]);
    expect(() => assertServerReady(report)).toThrow(PreflightError);
  });

  it('refuses binlog_row_image=MINIMAL', T, async () => {
    await db.query('SET GLOBAL binlog_row_image=MINIMAL');
    const report = await check(db);
    expect(errors(report).map((f) => [f.setting, f.problem])).toEqual([['binlog_row_image', 'binlog_row_image is MINIMAL, not FULL']]);
    expect(errors(report)[0]?.fix).toContain('SET GLOBAL binlog_row_image=FULL');
  });

  it('only warns on binlog_row_metadata=NO_LOG and accepts binlog_checksum=NONE', T, async () => {
    await db.query('SET GLOBAL binlog_row_metadata=NO_LOG, GLOBAL binlog_checksum=NONE');
    const report = await check(db);
    expect(errors(report)).toEqual([]);
    expect(warnings(report)).toEqual([
      {
        setting: 'binlog_row_metadata',
        severity: 'warning',
        problem: expect.stringContaining('binlog_row_metadata is NO_LOG, not FULL'),
        fix: expect.stringContaining('SET GLOBAL binlog_row_metadata=FULL'),
      },
    ]);
    expect(report.server.binlogChecksum).toBe('NONE');
    expect(assertServerReady(report)).toEqual(warnings(report));
  });

  it('names the missing privilege and the GRANT that fixes it', T, async () => {
    await db.query(`CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-password-1'; GRANT BINLOG MONITOR, SELECT ON *.* TO 'weak'@'127.0.0.1'`);
    const user = { ...archiverOptions(db), user: 'weak', password: 'weak-password-1' };
    const report = await check(db, { user });
    expect(errors(report)).toEqual([
      {
        setting: 'privileges',
        severity: 'error',
        problem: "user 'weak'@'127.0.0.1' lacks REPLICATION SLAVE",
        fix: "GRANT REPLICATION SLAVE ON *.* TO 'weak'@'127.0.0.1'",
      },
    ]);
    const dump = await check(db, { user, role: 'dump' });
    expect(errors(dump)[0]?.problem).toBe(
      "user 'weak'@'127.0.0.1' lacks REPLICATION SLAVE, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER (needed for dumps)",
    );
  });

  it('follows privileges granted through a role', T, async () => {
    await db.query(`CREATE ROLE IF NOT EXISTS archiver_role; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO archiver_role`);
    await db.query(`CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-password-1'; GRANT archiver_role TO 'weak'@'127.0.0.1'`);
    await db.query(`SET DEFAULT ROLE archiver_role FOR 'weak'@'127.0.0.1'`);
    const report = await check(db, { user: { ...archiverOptions(db), user: 'weak', password: 'weak-password-1' } });
    expect(errors(report)).toEqual([]);
  });

  it("refuses a serverId equal to the server's own server_id", T, async () => {
    const report = await check(db, { serverId: 101 });
    expect(errors(report)).toEqual([
      expect.objectContaining({ setting: 'serverId', problem: "serverId 101 is this server's own server_id" }),
    ]);
  });

  it('reports every error in one PreflightError with the fixes in its hint', T, async () => {
    await db.query('SET GLOBAL binlog_format=MIXED, GLOBAL binlog_row_image=NOBLOB');
    const report = await check(db, { serverId: 101 });
    let thrown: unknown;
    try {
      assertServerReady(report);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PreflightError);
    const error = thrown as PreflightError;
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('binlog_format: binlog_format is MIXED, not ROW');
    expect(error.message).toContain('binlog_row_image: binlog_row_image is NOBLOB, not FULL');
    expect(error.message).toContain("serverId: serverId 101 is this server's own server_id");
    expect(error.hint).toContain('SET GLOBAL binlog_format=ROW');
    expect(error.hint).toContain('SET GLOBAL binlog_row_image=FULL');
    expect(error.hint).toContain('set serverId in the archiver config');
  });
});

describe('checkServer on a replica', () => {
  let primary: MariadbServer;
  let replica: MariadbServer;

  beforeAll(async () => {
    [primary, replica] = await Promise.all([
      startMariadb({ serverId: 201, initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY)'] }),
      startMariadb({ serverId: 202 }),
    ]);
    await replica.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER=?, MASTER_PASSWORD=?,
         MASTER_USE_GTID=no, MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4`,
      [primary.port, primary.rootUser, primary.rootPassword],
    );
    await replica.query('START SLAVE');
    await primary.query('INSERT INTO app.t VALUES (7)');
    // real replication: the row written on the primary shows up on the replica
    await waitFor(async () => (await replica.query<{ id: number }[]>('SELECT id FROM app.t').catch(() => [])).length === 1, {
      what: 'the replica to apply the primary row',
      timeoutMs: 20_000,
    });
  }, 60_000);

  it('refuses a replica with log_slave_updates OFF, read with SHOW ALL SLAVES STATUS (root)', T, async () => {
    const report = await check(replica, { root: true });
    expect(report.server.isReplica).toBe(true);
    expect(errors(report)).toEqual([
      {
        setting: 'log_slave_updates',
        severity: 'error',
        problem: expect.stringContaining('this server is a replica and log_slave_updates is OFF'),
        fix: expect.stringContaining('log_slave_updates=ON under [mysqld] in my.cnf'),
      },
    ]);
  });

  it('refuses it too for a user without SLAVE MONITOR, from the replication counters', T, async () => {
    const report = await check(replica);
    expect(report.server.isReplica).toBe(true);
    expect(errors(report).map((f) => f.setting)).toEqual(['log_slave_updates']);
  });

  it("refuses a serverId equal to a connected replica's server_id", T, async () => {
    await waitFor(async () => (await primary.query<unknown[]>('SHOW SLAVE HOSTS')).length === 1, { what: 'the replica to register' });
    const report = await check(primary, { root: true, serverId: 202 });
    expect(report.server.isReplica).toBe(false);
    expect(errors(report)).toEqual([
      expect.objectContaining({ setting: 'serverId', problem: expect.stringContaining('serverId 202 is already used by the replica at 127.0.0.1:') }),
    ]);
    // the archiver user cannot list replicas on MariaDB: it is told so instead of passing silently
    const limited = await check(primary, { serverId: 202 });
    expect(errors(limited)).toEqual([]);
    expect(warnings(limited)).toEqual([
      expect.objectContaining({ setting: 'serverId', fix: expect.stringContaining('GRANT REPLICATION MASTER ADMIN ON *.*') }),
    ]);
  });
  // runs last in this block: it stops replication
  it('still catches a replica whose replication is stopped', T, async () => {
    await replica.query('STOP SLAVE');
    await waitFor(async () => (await replica.query<{ Value: string }[]>("SHOW GLOBAL STATUS LIKE 'Slaves_running'"))[0]?.Value === '0', {
      what: 'replication threads to stop',
    });
    // root reads SHOW ALL SLAVES STATUS, which lists a configured replica even when stopped
    expect(errors(await check(replica, { root: true })).map((f) => f.setting)).toEqual(['log_slave_updates']);
    // the archiver user only sees that this server has replicated before: a warning, not silence
    const limited = await check(replica);
    expect(errors(limited)).toEqual([]);
    expect(warnings(limited)).toEqual([
      expect.objectContaining({ setting: 'log_slave_updates', fix: expect.stringContaining('GRANT SLAVE MONITOR ON *.*') }),
    ]);
  });
});

describe('connectSource', () => {
  let db: MariadbServer;
  let tls: { dir: string; ca: string; otherCa: string };

  beforeAll(async () => {
    tls = await makeCertificates();
    db = await startMariadb({
      extraArgs: [`--ssl-ca=${tls.ca}`, `--ssl-cert=${join(tls.dir, 'server.pem')}`, `--ssl-key=${join(tls.dir, 'server.key')}`],
    });
  }, 60_000);
  afterAll(() => rm(tls.dir, { recursive: true, force: true }));

  it('returns lossless values over a utf8mb4 connection', T, async () => {
    const conn = await connectSource(archiverOptions(db));
    const [rows] = await conn.query<import('mysql2/promise').RowDataPacket[]>(
      "SELECT CAST('2024-02-29 23:59:59.123456' AS DATETIME(6)) AS dt, 18446744073709551615 AS big, 'é🎉' AS s, @@character_set_client AS cs",
    );
    await conn.end();
    expect(rows[0]).toEqual({ dt: '2024-02-29 23:59:59.123456', big: '18446744073709551615', s: 'é🎉', cs: 'utf8mb4' });
  });

  it('names host:port and user but never the password when the password is wrong', T, async () => {
    const password = 'wrong-secret-7d1f';
    const error = await failure(connectSource(archiverOptions(db, { password })));
    expect(error).toBeInstanceOf(SourceConnectionError);
    expect(error.message).toBe(`cannot connect to 127.0.0.1:${db.port} as user 'archiver': access denied (using password: yes)`);
    expect(error.hint).toMatch(/password/);
    expect(`${error.message} ${error.hint} ${String(error.stack)}`).not.toContain(password);
    expect(JSON.stringify(error)).not.toContain(password);
  });

  it('says the server may not be running when the port refuses', T, async () => {
    const gone = await startMariadb();
    await gone.stop();
    const error = await failure(connectSource(archiverOptions(gone)));
    expect(error.message).toBe(`cannot connect to 127.0.0.1:${gone.port} as user 'archiver': connection refused`);
    expect(error.hint).toMatch(/server is running/);
  });

  it('verifies the server certificate against tls.caFile and the name in tls.serverName', T, async () => {
    const conn = await connectSource(archiverOptions(db, { tls: { caFile: tls.ca, serverName: 'db.test' } }));
    const [rows] = await conn.query<import('mysql2/promise').RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_version'");
    await conn.end();
    expect(String(rows[0]?.['Value'])).toMatch(/^TLSv1\.[23]$/);
  });

  it('refuses a certificate from an unknown CA or for another name unless verification is off', T, async () => {
    const unknownCa = await failure(connectSource(archiverOptions(db, { tls: { caFile: tls.otherCa, serverName: 'db.test' } })));
    expect(unknownCa.message).toMatch(/tls certificate check failed/);
    expect(unknownCa.hint).toMatch(/tls\.caFile/);
    // the certificate is for db.test, not for 127.0.0.1
    const wrongName = await failure(connectSource(archiverOptions(db, { tls: { caFile: tls.ca } })));
    expect(wrongName.message).toMatch(/tls certificate check failed/);
    const unchecked = await connectSource(archiverOptions(db, { tls: { rejectUnauthorized: false } }));
    await unchecked.end();
  });

  it('turns an unreadable CA file into a ConfigError', async () => {
    const error = await failure(connectSource(archiverOptions(db, { tls: { caFile: join(tls.dir, 'missing.pem') } })));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^cannot read the tls ca file .*missing\.pem: ENOENT/);
  });
});

async function failure(promise: Promise<unknown>): Promise<ArchiverError> {
  try {
    await promise;
  } catch (error) {
    return error as ArchiverError;
  }
  throw new Error('expected a failure');
}

/** a CA with a server certificate for db.test, and a second CA that signed nothing */
async function makeCertificates(): Promise<{ dir: string; ca: string; otherCa: string }> {
  const run = promisify(execFile);
  const dir = await mkdtemp(join(tmpdir(), 'preflight-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=test-ca']);
  await run('openssl', ['req', '-x509', ...ec, '-keyout', join(dir, 'other.key'), '-out', join(dir, 'other.pem'), '-days', '2', '-subj', '/CN=other-ca']);
  await run('openssl', ['req', ...ec, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=db.test']);
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=DNS:db.test\n');
  await run('openssl', [
    'x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf'),
  ]);
  return { dir, ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other.pem') };
}

/**
 * No MySQL server can run here (Debian ships MariaDB only), so MySQL's answers are scripted from
 * what MySQL 8.0 prints; everything MariaDB-specific above runs against real servers.
 */
describe('checkServer with MySQL 8 answers (scripted)', () => {
  function mysqlServer(opts: { oldSyntax?: boolean; replicaIds?: number[] } = {}) {
    const sqlError = (errno: number, message: string) => Object.assign(new Error(message), { errno });
    // SHOW REPLICA STATUS and SHOW REPLICAS arrived in 8.0.22
    const newSyntax = (rows: unknown[]) => {
      if (opts.oldSyntax) throw sqlError(1064, 'You have an error in your SQL syntax');
      return rows;
    };
    const answers: [RegExp, () => unknown[]][] = [
      [
        /^SHOW GLOBAL VARIABLES/,
        () =>
          Object.entries({
            version: '8.0.36',
            version_comment: 'MySQL Community Server - GPL',
            server_id: '1',
            server_uuid: '3e11fa47-71ca-11e1-9e33-c80aa9429562',
            log_bin: 'ON',
            binlog_format: 'ROW',
            binlog_row_image: 'FULL',
            binlog_row_metadata: 'MINIMAL',
            binlog_checksum: 'CRC32',
            log_slave_updates: 'OFF',
            log_replica_updates: 'OFF',
            gtid_mode: 'ON',
            gtid_executed: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5',
          }).map(([Variable_name, Value]) => ({ Variable_name, Value })),
      ],
      [/^SELECT CURRENT_USER/, () => [{ account: 'arch@%' }]],
      [
        /^SHOW GRANTS FOR CURRENT_USER/,
        () => [
          { 'Grants for arch@%': 'GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `arch`@`%`' },
          { 'Grants for arch@%': 'GRANT BACKUP_ADMIN ON *.* TO `arch`@`%`' },
        ],
      ],
      [/^SHOW REPLICA STATUS$/, () => newSyntax([])],
      [/^SHOW SLAVE STATUS$/, () => [{ Slave_IO_State: 'Waiting for source to send event', Master_Host: 'primary' }]],
      [/^SHOW SLAVE HOSTS$/, () => (opts.replicaIds ?? []).map((id) => ({ Server_id: id, Host: 'r1', Port: 3306, Master_id: 1 }))],
      [/^SHOW REPLICAS$/, () => newSyntax((opts.replicaIds ?? []).map((id) => ({ Server_Id: id, Host: 'r1', Port: 3306, Source_Id: 1 })))],
    ];
    const seen: string[] = [];
    return {
      seen,
      async query(sql: string): Promise<[unknown, unknown]> {
        seen.push(sql);
        const match = answers.find(([pattern]) => pattern.test(sql));
        if (!match) throw sqlError(1064, `unexpected statement in the MySQL script: ${sql}`);
        return [match[1](), []];
      },
    };
  }

  it('reads MySQL names: log_replica_updates, server_uuid, gtid_executed, REPLICATION CLIENT', async () => {
    const conn = mysqlServer({ replicaIds: [4242] });
    const report = await checkServer(conn, { serverId: 4242 });
    expect(report.server).toMatchObject({
      isMariaDb: false,
      serverId: 1,
      serverUuid: '3e11fa47-71ca-11e1-9e33-c80aa9429562',
      gtidBinlogPos: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5',
      isReplica: false,
    });
    expect(conn.seen).toContain('SHOW REPLICA STATUS');
    expect(conn.seen.some((sql) => sql.includes('SLAVES'))).toBe(false);
    expect(report.findings.map((f) => [f.severity, f.setting])).toEqual([
      ['warning', 'binlog_row_metadata'],
      ['error', 'serverId'],
    ]);
    expect(report.findings[1]?.problem).toBe('serverId 4242 is already used by the replica at r1:3306');
    const dump = await checkServer(conn, { serverId: 99, role: 'dump' });
    expect(errors(dump)).toEqual([
      {
        setting: 'privileges',
        severity: 'error',
        problem: "user 'arch'@'%' lacks RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER (needed for dumps)",
        fix: "GRANT RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO 'arch'@'%'",
      },
    ]);
  });

  it('falls back to SHOW SLAVE STATUS on servers before 8.0.22 and names log_replica_updates', async () => {
    const conn = mysqlServer({ oldSyntax: true });
    const report = await checkServer(conn, { serverId: 99 });
    expect(conn.seen).toContain('SHOW SLAVE STATUS');
    expect(report.server.isReplica).toBe(true);
    expect(errors(report).map((f) => [f.setting, f.problem])).toEqual([
      ['log_replica_updates', 'this server is a replica and log_replica_updates is OFF, so the changes it replicates never reach its binlog'],
    ]);
  });
});
