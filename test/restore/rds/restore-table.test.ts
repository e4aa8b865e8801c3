import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreTableFromRds, type RdsRestoreProgress } from '../../../src/restore/rds/index.js';
import { portIsOpen } from '../../support/free-port.js';
import { stopAllMariadb } from '../../support/mariadb.js';
import { fingerprintTable } from '../../support/table-fingerprint.js';
import { baseOptions, captureLogger, describeError, secretsOf, startRig, T0, type Rig } from './helpers.js';

let rig: Rig;
let dir: string;

beforeAll(async () => {
  rig = await startRig();
  dir = await mkdtemp(join(tmpdir(), 'rds-restore-'));
});

afterAll(async () => {
  await rig?.fake.close();
  await stopAllMariadb();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('restoreTableFromRds against the fake RDS', () => {
  it('restores app.billing as it was 1 s before the DELETE into a new table, leaves the live table alone and deletes the instance', async () => {
    const log = captureLogger();
    const progress: RdsRestoreProgress[] = [];
    const result = await restoreTableFromRds(baseOptions(rig, log, { onProgress: (p) => void progress.push(p) }));
    expect(result.dryRun).toBe(false);
    if (result.dryRun) return;
    expect(result.instance).toBe('prod-db-restore-20261125100959');
    expect(result.rows).toBe(5);
    expect(result.instanceDeleted).toBe(true);
    expect(result.target).toBe('table app.billing__restored_20261125_100959');

    const conn = await rig.db.connectRoot();
    try {
      // the live table is untouched (still empty after the DELETE)
      const [live] = await conn.query('SELECT COUNT(*) AS n FROM app.billing');
      expect(Number((live as { n: unknown }[])[0]?.n)).toBe(0);
      // the restored rows equal the seeded ones, value for value
      const restored = await fingerprintTable(conn, 'app', 'billing__restored_20261125_100959');
      expect(restored.rows).toBe(5);
      await conn.query('CREATE TABLE app.expected LIKE app.billing');
      const { BILLING_ROWS } = await import('./helpers.js');
      await conn.query(String(BILLING_ROWS[1]).replace('INSERT INTO app.billing', 'INSERT INTO app.expected'));
      const expected = await fingerprintTable(conn, 'app', 'expected');
      expect(restored.digest).toBe(expected.digest);
      expect(restored.sample).toEqual(expected.sample);
      // no foreign key on the copy (its name would clash with the live table's)
      expect(restored.ddl).not.toMatch(/FOREIGN KEY/);
      expect(restored.ddl).toMatch(/amount_x2/);
      await conn.query('DROP TABLE app.expected');
    } finally {
      await conn.end();
    }

    // the temporary instance is gone, and so is its mariadbd
    expect(await describeError(rig.rds, result.instance)).toBe('DBInstanceNotFoundFault');
    const inst = rig.fake.history.find((i) => i.identifier === result.instance);
    expect(inst?.serverStopped).toBe(true);
    expect(await portIsOpen(inst!.server!.port)).toBe(false);

    // the restore request as RDS saw it
    const [call] = rig.fake.callsOf('RestoreDBInstanceToPointInTime');
    expect(call?.params).toMatchObject({
      SourceDBInstanceIdentifier: 'prod-db',
      TargetDBInstanceIdentifier: 'prod-db-restore-20261125100959',
      RestoreTime: '2026-11-25T10:09:59Z',
      DBInstanceClass: 'db.t3.small',
      DBSubnetGroupName: 'restore-subnets',
      'VpcSecurityGroupIds.VpcSecurityGroupId.1': 'sg-1',
      'VpcSecurityGroupIds.VpcSecurityGroupId.2': 'sg-2',
      PubliclyAccessible: 'false',
      DeletionProtection: 'false',
    });
    expect(inst?.tags).toEqual(
      expect.arrayContaining([
        { Key: 'tool', Value: 'mysql-archiver' },
        { Key: 'purpose', Value: 'table-restore' },
        { Key: 'requested-by', Value: 'oncall@example.com' },
        { Key: 'expires-at', Value: new Date(rig.clock.now.getTime() + 86_400_000).toISOString() },
        { Key: 'team', Value: 'billing' },
      ]),
    );
    const del = rig.fake.callsOf('DeleteDBInstance').find((c) => c.params['DBInstanceIdentifier'] === result.instance);
    expect(del?.params['SkipFinalSnapshot']).toBe('true');

    // progress showed the states, in order, and the copy
    const states = progress.filter((p) => p.phase === 'wait').map((p) => (p as { state: string }).state);
    expect([...new Set(states)]).toEqual(['creating', 'backing-up', 'available']);
    expect(progress.some((p) => p.phase === 'copy' && p.rows === 5)).toBe(true);
    expect(progress.filter((p) => p.phase === 'delete').map((p) => (p as { state: string }).state)).toContain('deleted');
    expect(log.text()).toContain('"state":"backing-up"');

    // no secret in the logs or on the wire to RDS or in argv
    for (const secret of secretsOf(rig)) {
      expect(log.text()).not.toContain(secret);
      expect(process.argv.join(' ')).not.toContain(secret);
      for (const c of rig.fake.calls) expect(c.body).not.toContain(secret);
    }
  });

  it('writes only the --where rows to a SQL file that loads into a new table', async () => {
    const log = captureLogger();
    const file = join(dir, 'billing-42.sql');
    const at = new Date(T0.getTime() + 30_000);
    const result = await restoreTableFromRds(baseOptions(rig, log, { at, toFile: file, where: 'customer_id = 42' }));
    if (result.dryRun) throw new Error('not a dry run');
    expect(result.rows).toBe(2);
    expect(result.instanceDeleted).toBe(true);
    const sql = await readFile(file, 'utf8');
    expect(sql).toContain('CREATE TABLE `app`.`billing__restored_20261125_100030`');
    expect(sql).toContain('-- 2 rows');
    expect(sql).not.toContain('INSERT INTO `app`.`billing` ');
    // the file loads and gives the two rows
    const conn = await rig.db.connectRoot();
    try {
      await conn.query(sql);
      const [rows] = await conn.query('SELECT id FROM app.billing__restored_20261125_100030 ORDER BY id');
      expect((rows as { id: number }[]).map((r) => r.id)).toEqual([3, 4]);
      await conn.query('DROP TABLE app.billing__restored_20261125_100030');
    } finally {
      await conn.end();
    }
    expect(await describeError(rig.rds, result.instance)).toBe('DBInstanceNotFoundFault');
  });

  it('--dry-run prints the plan and creates nothing', async () => {
    const log = captureLogger();
    const before = rig.fake.callsOf('RestoreDBInstanceToPointInTime').length;
    const at = new Date(T0.getTime() + 45_000);
    const result = await restoreTableFromRds(baseOptions(rig, log, { at, dryRun: true, timeZone: 'Europe/Berlin' }));
    expect(result.dryRun).toBe(true);
    const text = result.lines.join('\n');
    expect(text).toContain('source instance:    prod-db (db.r6g.large, mariadb 10.11.19)');
    expect(text).toMatch(/restore time: {7}2026-11-25T10:00:45.000Z UTC \(2026-11-25 11:00:45 (CET|GMT\+1) local\)/);
    expect(text).toContain('temporary instance: prod-db-restore-20261125100045 (db.t3.small, private, no TLS)');
    expect(text).toContain('into:               table app.billing__restored_20261125_100045');
    expect(text).toMatch(/expected duration:  about \d+-\d+ min/);
    expect(rig.fake.callsOf('RestoreDBInstanceToPointInTime').length).toBe(before);
    expect(rig.fake.callsOf('DeleteDBInstance').filter((c) => c.params['DBInstanceIdentifier'] === 'prod-db-restore-20261125100045')).toEqual([]);
    const [tables] = (await rig.db.query(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'billing__restored_20261125_100045'`)) as unknown[][];
    expect(tables ?? []).toEqual([]);
  });
});
