import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * The demo's configuration, written as real files (config.yaml + schedules/) and read back with the
 * real loaders, so the demo exercises exactly what a user's setup goes through. Secrets are
 * references to environment variables that only the demo's own env object carries.
 */

export const DEMO_BUCKET = 'mysql-archiver-demo';
export const DEMO_PASSWORD_ENV = 'MYSQL_ARCHIVER_DEMO_DB_PASSWORD';
/** the throwaway server's root: the demo restores into it */
export const DEMO_ROOT_PASSWORD_ENV = 'MYSQL_ARCHIVER_DEMO_ROOT_PASSWORD';
export const DEMO_S3_KEY_ID_ENV = 'MYSQL_ARCHIVER_DEMO_S3_ACCESS_KEY_ID';
export const DEMO_S3_SECRET_ENV = 'MYSQL_ARCHIVER_DEMO_S3_SECRET_ACCESS_KEY';
/** the archiver's replication client id; the throwaway server is server_id 1 */
export const DEMO_CLIENT_SERVER_ID = 4242;

export interface DemoLayout {
  readonly workDir: string;
  readonly configFile: string;
  readonly schedulesDir: string;
  readonly mariadbDir: string;
  readonly s3Dir: string;
  readonly localDiskDir: string;
  readonly spoolDir: string;
  readonly stateDir: string;
}

export function demoLayout(workDir: string): DemoLayout {
  return {
    workDir,
    configFile: join(workDir, 'config.yaml'),
    schedulesDir: join(workDir, 'schedules'),
    mariadbDir: join(workDir, 'mariadb'),
    s3Dir: join(workDir, 's3'),
    localDiskDir: join(workDir, 'local-disk'),
    spoolDir: join(workDir, 'spool'),
    stateDir: join(workDir, 'state'),
  };
}

export interface DemoConfigInput {
  layout: DemoLayout;
  db: { host: string; port: number; user: string };
  s3: { endpoint: string; bucket: string };
}

/** Writes config.yaml and one schedule per tier; returns the files written. */
export async function writeDemoConfig(input: DemoConfigInput): Promise<string[]> {
  const { layout } = input;
  const config = {
    source: {
      host: input.db.host,
      port: input.db.port,
      user: input.db.user,
      password: { env: DEMO_PASSWORD_ENV },
      serverId: DEMO_CLIENT_SERVER_ID,
    },
    archiver: {
      storage: 's3-local',
      spoolDir: layout.spoolDir,
      spoolMaxBytes: '1GiB',
      stateDir: layout.stateDir,
      segment: { maxSeconds: 2, maxBytes: '64MiB' },
      uploadConcurrency: 2,
    },
    storages: {
      'local-disk': { type: 'local', path: layout.localDiskDir },
      's3-local': {
        type: 's3',
        bucket: input.s3.bucket,
        prefix: 'demo/',
        region: 'us-east-1',
        endpoint: input.s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: { env: DEMO_S3_KEY_ID_ENV }, secretAccessKey: { env: DEMO_S3_SECRET_ENV } },
      },
    },
    restore: { target: { host: input.db.host, port: input.db.port, user: 'root', password: { env: DEMO_ROOT_PASSWORD_ENV } } },
    log: { level: 'warn', format: 'text' },
  };
  const schedules: Record<string, object> = {
    'daily.yaml': { tier: 'daily', cron: '0 3 * * *', timezone: 'UTC', targets: ['local-disk'], retention: { keep: 7 } },
    'weekly.yaml': { tier: 'weekly', cron: '0 4 * * 0', timezone: 'UTC', targets: ['s3-local'], retention: { keep: 4, maxAge: '35d' } },
  };
  const header =
    '# written by `mysql-archiver demo`: a throwaway setup on this machine. Secrets are { env: NAME }\n' +
    '# references set only in the demo process; nothing secret is stored in this file.\n';
  await mkdir(layout.schedulesDir, { recursive: true });
  await writeFile(layout.configFile, header + stringify(config), { mode: 0o600 });
  const written = [layout.configFile];
  for (const [name, schedule] of Object.entries(schedules)) {
    const file = join(layout.schedulesDir, name);
    await writeFile(file, stringify(schedule));
    written.push(file);
  }
  return written;
}
