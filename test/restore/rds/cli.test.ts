/**
 * `restore table ... --from rds` and `rds cleanup` as an operator runs them: the real CLI in a child
 * process, its config file, the AWS default provider chain (credentials in the environment only),
 * the fake RDS on the wire and real mariadbd servers (the source; one per restored instance, which
 * serves TLS with a throwaway CA and refuses plain connections).
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeSandbox, ROOT, runCliProcess, type CliResult, type Sandbox } from '../../config/fixtures.js';
import { startFakeRds, type FakeRds } from '../../support/fake-rds/index.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../../support/mariadb.js';
import { makeTlsCerts } from '../../support/tls-certs.js';
import { waitFor } from '../../support/wait.js';
import { BILLING_DDL, BILLING_ROWS, describeError, SOURCE_ID } from './helpers.js';

let db: MariadbServer;
let fake: FakeRds;
let sandbox: Sandbox;
/** 1 s before the DELETE, as ISO 8601 with milliseconds */
let beforeDelete: string;
let env: NodeJS.ProcessEnv;
const AWS_SECRET = 'fake-rds-secret-key';

beforeAll(async () => {
  sandbox = await makeSandbox();
  const tls = await makeTlsCerts(sandbox.dir);
  db = await startMariadb({ initSql: [...BILLING_DDL, ...BILLING_ROWS] });
  // the fake's clock is the real one: the CLI has no test hooks
  fake = await startFakeRds({ source: { identifier: SOURCE_ID, server: db }, instanceArgs: tls.serverArgs });
  const first = await fake.snapshot();
  // RDS restores to whole moments; keep the DELETE a clear second after the first copy
  await waitFor(() => Date.now() >= first.at.getTime() + 1500, { what: 'the clock to pass the first copy by 1.5 s', timeoutMs: 5000 });
  const deleteAt = Date.now();
  await db.query('DELETE FROM app.billing');
  await fake.snapshot();
  beforeDelete = new Date(deleteAt - 1000).toISOString();

  await writeFile(join(sandbox.dir, 'config.yaml'), stringify({
    source: { host: db.host, port: db.port, user: db.archiver.user, password: { env: 'MA_DB_PASSWORD' }, serverId: 4242 },
    archiver: { storage: 'local-disk', spoolDir: join(sandbox.dir, 'spool'), stateDir: join(sandbox.dir, 'state') },
    storages: { 'local-disk': { type: 'local', path: join(sandbox.dir, 'backups') } },
    rds: {
      region: fake.region,
      sourceInstance: SOURCE_ID,
      instanceClass: 'db.t3.small',
      securityGroups: ['sg-0123abcd'],
      caBundle: tls.caFile,
      endpoint: fake.endpoint,
      pollSeconds: 0.05,
      tags: { team: 'billing' },
    },
    restore: { target: { host: db.host, port: db.port, user: db.rootUser, password: { env: 'MA_TARGET_PASSWORD' } } },
    log: { level: 'info', format: 'json' },
  }));
  env = {
    MA_DB_PASSWORD: db.archiver.password,
    MA_TARGET_PASSWORD: db.rootPassword,
    // the AWS default provider chain: environment first; no instance metadata lookups here
    AWS_ACCESS_KEY_ID: 'AKIDFAKERDS',
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}, 120_000);

afterAll(async () => {
  await fake?.close();
  await stopAllMariadb();
  await sandbox?.cleanup();
});

const cli = (args: string[]) => runCliProcess(['-c', join(sandbox.dir, 'config.yaml'), ...args], env);
const restoresSoFar = () => fake.callsOf('RestoreDBInstanceToPointInTime').length;
const secrets = () => [db.archiver.password, db.rootPassword, AWS_SECRET];

function expectNoSecrets(r: CliResult): void {
  for (const s of secrets()) {
    expect(r.stdout).not.toContain(s);
    expect(r.stderr).not.toContain(s);
  }
}

async function rowCount(table: string): Promise<number> {
  const rows = await db.query<{ n: unknown }[]>(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0]?.n);
}

describe('restore table --from rds (CLI)', () => {
  it('--dry-run prints the plan in UTC and local time and creates nothing', async () => {
    const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--dry-run']);
    expect(r.code).toBe(0);
    // logs go to stderr; none of them is an error
    expect(r.stderr).not.toMatch(/"level":"(error|warn)"/);
    expect(r.stdout).toContain('plan (dry run: nothing is created):');
    expect(r.stdout).toMatch(/restore time: +\d{4}-\d\d-\d\dT[\d:.]+Z UTC \(.+ local\)/);
    expect(r.stdout).toMatch(/temporary instance: prod-db-restore-\d{14} \(db\.t3\.small, private, TLS\)/);
    expect(r.stdout).toContain('expected duration:');
    expect(fake.callsOf('RestoreDBInstanceToPointInTime')).toHaveLength(0);
    expectNoSecrets(r);
  });

  it('restores app.billing as it was 1 s before the DELETE over TLS, leaves the live table alone and deletes the instance', async () => {
    const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds']);
    expect(r.code).toBe(0);
    // logs go to stderr; none of them is an error
    expect(r.stderr).not.toMatch(/"level":"(error|warn)"/);
    expect(r.stdout).toMatch(/wait: +prod-db-restore-\d+ is creating/);
    expect(r.stdout).toMatch(/wait: +prod-db-restore-\d+ is available/);
    expect(r.stdout).toMatch(/restored 5 row\(s\) of app\.billing as of .* into table app\.billing__restored_\d{8}_\d{6}/);
    expect(r.stdout).toMatch(/the temporary instance prod-db-restore-\d+ is deleted/);
    expect(r.stdout).toContain('RENAME TABLE app.billing TO app.billing__old');
    expectNoSecrets(r);

    const name = /into table app\.(billing__restored_\d{8}_\d{6})/.exec(r.stdout)?.[1] as string;
    expect(await rowCount(`app.${name}`)).toBe(5);
    expect(await rowCount('app.billing')).toBe(0);
    const instance = /prod-db-restore-\d+/.exec(r.stdout)?.[0] as string;
    expect(await describeError(fake.client(), instance)).toBe('DBInstanceNotFoundFault');
    // the copy went over verified TLS: the instance refuses anything else
    const restored = fake.history.find((i) => i.identifier === instance);
    expect(restored?.serverStopped).toBe(true);
    const [call] = fake.callsOf('RestoreDBInstanceToPointInTime');
    expect(call?.params).toMatchObject({ DBInstanceClass: 'db.t3.small', PubliclyAccessible: 'false', 'VpcSecurityGroupIds.VpcSecurityGroupId.1': 'sg-0123abcd' });
    await db.query(`DROP TABLE app.${name}`);
  }, 120_000);

  it('a time outside the restore window exits 2 with the window and creates nothing', async () => {
    const before = fake.callsOf('RestoreDBInstanceToPointInTime').length;
    const r = await cli(['restore', 'table', 'app.billing', '--at', '2020-01-01T00:00:00Z', '--from', 'rds']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/outside the restorable window of prod-db/);
    expect(r.stderr).toMatch(/Choose a time at or after/);
    expect(fake.callsOf('RestoreDBInstanceToPointInTime')).toHaveLength(before);
    expectNoSecrets(r);
  });

  it('--keep-instance keeps it; the same moment again exits 2 naming it; rds cleanup finds it by tag and deletes it', async () => {
    const kept = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--keep-instance', '--into', 'app.billing_kept']);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/the temporary instance (prod-db-restore-\d+) is KEPT at 127\.0\.0\.1:\d+/);
    const instance = /prod-db-restore-\d+/.exec(kept.stdout)?.[0] as string;
    expect(await describeError(fake.client(), instance)).toBe('');
    expect(await rowCount('app.billing_kept')).toBe(5);

    const calls = fake.callsOf('RestoreDBInstanceToPointInTime').length;
    const again = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--into', 'app.billing_again']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`an RDS instance named ${instance} already exists`);
    expect(again.stderr).toContain('rds cleanup');
    expect(fake.callsOf('RestoreDBInstanceToPointInTime')).toHaveLength(calls);

    const young = await cli(['rds', 'cleanup', '--older-than', '1h', '--dry-run']);
    expect(young.code).toBe(0);
    expect(young.stdout).toContain(`skip    ${instance}`);
    const dry = await cli(['rds', 'cleanup', '--older-than', '0s', '--dry-run']);
    expect(dry.stdout).toContain(`would delete ${instance}`);
    expect(await describeError(fake.client(), instance)).toBe('');
    const clean = await cli(['rds', 'cleanup', '--older-than', '0s']);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain(`deleted ${instance}`);
    expect(await describeError(fake.client(), instance)).toBe('DBInstanceNotFoundFault');
    expectNoSecrets(clean);
    await db.query('DROP TABLE app.billing_kept');
  }, 120_000);

  it('SIGTERM while waiting for the instance: exits, and the instance is deleted', async () => {
    const args = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '-c', join(sandbox.dir, 'config.yaml'), 'restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--into', 'app.billing_sigterm'];
    // slow state changes, so the signal lands while the instance is still being created
    fake.setCreatingPolls(40);
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor(() => /wait: +prod-db-restore-\d+ is creating/.test(stdout), { what: 'the CLI to report the instance as creating', timeoutMs: 60_000 });
    child.kill('SIGTERM');
    const code = await exited;
    fake.setCreatingPolls(1);
    expect(code).toBe(130);
    const instance = /prod-db-restore-\d+/.exec(stdout)?.[0] as string;
    expect(stdout).toMatch(new RegExp(`delete: ${instance} is deleting`));
    expect(await describeError(fake.client(), instance)).toBe('DBInstanceNotFoundFault');
    expect(stderr).toMatch(/abort|interrupt|stopp/i);
    for (const s of secrets()) expect(stdout + stderr).not.toContain(s);
  }, 120_000);

  it('without an rds section: exit 2 naming the fix', async () => {
    const text = await readFile(join(sandbox.dir, 'config.yaml'), 'utf8');
    const file = join(sandbox.dir, 'no-rds.yaml');
    await writeFile(file, text.replace(/^rds:\n(?: {2}.*\n)+/m, ''));
    const r = await runCliProcess(['-c', file, 'rds', 'cleanup'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no rds section/);
    expect(r.stderr).toMatch(/Add rds:/);
  });

  it('--replace: refused without a way to confirm; with --yes the live table gets the restored rows and its old rows are kept', async () => {
    const restoresBefore = restoresSoFar();
    const refused = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--replace']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--replace needs a confirmation/);
    expect(restoresSoFar()).toBe(restoresBefore); // nothing was started

    const live = await rowCount('app.billing');
    const r = await cli(['restore', 'table', 'app.billing', '--at', beforeDelete, '--from', 'rds', '--replace', '--yes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/replaced: app\.billing now holds the 5 restored row\(s\); its previous rows are in app\.billing__before_replace_\d{8}_\d{6}/);
    expect(r.stdout).toMatch(/the temporary instance prod-db-restore-\d+ is deleted/);
    expectNoSecrets(r);
    expect(await rowCount('app.billing')).toBe(5);
    const backup = /previous rows are in (app\.\S+)/.exec(r.stdout)?.[1] as string;
    expect(await rowCount(backup)).toBe(live);
    const left = await db.query<{ t: string }[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME LIKE 'billing__restored%'");
    expect(left).toEqual([]);
  }, 120_000);
});
