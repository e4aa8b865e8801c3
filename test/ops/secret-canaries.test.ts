import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeDropbox, type FakeDropbox } from '../support/fake-dropbox.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { startS3rver, stopAllS3rver, type S3rverHandle } from '../support/s3rver.js';
import { ROOT } from '../config/fixtures.js';

/**
 * Canary secrets (database password, AWS secret key, Dropbox access token, refresh token and client
 * secret) are handed to the real CLI in child processes that use them for real, succeed with some
 * and fail with others at debug log level; no canary may appear in any output line, error message
 * or any process's argv while they run.
 */

const canary = (what: string) => `canary-${what}-${randomBytes(8).toString('hex')}`;
const CANARIES = {
  db: canary('dbpw'),
  awsSecret: canary('awssecret'),
  dropboxToken: canary('dbxtoken'),
  refreshToken: canary('refresh'),
  clientSecret: canary('clientsecret'),
  badClientSecret: canary('badclientsecret'),
};

let db: MariadbServer;
let s3: S3rverHandle;
let dbx: FakeDropbox;
let work: string;

beforeAll(async () => {
  db = await startMariadb({ serverId: 701, initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY)'] });
  await db.query('SET sql_log_bin = 0');
  await db.query(`ALTER USER 'archiver'@'127.0.0.1' IDENTIFIED BY '${CANARIES.db}'`);
  s3 = await startS3rver({ bucket: 'canary-bucket' });
  dbx = await startFakeDropbox({ accessTokens: [CANARIES.dropboxToken], app: { clientId: 'canary-app', clientSecret: CANARIES.clientSecret, refreshToken: CANARIES.refreshToken } });
  work = await mkdtemp(join(tmpdir(), 'canaries-'));
  await mkdir(join(work, 'schedules'));
  await writeFile(
    join(work, 'config.yaml'),
    stringify({
      source: { host: '127.0.0.1', port: db.port, user: 'archiver', password: { env: 'C_DB' }, serverId: 9701 },
      archiver: { storage: 's3-ok', spoolDir: join(work, 'spool'), stateDir: join(work, 'state'), segment: { maxSeconds: 1 } },
      storages: {
        's3-ok': { type: 's3', bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: { env: 'C_S3_ID' }, secretAccessKey: { env: 'C_S3_OK' } } },
        // signs every request with the canary (s3rver does not check object-request signatures)
        's3-canary': { type: 's3', bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: { env: 'C_S3_ID' }, secretAccessKey: { env: 'C_AWS_SECRET' } } },
        'dbx-token': { type: 'dropbox', root: '/a', apiBaseUrl: dbx.baseUrl, auth: { accessToken: { env: 'C_DBX_TOKEN' } } },
        'dbx-refresh': { type: 'dropbox', root: '/b', apiBaseUrl: dbx.baseUrl, auth: { refreshToken: { env: 'C_REFRESH' }, clientId: 'canary-app', clientSecret: { env: 'C_CLIENT_SECRET' } } },
        // the refresh flow puts the client secret in the URL: a refused one must not leak through the error
        'dbx-bad-secret': { type: 'dropbox', root: '/c', apiBaseUrl: dbx.baseUrl, auth: { refreshToken: { env: 'C_REFRESH' }, clientId: 'canary-app', clientSecret: { env: 'C_BAD_SECRET' } } },
      },
      log: { level: 'debug', format: 'json' },
    }),
  );
}, 120_000);

afterAll(async () => {
  await dbx?.stop();
  await stopAllS3rver();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

interface Run {
  code: number | null;
  output: string;
  argvSeen: string[];
}

/** the real CLI in a child; every process's argv is sampled while it runs */
function runCli(args: string[], stopAfter?: (output: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = {
      ...process.env,
      C_DB: CANARIES.db,
      C_S3_ID: s3.credentials.accessKeyId,
      C_S3_OK: s3.credentials.secretAccessKey,
      C_AWS_SECRET: CANARIES.awsSecret,
      C_DBX_TOKEN: CANARIES.dropboxToken,
      C_REFRESH: CANARIES.refreshToken,
      C_CLIENT_SECRET: CANARIES.clientSecret,
      C_BAD_SECRET: CANARIES.badClientSecret,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', join(work, 'config.yaml'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const argvSeen: string[] = [];
    const sample = setInterval(() => {
      void allCommandLines().then((lines) => argvSeen.push(...lines));
    }, 50);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (stopAfter?.(output)) child.kill('SIGTERM');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sample);
      resolve({ code, output, argvSeen });
    });
  });
}

async function allCommandLines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline) out.push(cmdline.replaceAll('\0', ' '));
  }
  return out;
}

function expectNoCanary(run: Run): void {
  for (const [name, value] of Object.entries(CANARIES)) {
    expect(run.output.includes(value), `${name} in the output`).toBe(false);
    expect(run.argvSeen.some((l) => l.includes(value)), `${name} in a process argv`).toBe(false);
  }
}

describe('secrets never appear in logs, errors or argv', () => {
  it('check: the storages that work, the ones that refuse, all at debug level', { timeout: 120_000 }, async () => {
    const run = await runCli(['check']);
    expect(run.code).toBe(1);
    // the run really used the secrets: the good storages passed, the bad ones were refused
    expect(run.output).toMatch(/ok\s+storage s3-ok/);
    expect(run.output).toMatch(/ok\s+storage dbx-token/);
    expect(run.output).toMatch(/ok\s+storage dbx-refresh/);
    expect(run.output).toMatch(/ok\s+storage s3-canary/);
    expect(run.output).toMatch(/FAIL\s+storage dbx-bad-secret/);
    expect(run.argvSeen.length).toBeGreaterThan(0);
    expectNoCanary(run);
  });

  it('run: the daemon archives with the database password and ships with the AWS key', { timeout: 120_000 }, async () => {
    await db.query('INSERT INTO app.t VALUES (1)');
    const run = await runCli(['run'], (out) => /"message":"uploaded"/.test(out));
    expect(run.output).toMatch(/"message":"uploaded"/);
    expect(run.code).toBe(0);
    expectNoCanary(run);
  });
});
