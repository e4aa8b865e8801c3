import { RestoreDBInstanceToPointInTimeCommand } from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, RdsCleanupError } from '../../../src/errors.js';
import { rdsCleanup, restoreTableFromRds } from '../../../src/restore/rds/index.js';
import { stopAllMariadb } from '../../support/mariadb.js';
import { waitFor } from '../../support/wait.js';
import { baseOptions, captureLogger, describeError, errorOf, secretsOf, startRig, T0, type Rig } from './helpers.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig();
});
afterAll(async () => {
  await rig?.fake.close();
  await stopAllMariadb();
});

/** A distinct restore moment per test, so each gets its own temporary instance name. */
function moment(seconds: number): { at: Date; instance: string; table: string } {
  const at = new Date(T0.getTime() + seconds * 1000);
  const hhmmss = `10${String(Math.floor(seconds / 60)).padStart(2, '0')}${String(seconds % 60).padStart(2, '0')}`;
  return { at, instance: `prod-db-restore-20261125${hhmmss}`, table: `billing__restored_20261125_${hhmmss}` };
}

async function tableExists(name: string): Promise<boolean> {
  const rows = (await rig.db.query('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', ['app', name])) as unknown[];
  return rows.length > 0;
}

async function expectGone(instance: string): Promise<void> {
  expect(await describeError(rig.rds, instance)).toBe('DBInstanceNotFoundFault');
  const inst = rig.fake.history.find((i) => i.identifier === instance);
  expect(inst).toBeDefined();
  expect(inst?.server === undefined || inst.serverStopped).toBe(true);
}

describe('the temporary instance is deleted whatever happens', () => {
  it('instance goes to failed: a typed error, and the instance is deleted', async () => {
    const m = moment(61);
    rig.fake.failNextRestore('failed');
    const error = await errorOf(restoreTableFromRds(baseOptions(rig, captureLogger(), { at: m.at })));
    expect(error.code).toBe('E_RDS_INSTANCE_FAILED');
    expect(error.message).toContain(`${m.instance} went to state "failed"`);
    expect(error.exitCode).toBe(ExitCode.failure);
    await expectGone(m.instance);
    expect(await tableExists(m.table)).toBe(false);
  });

  it('throttled describes (before the restore and while waiting) are retried; the restore completes', async () => {
    const m = moment(62);
    const log = captureLogger();
    rig.fake.throttleDescribes(3);
    let throttledWhileWaiting = false;
    const result = await restoreTableFromRds(
      baseOptions(rig, log, {
        at: m.at,
        onProgress: (p) => {
          if (p.phase === 'wait' && !throttledWhileWaiting) {
            throttledWhileWaiting = true;
            rig.fake.throttleDescribes(3);
          }
        },
      }),
    );
    if (result.dryRun) throw new Error('not a dry run');
    expect(result.rows).toBe(5);
    expect(throttledWhileWaiting).toBe(true);
    expect(rig.fake.callsOf('DescribeDBInstances').filter((c) => c.status === 400).length).toBeGreaterThanOrEqual(6);
    expect(log.text()).toContain('rds throttled');
    await expectGone(m.instance);
    await rig.db.query(`DROP TABLE app.${m.table}`);
  });

  it('abort (Ctrl-C) during the wait: aborted error, instance deleted', async () => {
    const m = moment(63);
    rig.fake.holdCreating(true);
    const controller = new AbortController();
    let polls = 0;
    try {
      const error = await errorOf(
        restoreTableFromRds(
          baseOptions(rig, captureLogger(), {
            at: m.at,
            signal: controller.signal,
            onProgress: (p) => {
              if (p.phase === 'wait' && ++polls === 3) controller.abort();
            },
          }),
        ),
      );
      expect(error.code).toBe('E_ABORTED');
      expect(error.exitCode).toBe(ExitCode.interrupted);
      expect(error.message).toContain(`the temporary instance ${m.instance} was deleted`);
    } finally {
      rig.fake.holdCreating(false);
    }
    await expectGone(m.instance);
  });

  it('abort during the wait when RDS refuses to delete a creating instance: the delete is retried until accepted', async () => {
    const m = moment(64);
    rig.fake.holdCreating(true);
    rig.fake.rejectDeleteWhileCreating = true;
    const controller = new AbortController();
    const release = waitFor(
      () => rig.fake.callsOf('DeleteDBInstance').some((c) => c.params['DBInstanceIdentifier'] === m.instance && c.status === 400),
      { what: 'a refused delete', timeoutMs: 30_000, intervalMs: 10 },
    ).then(() => rig.fake.holdCreating(false));
    try {
      const error = await errorOf(
        restoreTableFromRds(
          baseOptions(rig, captureLogger(), {
            at: m.at,
            signal: controller.signal,
            onProgress: (p) => {
              if (p.phase === 'wait') controller.abort();
            },
          }),
        ),
      );
      await release;
      expect(error.code).toBe('E_ABORTED');
    } finally {
      rig.fake.holdCreating(false);
      rig.fake.rejectDeleteWhileCreating = false;
    }
    const deletes = rig.fake.callsOf('DeleteDBInstance').filter((c) => c.params['DBInstanceIdentifier'] === m.instance);
    expect(deletes.map((c) => c.status)).toContain(400);
    expect(deletes[deletes.length - 1]?.status).toBe(200);
    await expectGone(m.instance);
  });

  it('abort (SIGTERM) during extraction: aborted, the partial table is removed, instance deleted', async () => {
    const m = moment(65);
    const controller = new AbortController();
    const error = await errorOf(
      restoreTableFromRds(
        baseOptions(rig, captureLogger(), {
          at: m.at,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.phase === 'copy') controller.abort();
          },
        }),
      ),
    );
    expect(error.code).toBe('E_ABORTED');
    expect(await tableExists(m.table)).toBe(false);
    await expectGone(m.instance);
    // the live table was never touched
    expect(Number(((await rig.db.query('SELECT COUNT(*) AS n FROM app.billing')) as { n: unknown }[])[0]?.n)).toBe(0);
  });

  it('deletion denied: a loud error names the instance and rds cleanup; later `rds cleanup` removes it', async () => {
    const m = moment(66);
    const log = captureLogger();
    rig.fake.failNextRestore('failed');
    rig.fake.denyDeletes(true);
    let error;
    try {
      error = await errorOf(restoreTableFromRds(baseOptions(rig, log, { at: m.at })));
    } finally {
      rig.fake.denyDeletes(false);
    }
    expect(error).toBeInstanceOf(RdsCleanupError);
    expect(error.code).toBe('E_RDS_CLEANUP');
    expect((error as RdsCleanupError).instances).toEqual([m.instance]);
    expect(error.message).toContain(`the temporary RDS instance ${m.instance} could not be deleted`);
    expect(error.message).toContain('went to state "failed"');
    expect(error.hint).toContain('mysql-archiver rds cleanup');
    expect(error.hint).toContain('rds:DeleteDBInstance');
    expect(log.text()).toContain('TEMPORARY RDS INSTANCE LEFT RUNNING');
    expect(rig.fake.instance(m.instance)?.status).toBe('failed');

    // an instance the tool did not create (no tags) is never a cleanup candidate
    await rig.rds.send(
      new RestoreDBInstanceToPointInTimeCommand({ SourceDBInstanceIdentifier: 'prod-db', TargetDBInstanceIdentifier: 'someone-elses-restore', RestoreTime: m.at }),
    );
    const cleanupLog = captureLogger();
    const common = { rds: rig.rds, clock: () => rig.clock.now, logger: cleanupLog.logger, wait: { minDelaySeconds: 0.05, maxDelaySeconds: 0.1, deletedTimeoutSeconds: 60 } };
    // too young for --older-than 1h (created at the fake's "now")
    const young = await rdsCleanup({ ...common, olderThanMs: 3_600_000, dryRun: false });
    expect(young.found).toEqual([]);
    expect(young.skipped.map((s) => s.instance)).toContain(m.instance);
    const dry = await rdsCleanup({ ...common, dryRun: true });
    expect(dry.found.map((f) => f.instance)).toEqual([m.instance]);
    expect(dry.found[0]?.requestedBy).toBe('oncall@example.com');
    expect(rig.fake.instance(m.instance)).toBeDefined();
    const done = await rdsCleanup({ ...common, dryRun: false });
    expect(done.deleted).toEqual([m.instance]);
    await expectGone(m.instance);
    expect(rig.fake.instance('someone-elses-restore')).toBeDefined();
    expect(rig.fake.instance('prod-db')).toBeDefined();
    for (const secret of secretsOf(rig)) {
      expect(log.text() + cleanupLog.text() + error.message + error.stack).not.toContain(secret);
    }
  });

  it('rds cleanup reports a deletion it cannot make', async () => {
    const m = moment(67);
    await rig.rds.send(
      new RestoreDBInstanceToPointInTimeCommand({
        SourceDBInstanceIdentifier: 'prod-db',
        TargetDBInstanceIdentifier: m.instance,
        RestoreTime: m.at,
        Tags: [{ Key: 'tool', Value: 'mysql-archiver' }, { Key: 'purpose', Value: 'table-restore' }],
      }),
    );
    rig.fake.denyDeletes(true);
    let error;
    try {
      error = await errorOf(rdsCleanup({ rds: rig.rds, dryRun: false, wait: { minDelaySeconds: 0.05, maxDelaySeconds: 0.1, deletedTimeoutSeconds: 10 } }));
    } finally {
      rig.fake.denyDeletes(false);
    }
    expect(error.code).toBe('E_RDS_CLEANUP');
    expect(error.message).toContain(m.instance);
    expect(error.message).toContain('AccessDenied');
    const done = await rdsCleanup({ rds: rig.rds, dryRun: false, wait: { minDelaySeconds: 0.05, maxDelaySeconds: 0.1, deletedTimeoutSeconds: 60 } });
    expect(done.deleted).toEqual([m.instance]);
    await expectGone(m.instance);
  });
});
