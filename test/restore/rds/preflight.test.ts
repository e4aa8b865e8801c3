import { RestoreDBInstanceToPointInTimeCommand } from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../../src/errors.js';
import { restoreTableFromRds } from '../../../src/restore/rds/index.js';
import { stopAllMariadb } from '../../support/mariadb.js';
import { baseOptions, captureLogger, errorOf, secretsOf, startRig, T0, T_DELETE, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig();
});
afterAll(async () => {
  await rig?.fake.close();
  await stopAllMariadb();
});

const restores = () => rig.fake.callsOf('RestoreDBInstanceToPointInTime').length;

describe('checks before anything is created (exit 2, nothing created)', () => {
  it.each([
    ['before the window', new Date(T0.getTime() - 1000), /at or after 2026-11-25T10:00:00.000Z/],
    ['after the window', new Date(T_DELETE.getTime() + 5000), /at or before 2026-11-25T10:10:01.000Z/],
  ])('refuses a time %s', async (_label, at, hint) => {
    const before = restores();
    const error = await errorOf(restoreTableFromRds(baseOptions(rig, captureLogger(), { at })));
    expect(error.code).toBe('E_RDS_RESTORE_WINDOW');
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain('outside the restorable window of prod-db: 2026-11-25T10:00:00.000Z to 2026-11-25T10:10:01.000Z');
    expect(error.hint).toMatch(hint);
    expect(restores()).toBe(before);
  });

  it('refuses when the temporary instance name is taken', async () => {
    const at = new Date(T0.getTime() + 10_000);
    // someone else's instance with that name (not ours: no tags)
    await rig.rds.send(
      new RestoreDBInstanceToPointInTimeCommand({ SourceDBInstanceIdentifier: 'prod-db', TargetDBInstanceIdentifier: 'prod-db-restore-20261125100010', RestoreTime: at }),
    );
    const before = restores();
    const deletesBefore = rig.fake.callsOf('DeleteDBInstance').length;
    const error = await errorOf(restoreTableFromRds(baseOptions(rig, captureLogger(), { at })));
    expect(error.code).toBe('E_RDS_INSTANCE_EXISTS');
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain('prod-db-restore-20261125100010 already exists');
    expect(error.hint).toMatch(/choose a different --at/);
    expect(restores()).toBe(before);
    // and it is never deleted: it is not ours
    expect(rig.fake.callsOf('DeleteDBInstance').length).toBe(deletesBefore);
    expect(rig.fake.instance('prod-db-restore-20261125100010')).toBeDefined();
  });

  it('refuses when the destination table already exists, or --into names the live table', async () => {
    const at = new Date(T0.getTime() + 20_000);
    await rig.db.query('CREATE TABLE app.billing__restored_20261125_100020 (id INT)');
    const before = restores();
    const error = await errorOf(restoreTableFromRds(baseOptions(rig, captureLogger(), { at })));
    expect(error.code).toBe('E_RESTORE_TARGET');
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.hint).toMatch(/--into/);
    const live = await errorOf(restoreTableFromRds(baseOptions(rig, captureLogger(), { at, into: { db: 'app', name: 'billing' } })));
    expect(live.exitCode).toBe(ExitCode.usage);
    expect(live.message).toMatch(/live table/);
    expect(restores()).toBe(before);
  });

  it('a wrong target password fails before anything is created, and the error carries no secret', async () => {
    const log = captureLogger();
    const at = new Date(T0.getTime() + 25_000);
    const before = restores();
    const wrong = 'Wr0ng-But-Secret-Pw';
    const opts = baseOptions(rig, log, { at });
    const error = await errorOf(
      restoreTableFromRds({ ...opts, connect: { ...opts.connect, target: { ...opts.connect.target!, password: wrong } } }),
    );
    expect(error.code).toBe('E_SOURCE_CONNECT');
    expect(error.message).toMatch(/target: cannot connect to 127\.0\.0\.1:\d+ as user 'root': access denied/);
    expect(restores()).toBe(before);
    const text = `${error.message}\n${error.stack}\n${error.hint}\n${log.text()}`;
    for (const secret of [wrong, ...secretsOf(rig)]) expect(text).not.toContain(secret);
  });
});
