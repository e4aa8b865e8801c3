import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

/** Shared helpers for the config and schedule tests: a throwaway directory with a valid setup. */

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Sandbox {
  dir: string;
  configFile: string;
  schedulesDir: string;
  /** directories the config names: none of them may be created by loading or checking */
  namedDirs: string[];
  cleanup(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'ma-config-'));
  const schedulesDir = join(dir, 'schedules');
  await mkdir(schedulesDir);
  return {
    dir,
    configFile: join(dir, 'config.yaml'),
    schedulesDir,
    namedDirs: ['spool', 'state', 'backups'].map((d) => join(dir, d)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A valid configuration (as plain data) whose paths live inside the sandbox. */
export function validConfig(sandbox: Sandbox): Record<string, any> {
  return {
    source: {
      host: '127.0.0.1',
      port: 3306,
      user: 'archiver',
      password: { env: 'MYSQL_ARCHIVER_DB_PASSWORD' },
      serverId: 4242,
    },
    archiver: {
      storage: 's3-main',
      spoolDir: join(sandbox.dir, 'spool'),
      spoolMaxBytes: '10GiB',
      stateDir: join(sandbox.dir, 'state'),
      segment: { maxSeconds: 300, maxBytes: '256MiB' },
      uploadConcurrency: 2,
    },
    storages: {
      'local-disk': { type: 'local', path: join(sandbox.dir, 'backups') },
      's3-main': {
        type: 's3',
        bucket: 'my-backups',
        prefix: 'prod/',
        region: 'eu-west-1',
        credentials: {
          accessKeyId: { env: 'AWS_KEY_ID' },
          secretAccessKey: { file: '/etc/mysql-archiver/s3-secret' },
        },
        multipartThreshold: '64MiB',
        partSize: '16MiB',
      },
      'dropbox-offsite': {
        type: 'dropbox',
        root: '/mysql-archiver',
        auth: { refreshToken: { env: 'DBX_REFRESH' }, clientId: 'appkey123', clientSecret: { env: 'DBX_SECRET' } },
        chunkSize: '8MiB',
      },
    },
    log: { level: 'info', format: 'json' },
  };
}

export function validSchedules(): Record<string, Record<string, any>> {
  return {
    'daily.yaml': { tier: 'daily', cron: '0 3 * * *', timezone: 'UTC', targets: ['local-disk'], retention: { keep: 7 } },
    'weekly.yaml': { tier: 'weekly', cron: '0 4 * * 0', timezone: 'UTC', targets: ['s3-main'], retention: { keep: 5 } },
    'monthly.yaml': {
      tier: 'monthly',
      cron: '0 5 1 * *',
      timezone: 'Europe/Berlin',
      targets: ['dropbox-offsite'],
      retention: { keep: 12, maxAge: '400d' },
    },
  };
}

export async function writeSetup(
  sandbox: Sandbox,
  config: Record<string, any> | string,
  schedules: Record<string, Record<string, any> | string> = validSchedules(),
): Promise<void> {
  await writeFile(sandbox.configFile, typeof config === 'string' ? config : stringify(config));
  for (const [name, schedule] of Object.entries(schedules)) {
    await writeFile(join(sandbox.schedulesDir, name), typeof schedule === 'string' ? schedule : stringify(schedule));
  }
}

/** Every path under `dir`, to prove that a failed load or check wrote nothing. */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real CLI in a child process, as an operator runs it. */
export function runCliProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}
