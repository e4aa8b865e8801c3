/**
 * The seed scenario against the real parts: a MariaDB with a workload on several tables, the real
 * daemon archiving its binlog to a local storage, real dumps; at T someone runs DELETE FROM
 * billing; `restore table app.billing --at <T minus 1 s>` gives billing as it was just before T,
 * and nothing else changes (the live tables, the server's binlog). Then: a damaged dump file makes
 * it use an older dump; a damaged segment is refused by name; DDL on the table is refused.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSegments } from '../../../src/binlog/archive-catalog.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { loadSchedules } from '../../../src/config/schedules.js';
import { runDaemon, type DaemonStatus } from '../../../src/daemon/run-daemon.js';
import { listDumps } from '../../../src/dump/index.js';
import { createSilentLogger } from '../../../src/ops/logger.js';
import { readStatusFile } from '../../../src/ops/status-file.js';
import { createLocalStorage } from '../../../src/storage/local/local-storage.js';
import { cliInProcess } from '../../support/in-process-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../../support/mariadb.js';
import { fingerprintTable, type TableFingerprint } from '../../support/table-fingerprint.js';
import { waitFor } from '../../support/wait.js';
import { BILLING_DDL, BILLING_ROWS } from '../rds/helpers.js';

let db: MariadbServer;
let work: string;
let stopDaemon: () => Promise<void>;
let env: NodeJS.ProcessEnv;
/** billing just before the DELETE, and the moment 1 s before it */
let expected: TableFingerprint;
let beforeDelete: string;
let otherTablesAfter: TableFingerprint[];

const cli = (argv: string[]) => cliInProcess(['--config', join(work, 'config.yaml'), ...argv], env);

async function masterPosition(): Promise<{ file: string; position: number }> {
  const [row] = await db.query<{ File: string; Position: string }[]>('SHOW MASTER STATUS');
  return { file: row!.File, position: Number(row!.Position) };
}

async function fingerprint(table: string): Promise<TableFingerprint> {
  const conn = await db.connectRoot();
  try {
    return await fingerprintTable(conn, 'app', table);
  } finally {
    await conn.end();
  }
}

async function workload(round: number): Promise<void> {
  await db.query(`INSERT INTO app.billing (customer_id, label, legacy, amount, big, ratio, payload, flags, at, ts) VALUES
    (1, 'round ${round} 🎉', 'é', ${round}.0101, ${round}, ${round} / 3, RANDOM_BYTES(40), b'11', NOW(6), NOW(3)),
    (2, 'round ${round} b', NULL, -${round}.5, NULL, NULL, NULL, NULL, '2020-02-29 12:00:00.000001', NULL)`);
  await db.query(`UPDATE app.billing SET amount = amount + 1, label = CONCAT(label, '+') WHERE id % 2 = ${round % 2}`);
  await db.query(`DELETE FROM app.billing WHERE id = ${10 + round}`);
  await db.query(`INSERT INTO app.events (note) VALUES ('round ${round}'), ('again ${round}')`);
  await db.query(`UPDATE app.customers SET name = CONCAT(name, '.') WHERE id = ${1 + (round % 2)}`);
}

async function waitArchived(): Promise<void> {
  const target = await masterPosition();
  await waitFor(
    async () => {
      const segs = await listSegments(createLocalStorage({ path: join(work, 'disk') }));
      const last = segs.at(-1);
      return last !== undefined && last.serverFile === target.file && last.endPos >= target.position;
    },
    { what: `the archive to reach ${target.file}:${target.position}`, timeoutMs: 30_000, intervalMs: 200 },
  );
}

beforeAll(async () => {
  db = await startMariadb({ serverId: 831, initSql: [...BILLING_DDL, ...BILLING_ROWS, 'CREATE TABLE app.events (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50))'] });
  work = await mkdtemp(join(tmpdir(), 'archive-restore-'));
  await mkdir(join(work, 'schedules'));
  await writeFile(
    join(work, 'config.yaml'),
    stringify({
      source: { host: '127.0.0.1', port: db.port, user: 'archiver', password: { env: 'T_DB' }, serverId: 9831 },
      archiver: { storage: 'disk', spoolDir: join(work, 'spool'), stateDir: join(work, 'state'), segment: { maxSeconds: 1 }, spoolMaxBytes: '1GiB' },
      storages: { disk: { type: 'local', path: join(work, 'disk') } },
      restore: { target: { host: '127.0.0.1', port: db.port, user: db.rootUser, password: { env: 'T_ROOT' } } },
      log: { level: 'warn', format: 'json' },
    }),
  );
  await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk'], retention: { keep: 7 } }));
  env = { ...process.env, T_DB: db.archiver.password, T_ROOT: db.rootPassword };
  const config = await loadConfig(join(work, 'config.yaml'));
  const controller = new AbortController();
  const running = runDaemon(config, { logger: createSilentLogger(), signal: controller.signal, env, schedules: await loadSchedules(config.schedulesDir, config), statusEveryMs: 200 });
  stopDaemon = async () => {
    controller.abort();
    await running;
  };
  await waitFor(async () => (await readStatusFile<DaemonStatus>(config.archiver.stateDir))?.archiver?.connected === true, { what: 'the archiver to connect', timeoutMs: 30_000 });

  // two dumps with work between and after them; each dump a clear second before what follows
  const dumpAndWait = async () => {
    expect((await cli(['dump', '--tier', 'daily'])).code).toBe(0);
    const done = Date.now();
    await waitFor(() => Date.now() >= done + 1100, { what: 'a second after the dump', timeoutMs: 3000 });
  };
  await workload(1);
  await dumpAndWait();
  await workload(2);
  await workload(3);
  await dumpAndWait();
  await workload(4);
  await workload(5);
  expected = await fingerprint('billing');
  // the DELETE comes a whole second after the last change it must not undo
  const last = Date.now();
  await waitFor(() => Date.now() >= (Math.floor(last / 1000) + 1) * 1000 + 50, { what: 'the next second', timeoutMs: 3000 });
  const deleteAt = Date.now();
  await db.query('DELETE FROM app.billing');
  beforeDelete = new Date(deleteAt - 1000).toISOString();
  await workload(6);
  await waitArchived();
  otherTablesAfter = [await fingerprint('billing'), await fingerprint('customers'), await fingerprint('events')];
}, 180_000);

afterAll(async () => {
  await stopDaemon?.();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('restore table --from archive', () => {
  it('--dry-run prints the plan (dump, segments, bytes, estimate, times in UTC and local) and changes nothing', async () => {
    const before = await masterPosition();
    const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/table: +app\.billing as of \S+Z UTC \(.+\)/);
    expect(r.stdout).toMatch(/dump: +\S+ on disk \(taken .*, binlog mysql-bin\.\d+:\d+\)/);
    expect(r.stdout).toMatch(/binlog: +\d+ segment\(s\) of server-831, \d+ bytes/);
    expect(r.stdout).toMatch(/estimate: +about \d+ s/);
    expect(await masterPosition()).toEqual(before);
    const dbs = await db.query<{ Database: string }[]>('SHOW DATABASES');
    expect(dbs.map((d) => d.Database).filter((d) => d.startsWith('__ma_restore'))).toEqual([]);
  });

  it('the seed scenario: billing as it was 1 s before DELETE FROM billing, into a new table; nothing else changes', { timeout: 120_000 }, async () => {
    const before = await masterPosition();
    const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const name = /into table app\.(billing__restored_\d{8}_\d{6})/.exec(r.stdout)?.[1];
    expect(name).toBeDefined();
    const restored = await fingerprint(name as string);
    expect(restored.rows).toBe(expected.rows);
    expect(restored.digest).toBe(expected.digest);
    expect(restored.sample).toEqual(expected.sample);
    expect(r.stdout).toContain(`restored ${expected.rows} row(s) of app.billing`);
    expect(r.stdout).toContain('RENAME TABLE app.billing TO app.billing__old');
    // the live tables are as they were, the server's binlog did not move, no scratch database is left
    expect([await fingerprint('billing'), await fingerprint('customers'), await fingerprint('events')]).toEqual(otherTablesAfter);
    expect(await masterPosition()).toEqual(before);
    const dbs = await db.query<{ Database: string }[]>('SHOW DATABASES');
    expect(dbs.map((d) => d.Database).filter((d) => d.startsWith('__ma_restore'))).toEqual([]);
    await db.query(`DROP TABLE app.${name}`);
  });

  it('a damaged file of the newest dump is named, and the older dump is used instead', { timeout: 120_000 }, async () => {
    const disk = createLocalStorage({ path: join(work, 'disk') });
    const [older, newest] = await listDumps(disk, 'daily');
    const manifest = JSON.parse(await readFile(join(work, 'disk', newest!.prefix, 'dump.json'), 'utf8')) as { files: { key: string }[] };
    const dataFile = manifest.files.find((f) => f.key.startsWith('app/billing.') && f.key.endsWith('.gz'))!.key;
    const path = join(work, 'disk', newest!.prefix, dataFile);
    const original = await readFile(path);
    const damaged = Buffer.from(original);
    damaged.writeUInt8(damaged.readUInt8(Math.floor(damaged.length / 2)) ^ 0xff, Math.floor(damaged.length / 2));
    await writeFile(path, damaged);
    try {
      const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--into', 'app.billing_from_older']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`dump ${newest!.dumpId} on disk failed verification`);
      expect(r.stdout).toContain(dataFile);
      expect(r.stdout).toContain(`using the older dump ${older!.dumpId}`);
      const restored = await fingerprint('billing_from_older');
      expect(restored.digest).toBe(expected.digest);
      await db.query('DROP TABLE app.billing_from_older');
    } finally {
      await writeFile(path, original);
    }
  });

  it('a damaged segment is refused by name and nothing is left behind', { timeout: 120_000 }, async () => {
    const segs = await listSegments(createLocalStorage({ path: join(work, 'disk') }));
    const victim = segs.at(-1)!;
    const path = join(work, 'disk', victim.key);
    const original = await readFile(path);
    const damaged = Buffer.from(original);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 10) ^ 0xff, damaged.length - 10);
    await writeFile(path, damaged);
    try {
      const r = await cli(['restore', 'table', 'app.billing', '--at', new Date(Date.now() + 3_600_000).toISOString(), '--into', 'app.never']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(victim.key);
      expect(r.stderr).toMatch(/differs from its manifest record/);
      const tables = await db.query<{ n: number }[]>("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_NAME = 'never'");
      expect(Number(tables[0]?.n)).toBe(0);
      const dbs = await db.query<{ Database: string }[]>('SHOW DATABASES');
      expect(dbs.map((d) => d.Database).filter((d) => d.startsWith('__ma_restore'))).toEqual([]);
    } finally {
      await writeFile(path, original);
    }
  });

  it('DDL on the table between the dump and the moment is refused with the statement and the fix', { timeout: 120_000 }, async () => {
    await db.query('ALTER TABLE app.events ADD COLUMN extra INT NULL');
    await db.query("INSERT INTO app.events (note, extra) VALUES ('after alter', 1)");
    await waitArchived();
    const r = await cli(['restore', 'table', 'app.events', '--at', new Date(Date.now() + 1000).toISOString(), '--into', 'app.events_back']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/app\.events was changed by DDL at .*ALTER TABLE app\.events ADD COLUMN extra/);
    expect(r.stderr).toMatch(/Restore to a moment before that statement/);
  });
});
