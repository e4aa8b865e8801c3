/**
 * Shared setup for the RDS restore tests: a real source mariadbd (`app.billing` with awkward
 * values and a foreign key), a fake RDS in front of it with a manual clock, a logger whose output
 * the test reads, and fast waiter delays.
 */
import { PassThrough } from 'node:stream';
import { DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { createLogger, type Logger } from '../../../src/ops/logger.js';
import type { RestoreTableFromRdsOptions } from '../../../src/restore/rds/index.js';
import { startFakeRds, type FakeRds } from '../../support/fake-rds/index.js';
import { startMariadb, type MariadbServer } from '../../support/mariadb.js';

// the SDK's notice about Node 22 is noise here
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';

export const SOURCE_ID = 'prod-db';
/** T0: first copy; rows exist from here */
export const T0 = new Date('2026-11-25T10:00:00.000Z');
/** T: `DELETE FROM billing` */
export const T_DELETE = new Date('2026-11-25T10:10:00.000Z');
export const FAST_WAIT = { minDelaySeconds: 0.05, maxDelaySeconds: 0.1, availableTimeoutSeconds: 60, deletedTimeoutSeconds: 60 };

export const BILLING_DDL = [
  'CREATE DATABASE app',
  'CREATE TABLE app.customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL)',
  `CREATE TABLE app.billing (
     id INT AUTO_INCREMENT PRIMARY KEY,
     customer_id INT NOT NULL,
     label VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
     legacy VARCHAR(20) CHARACTER SET latin1 NULL,
     amount DECIMAL(14,4) NOT NULL,
     big BIGINT UNSIGNED NULL,
     ratio DOUBLE NULL,
     payload BLOB NULL,
     flags BIT(10) NULL,
     at DATETIME(6) NULL,
     ts TIMESTAMP(3) NULL,
     amount_x2 DECIMAL(15,4) AS (amount * 2) VIRTUAL,
     CONSTRAINT fk_billing_customer FOREIGN KEY (customer_id) REFERENCES app.customers (id)
   ) ENGINE=InnoDB`,
];

export const BILLING_ROWS = [
  "INSERT INTO app.customers VALUES (1, 'ann'), (2, 'bob'), (42, 'zed')",
  `SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); INSERT INTO app.billing (id, customer_id, label, legacy, amount, big, ratio, payload, flags, at, ts) VALUES
     (0, 1, 'zero id', NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL),
     (1, 1, 'café 🎉 ''quoted'' \\\\ back', 'café', 12.3456, 18446744073709551615, 0.1, X'00FF0A0D27225C', b'1010101010', '2024-02-29 23:59:59.123456', '2024-01-01 00:00:00.001'),
     (2, 2, 'plain', 'x', -99999.9999, 0, 1.7976931348623157e308, X'', b'0', '1970-01-01 00:00:01.000001', '2038-01-19 03:14:07.999'),
     (3, 42, 'customer 42', NULL, 42, 42, -2.5e-300, REPEAT('ab', 5000), NULL, NULL, NULL),
     (4, 42, 'customer 42 again', NULL, 43, 43, NULL, NULL, NULL, NULL, NULL)`,
];

export interface Rig {
  db: MariadbServer;
  fake: FakeRds;
  rds: RDSClient;
  clock: { now: Date };
}

/** Source with billing rows at T0 (copy), DELETE FROM billing at T_DELETE, copy at T_DELETE + 1 s. */
export async function startRig(extraSql: string[] = []): Promise<Rig> {
  const db = await startMariadb({ initSql: [...BILLING_DDL, ...BILLING_ROWS, ...extraSql] });
  const clock = { now: T0 };
  const fake = await startFakeRds({ source: { identifier: SOURCE_ID, server: db }, now: () => clock.now });
  await fake.snapshot();
  clock.now = T_DELETE;
  await db.query('DELETE FROM app.billing');
  clock.now = new Date(T_DELETE.getTime() + 1000);
  await fake.snapshot();
  clock.now = new Date(T_DELETE.getTime() + 60_000);
  return { db, fake, rds: fake.client(), clock };
}

export interface CapturedLogger {
  logger: Logger;
  text(): string;
}

export function captureLogger(): CapturedLogger {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  const logger = createLogger({ stream, format: 'json', level: 'debug' });
  return { logger, text: () => out };
}

export function baseOptions(rig: Rig, log: CapturedLogger, over: Partial<RestoreTableFromRdsOptions> = {}): RestoreTableFromRdsOptions {
  return {
    rds: rig.rds,
    config: { region: 'us-east-1', sourceInstance: SOURCE_ID, instanceClass: 'db.t3.small', subnetGroup: 'restore-subnets', securityGroups: ['sg-1', 'sg-2'], tags: { team: 'billing' } },
    table: { db: 'app', name: 'billing' },
    at: new Date(T_DELETE.getTime() - 1000),
    requestedBy: 'oncall@example.com',
    clock: () => rig.clock.now,
    logger: log.logger,
    wait: FAST_WAIT,
    connect: {
      target: { host: rig.db.host, port: rig.db.port, user: rig.db.rootUser, password: rig.db.rootPassword },
      instance: { user: rig.db.archiver.user, password: rig.db.archiver.password },
    },
    ...over,
  };
}

/** The name of the error DescribeDBInstances gives for `id` ('' when it exists). */
export async function describeError(rds: RDSClient, id: string): Promise<string> {
  try {
    await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return '';
  } catch (error) {
    return (error as Error).name;
  }
}

/** Every secret the tests handle, for "appears nowhere" checks. */
export function secretsOf(rig: Rig): string[] {
  return [rig.db.rootPassword, rig.db.archiver.password, 'fake-rds-secret-key'];
}

export async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string; exitCode?: number; hint?: string }> {
  try {
    await p;
  } catch (error) {
    return error as Error & { code?: string; exitCode?: number; hint?: string };
  }
  throw new Error('expected a rejection');
}
