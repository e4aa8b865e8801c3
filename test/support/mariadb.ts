/**
 * Throwaway MariaDB servers for tests: real `mariadbd` processes, each in its own temp dir.
 *
 * Usage:
 *
 *   import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
 *
 *   let db: MariadbServer;
 *   beforeAll(async () => { db = await startMariadb({ initSql: ['CREATE DATABASE app'] }); });
 *   afterAll(() => stopAllMariadb());
 *
 *   await db.query('INSERT INTO app.t VALUES (?)', [1]);          // as root, returns the rows
 *   const conn = await db.connectRoot();                          // your own connection; end it yourself
 *   connectSource({ host: db.host, port: db.port, user: db.archiver.user, password: db.archiver.password, serverId: 99 })
 *
 * What you get: binlog on (ROW, FULL row image, FULL row metadata, CRC32) under `db.binlogDir`,
 * `log_slave_updates` off, utf8mb4 by default, a root login over TCP with a random password and an
 * `archiver` login with the privileges the archiver and the dumper need. Setup statements are kept
 * out of the binlog, so a fresh server's binlog holds only what the test (and `initSql`) did.
 * `kill()` is a SIGKILL (crash) and keeps the datadir; `restart()` starts again on the same datadir
 * and port (after kill() this exercises crash recovery); `stop()` shuts down cleanly and deletes
 * everything. The server itself is the product's launcher (src/demo/throwaway-mariadb.ts); this file
 * adds only test concerns: servers still running when the test process exits are SIGKILLed and their
 * dirs removed (mariadbd also has a parent-death signal, so it dies with the process even on a
 * SIGKILL), dirs of test processes that died are swept, and `mariadb-install-db` runs once per test
 * process: each server starts from a copy of that template.
 * A start takes about 0.4 s (0.9 s for the first one in a process), so vitest's default hook
 * timeout is enough; nothing here sleeps, readiness is a real connection.
 * `query()` uses the same value options as the product's source connection: DATETIME as strings,
 * BIGINT as strings (`SELECT @@server_id` gives '1').
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { ARCHIVER_GRANTS, ThrowawayMariadb, installMariadbDataDir } from '../../src/demo/throwaway-mariadb.js';

export { ARCHIVER_GRANTS };

export interface StartMariadbOptions {
  /** `--server-id`; defaults to a number unique within this test process */
  serverId?: number;
  /** appended after the defaults, so they win (`--log-slave-updates`, `--binlog-row-metadata=MINIMAL`) */
  extraArgs?: string[];
  /** statements run as root once the server is up; these are written to the binlog */
  initSql?: string[];
}

export interface MariadbServer {
  readonly host: string;
  readonly port: number;
  readonly socket: string;
  /** the server's own temp dir; gone after stop() */
  readonly dir: string;
  readonly dataDir: string;
  readonly binlogDir: string;
  readonly errorLogPath: string;
  readonly serverId: number;
  readonly rootUser: string;
  readonly rootPassword: string;
  /** the least-privileged login the archiver and the dumper are meant to use */
  readonly archiver: { readonly user: string; readonly password: string };
  /** runs a statement as root over TCP and returns the rows (or the ResultSetHeader) */
  query<T = any>(sql: string, params?: unknown[]): Promise<T>;
  /** a new root connection over TCP; the caller ends it */
  connectRoot(): Promise<mysql.Connection>;
  /** graceful shutdown, waits for the process to exit, then removes the dir */
  stop(): Promise<void>;
  /** SIGKILL, waits for the process to exit; keeps the datadir so restart() can recover it */
  kill(): Promise<void>;
  /** shuts down (if running) and starts again on the same datadir and port */
  restart(): Promise<void>;
}

// servers not yet stop()ped, whether their process runs or was killed
const servers = new Set<TestServer>();
const dirsToRemove = new Set<string>();
let templatePromise: Promise<string> | undefined;
let nextServerId = 1;
let exitHookInstalled = false;

/** Forgets the server once stop() removed its dir. */
class TestServer extends ThrowawayMariadb implements MariadbServer {
  override async stop(): Promise<void> {
    await super.stop();
    servers.delete(this);
    dirsToRemove.delete(this.dir);
  }
}

export async function startMariadb(opts: StartMariadbOptions = {}): Promise<MariadbServer> {
  installExitHook();
  const templateDataDir = await templateDir();
  const dir = await makeOwnedDir('mariadb-test-');
  const server = new TestServer({ dir, serverId: opts.serverId ?? nextServerId++, extraArgs: opts.extraArgs ?? [], templateDataDir });
  servers.add(server);
  try {
    await server.start();
    for (const sql of opts.initSql ?? []) await server.query(sql);
    return server;
  } catch (error) {
    await server.stop().catch(() => undefined);
    throw error;
  }
}

/** Stops every server this process started (for afterAll). */
export async function stopAllMariadb(): Promise<void> {
  await Promise.all([...servers].map((s) => s.stop()));
}

function templateDir(): Promise<string> {
  templatePromise ??= sweepOrphans().then(makeTemplate).catch((error: unknown) => {
    templatePromise = undefined;
    throw error;
  });
  return templatePromise;
}

async function makeTemplate(): Promise<string> {
  const dir = await makeOwnedDir('mariadb-template-');
  const dataDir = join(dir, 'data');
  await installMariadbDataDir(dataDir, { tmpDir: join(dir, 'tmp') });
  return dataDir;
}

const OWNER_FILE = 'owner.pid';

async function makeOwnedDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirsToRemove.add(dir);
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/** Removes dirs left by test processes that died by SIGKILL, when no exit hook could run. */
async function sweepOrphans(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith('mariadb-test-') && !name.startsWith('mariadb-template-')) continue;
    const dir = join(tmpdir(), name);
    const owner = Number(await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => ''));
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) await rm(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // must stay synchronous: 'exit' handlers cannot wait
  const cleanup = (): void => {
    for (const server of servers) server.killNow();
    for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  // vitest ends its forks with SIGTERM, which skips 'exit' handlers
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanup();
      // without other listeners, keep the default behaviour: die by the same signal
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
