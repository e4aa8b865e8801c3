import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliInProcess } from '../support/in-process-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { startS3rver, stopAllS3rver, type S3rverHandle } from '../support/s3rver.js';
import { writeTestConfig } from '../support/config-file.js';

/**
 * Retention deletes with its own credentials (retention.credentials), not the archiver's: with a
 * key S3 does not know, dumps and uploads still work and retention alone is refused; with the right
 * key it deletes.
 */

let db: MariadbServer;
let s3: S3rverHandle;
let work: string;

beforeAll(async () => {
  db = await startMariadb({ serverId: 851, initSql: ['CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT PRIMARY KEY)', 'INSERT INTO shop.t SELECT seq FROM shop.seq_1_to_50'] });
  s3 = await startS3rver({ bucket: 'retention-creds' });
  work = await mkdtemp(join(tmpdir(), 'retention-creds-'));
  await writeTestConfig(work, db, 9851, {
    archiver: { storage: 's3' },
    storages: {
      s3: { type: 's3', bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: { env: 'T_ID' }, secretAccessKey: { env: 'T_SECRET' } } },
    },
    retention: { credentials: { accessKeyId: { env: 'T_DEL_ID' }, secretAccessKey: { env: 'T_DEL_SECRET' } } },
  });
  await writeFile(join(work, 'schedules', 'weekly.yaml'), stringify({ tier: 'weekly', cron: '0 4 * * 0', targets: ['s3'], retention: { keep: 1 } }));
}, 120_000);

afterAll(async () => {
  await stopAllS3rver();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('retention credentials', () => {
  it('deletes with retention.credentials, never with the archiver\'s', { timeout: 120_000 }, async () => {
    const env = (deleteKey: string) => ({ ...process.env, T_DB: db.archiver.password, T_ID: s3.credentials.accessKeyId, T_SECRET: s3.credentials.secretAccessKey, T_DEL_ID: deleteKey, T_DEL_SECRET: s3.credentials.secretAccessKey });
    const cli = (argv: string[], deleteKey: string) => cliInProcess(['--config', join(work, 'config.yaml'), ...argv], env(deleteKey));
    for (let i = 0; i < 2; i++) expect((await cli(['dump', '--tier', 'weekly'], 'UNKNOWNDELETEKEY')).code).toBe(0);

    const refused = await cli(['retention'], 'UNKNOWNDELETEKEY');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^FAIL {2}weekly on s3: .*(access key|InvalidAccessKeyId|credentials)/im);
    expect((await cli(['list', 'dumps'], 'UNKNOWNDELETEKEY')).stdout.trim().split('\n')).toHaveLength(2);

    const done = await cli(['retention'], s3.credentials.accessKeyId);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^deleted 1 dump\(s\)/m);
    expect((await cli(['list', 'dumps'], 'UNKNOWNDELETEKEY')).stdout.trim().split('\n')).toHaveLength(1);
  });
});
