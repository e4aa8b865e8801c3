/**
 * The seed scenario against the real parts: a MariaDB with a workload on several tables, the real
 * daemon archiving its binlog to a local storage, real dumps; at T someone runs DELETE FROM
 * billing; `restore table app.billing --at <T minus 1 s>` gives billing as it was just before T,
 * and nothing else changes (the live tables, the server's binlog). Then: a damaged dump file makes
 * it use an older dump; a damaged segment is refused by name; DDL on the table is refused.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { cliInProcess } from '../../support/in-process-cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSegments } from '../../../src/binlog/archive-catalog.js';
import { listDumps } from '../../../src/dump/index.js';
import { createLocalStorage } from '../../../src/storage/local/local-storage.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../../support/mariadb.js';
import { fingerprintTable, type TableFingerprint } from '../../support/table-fingerprint.js';
import { BILLING_DDL, BILLING_ROWS } from '../rds/helpers.js';
import { startArchiveRig, type ArchiveRig } from './rig.js';

let db: MariadbServer;
let rig: ArchiveRig;
/** billing just before the DELETE, and the moment 1 s before it */
let expected: TableFingerprint;
let beforeDelete: string;
/** the binlog position just before the DELETE, and the GTID of the transaction before it */
let positionBeforeDelete: { file: string; position: number };
let gtidBeforeDelete: string;
let otherTablesAfter: TableFingerprint[];

const cli = (argv: string[]) => rig.cli(argv);
/** a terminal on which the operator types `answer` */
const terminal = (answer: string) => Object.assign(Readable.from([answer]), { isTTY: true });
const masterPosition = () => rig.masterPosition();

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

beforeAll(async () => {
  db = await startMariadb({ serverId: 831, initSql: [...BILLING_DDL, ...BILLING_ROWS, 'CREATE TABLE app.events (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50))'] });
  rig = await startArchiveRig(db, 9831);
  // two dumps with work between and after them; each dump a clear second before what follows
  await workload(1);
  await rig.dump();
  await workload(2);
  await workload(3);
  await rig.dump();
  await workload(4);
  await workload(5);
  expected = await fingerprint('billing');
  // the DELETE comes a whole second after the last change it must not undo
  await rig.nextSecond();
  positionBeforeDelete = await masterPosition();
  gtidBeforeDelete = String((await db.query<{ g: string }[]>('SELECT @@gtid_binlog_pos AS g'))[0]?.g);
  const deleteAt = Date.now();
  await db.query('DELETE FROM app.billing');
  beforeDelete = new Date(deleteAt - 1000).toISOString();
  await workload(6);
  await rig.waitArchived();
  otherTablesAfter = [await fingerprint('billing'), await fingerprint('customers'), await fingerprint('events')];
}, 180_000);

afterAll(async () => {
  await rig?.stop();
  await stopAllMariadb();
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
    // the plan comes before the restore acts
    expect(r.stdout.indexOf('plan:')).toBeGreaterThanOrEqual(0);
    expect(r.stdout.indexOf('plan:')).toBeLessThan(r.stdout.indexOf('load:'));
    // the live tables are as they were, the server's binlog did not move, no scratch database is left
    expect([await fingerprint('billing'), await fingerprint('customers'), await fingerprint('events')]).toEqual(otherTablesAfter);
    expect(await masterPosition()).toEqual(before);
    const dbs = await db.query<{ Database: string }[]>('SHOW DATABASES');
    expect(dbs.map((d) => d.Database).filter((d) => d.startsWith('__ma_restore'))).toEqual([]);

    // --where: only the matching rows of the same restored state
    const [wanted] = await db.query<{ n: number }[]>(`SELECT COUNT(*) AS n FROM app.${name} WHERE customer_id = 2`);
    expect(Number(wanted?.n)).toBeGreaterThan(0);
    const some = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--where', 'customer_id = 2', '--into', 'app.billing_cust2']);
    expect(some.stderr).toBe('');
    expect(some.code).toBe(0);
    const [got] = await db.query<{ n: number; other: number }[]>('SELECT COUNT(*) AS n, SUM(customer_id <> 2) AS other FROM app.billing_cust2');
    expect(Number(got?.n)).toBe(Number(wanted?.n));
    expect(Number(got?.other)).toBe(0);
    expect(await masterPosition()).toEqual(before);
    await db.query(`DROP TABLE app.${name}, app.billing_cust2`);
  });

  it('--at FILE:POS, --at-gtid and --at-position stop exactly there; a missing or doubled point exits 2', { timeout: 120_000 }, async () => {
    const byPos = await cli(['restore', 'table', 'app.billing', '--at', `${positionBeforeDelete.file}:${positionBeforeDelete.position}`, '--into', 'app.billing_at_pos']);
    expect(byPos.stderr).toBe('');
    expect(byPos.code).toBe(0);
    expect((await fingerprint('billing_at_pos')).digest).toBe(expected.digest);
    const byGtid = await cli(['restore', 'table', 'app.billing', '--at-gtid', gtidBeforeDelete, '--into', 'app.billing_at_gtid']);
    expect(byGtid.stderr).toBe('');
    expect(byGtid.code).toBe(0);
    expect((await fingerprint('billing_at_gtid')).digest).toBe(expected.digest);
    const byPosFlag = await cli(['restore', 'table', 'app.billing', '--at-position', `${positionBeforeDelete.file}:${positionBeforeDelete.position}`, '--into', 'app.billing_at_pos2']);
    expect(byPosFlag.code).toBe(0);
    expect((await fingerprint('billing_at_pos2')).digest).toBe(expected.digest);
    await db.query('DROP TABLE app.billing_at_pos, app.billing_at_gtid, app.billing_at_pos2');
    // one way of saying when, and of the right kind
    for (const argv of [[], ['--at', beforeDelete, '--at-gtid', gtidBeforeDelete], ['--at-gtid', beforeDelete], ['--at-position', gtidBeforeDelete]]) {
      const bad = await cli(['restore', 'table', 'app.billing', ...argv, '--dry-run']);
      expect({ argv, code: bad.code }).toEqual({ argv, code: 2 });
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('a damaged file of the newest dump is named, and the older dump is used instead', { timeout: 120_000 }, async () => {
    const disk = createLocalStorage({ path: join(rig.work, 'disk') });
    const [older, newest] = await listDumps(disk, 'daily');
    const manifest = JSON.parse(await readFile(join(rig.work, 'disk', newest!.prefix, 'dump.json'), 'utf8')) as { files: { key: string }[] };
    const dataFile = manifest.files.find((f) => f.key.startsWith('app/billing.') && /\.sql\.(gz|zst)$/.test(f.key))!.key;
    const path = join(rig.work, 'disk', newest!.prefix, dataFile);
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
    const segs = await listSegments(createLocalStorage({ path: join(rig.work, 'disk') }));
    const victim = segs.at(-1)!;
    const path = join(rig.work, 'disk', victim.key);
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
    await rig.waitArchived();
    const r = await cli(['restore', 'table', 'app.events', '--at', new Date(Date.now() + 1000).toISOString(), '--into', 'app.events_back']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/app\.events was changed by DDL at .*ALTER TABLE app\.events ADD COLUMN extra/);
    expect(r.stderr).toMatch(/Restore to a moment before that statement/);
  });

  // last: it changes the live table
  it('--replace is refused without a way to confirm; once confirmed (terminal or --yes) the live table gets the restored rows in one replicated transaction, its old rows kept', { timeout: 120_000 }, async () => {
    const liveBefore = await fingerprint('billing');
    const tables = async () => (await db.query<{ t: string }[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME LIKE 'billing%' ORDER BY 1")).map((r) => r.t);
    const tablesBefore = await tables();
    const before = await masterPosition();
    const refused = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--replace']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--replace needs a confirmation.*--yes/s);
    expect(await masterPosition()).toEqual(before);
    expect(await tables()).toEqual(tablesBefore);
    for (const other of [['--where', 'id > 1'], ['--to-file', '/tmp/never.sql']]) {
      const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--replace', '--yes', ...other]);
      expect(r.code).toBe(2);
    }

    // on a terminal it asks once the copy exists; any answer but the table's name changes nothing live
    const declined = await cliInProcess(['--config', rig.configFile, 'restore', 'table', 'app.billing', '--at', beforeDelete, '--replace'], rig.env, terminal('no\n'));
    expect(declined.code).toBe(0);
    expect(declined.stderr).toMatch(/Type app\.billing to confirm/);
    expect(declined.stdout).toMatch(/not replaced: app\.billing is untouched; the restored rows stay in app\.billing__restored_/);
    expect((await fingerprint('billing')).digest).toBe(liveBefore.digest);
    const kept = /rows stay in app\.(\S+)/.exec(declined.stdout)?.[1] as string;
    await db.query(`DROP TABLE app.\`${kept}\``);

    const r = await cliInProcess(['--config', rig.configFile, 'restore', 'table', 'app.billing', '--at', beforeDelete, '--replace'], rig.env, terminal('app.billing\n'));
    expect(r.stderr).toMatch(/Type app\.billing to confirm/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`replaced: app\\.billing now holds the ${expected.rows} restored row\\(s\\); its previous rows are in app\\.billing__before_replace_\\d{8}_\\d{6}`));
    const live = await fingerprint('billing');
    expect(live.rows).toBe(expected.rows);
    expect(live.digest).toBe(expected.digest);
    const backup = /previous rows are in app\.(billing__before_replace_\d{8}_\d{6})/.exec(r.stdout)?.[1] as string;
    expect((await fingerprint(backup)).digest).toBe(liveBefore.digest);
    // the restored copy is gone; the swap went through the binlog (replicas get it as row events)
    expect((await tables()).filter((t) => !tablesBefore.includes(t))).toEqual([backup]);
    expect(await masterPosition()).not.toEqual(before);

    // --yes confirms in advance (scripts); a second replace in the same second gets its own backup name
    const again = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--replace', '--yes']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect((await fingerprint('billing')).digest).toBe(expected.digest);
    const backup2 = /previous rows are in app\.(\S+)/.exec(again.stdout)?.[1] as string;
    expect(backup2).not.toBe(backup);
    expect((await fingerprint(backup2)).digest).toBe(expected.digest);
  });
});
