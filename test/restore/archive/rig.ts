/**
 * A source MariaDB archived by the real daemon into a local storage that also holds the dumps, a
 * config file for the CLI (restore.target = the source's root), and helpers to wait on the archive.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { listSegments } from '../../../src/binlog/archive-catalog.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { loadSchedules } from '../../../src/config/schedules.js';
import { runDaemon, type DaemonStatus } from '../../../src/daemon/run-daemon.js';
import { createSilentLogger } from '../../../src/ops/logger.js';
import { readStatusFile } from '../../../src/ops/status-file.js';
import { createLocalStorage } from '../../../src/storage/local/local-storage.js';
import { cliInProcess } from '../../support/in-process-cli.js';
import type { MariadbServer } from '../../support/mariadb.js';
import { waitFor } from '../../support/wait.js';
import { writeTestConfig } from '../../support/config-file.js';

export interface ArchiveRig {
  work: string;
  env: NodeJS.ProcessEnv;
  configFile: string;
  cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** the same CLI with another config file (e.g. another restore.target) */
  cliWith(configFile: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }>;
  masterPosition(): Promise<{ file: string; position: number }>;
  /** waits until the archive holds everything the server has written so far */
  waitArchived(): Promise<void>;
  /** takes a dump and waits until its end is a clear second in the past */
  dump(): Promise<void>;
  /** waits until the wall clock is a clear second past now: changes before it and after it get different seconds */
  nextSecond(): Promise<void>;
  stop(): Promise<void>;
}

export async function startArchiveRig(db: MariadbServer, serverId: number, extraConfig: Record<string, unknown> = {}, schedule: Record<string, unknown> = {}): Promise<ArchiveRig> {
  const work = await mkdtemp(join(tmpdir(), 'archive-rig-'));
  const configFile = await writeTestConfig(work, db, serverId, {
    archiver: { segment: { maxSeconds: 1 }, spoolMaxBytes: '1GiB' },
    storages: { disk: { type: 'local', path: join(work, 'disk') } },
    restore: { target: { host: '127.0.0.1', port: db.port, user: db.rootUser, password: { env: 'T_ROOT' } } },
    log: { level: 'warn', format: 'json' },
    ...extraConfig,
  });
  await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk'], retention: { keep: 7 }, ...schedule }));
  const env = { ...process.env, T_DB: db.archiver.password, T_ROOT: db.rootPassword };
  const config = await loadConfig(configFile);
  const controller = new AbortController();
  const running = runDaemon(config, { logger: createSilentLogger(), signal: controller.signal, env, schedules: await loadSchedules(config.schedulesDir, config), statusEveryMs: 200 });
  await waitFor(async () => (await readStatusFile<DaemonStatus>(config.archiver.stateDir))?.archiver?.connected === true, { what: 'the archiver to connect', timeoutMs: 30_000 });

  const masterPosition = async () => {
    const [row] = await db.query<{ File: string; Position: string }[]>('SHOW MASTER STATUS');
    return { file: row!.File, position: Number(row!.Position) };
  };
  const cliWith = (file: string, argv: string[], e: NodeJS.ProcessEnv = env) => cliInProcess(['--config', file, ...argv], e);
  const nextSecond = async () => {
    const now = Date.now();
    await waitFor(() => Date.now() >= (Math.floor(now / 1000) + 1) * 1000 + 50, { what: 'the next second', timeoutMs: 3000 });
  };
  return {
    work,
    env,
    configFile,
    cli: (argv) => cliWith(configFile, argv),
    cliWith,
    masterPosition,
    nextSecond,
    async waitArchived() {
      const target = await masterPosition();
      await waitFor(
        async () => {
          const last = (await listSegments(createLocalStorage({ path: join(work, 'disk') }))).at(-1);
          return last !== undefined && last.serverFile === target.file && last.endPos >= target.position;
        },
        { what: `the archive to reach ${target.file}:${target.position}`, timeoutMs: 60_000, intervalMs: 200 },
      );
    },
    async dump() {
      const r = await cliWith(configFile, ['dump', '--tier', 'daily']);
      if (r.code !== 0) throw new Error(`dump failed: ${r.stdout} ${r.stderr}`);
      const done = Date.now();
      await waitFor(() => Date.now() >= done + 1100, { what: 'a second after the dump', timeoutMs: 3000 });
    },
    async stop() {
      controller.abort();
      await running;
      await rm(work, { recursive: true, force: true });
    },
  };
}
