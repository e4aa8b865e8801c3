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
 * everything. Servers still running when the test process exits are SIGKILLed and their dirs removed;
 * mariadbd is also started with a parent-death signal so it dies with the process even on a SIGKILL.
 * `mariadb-install-db` runs once per test process; each server starts from a copy of that template.
 * A start takes about 0.4 s (0.9 s for the first one in a process), so vitest's default hook
 * timeout is enough; nothing here sleeps, readiness is a real connection.
 * `query()` uses the same value options as the product's source connection: DATETIME as strings,
 * BIGINT as strings (`SELECT @@server_id` gives '1').
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './free-port.js';
import { waitFor } from './wait.js';

const execFileAsync = promisify(execFile);

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

/** Privileges of the `archiver` login; MariaDB 10.11 shows REPLICATION CLIENT as BINLOG MONITOR. */
export const ARCHIVER_GRANTS =
  'REPLICATION SLAVE, BINLOG MONITOR, REPLICATION CLIENT, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER';

// the same InnoDB sizes for install-db and mariadbd, so the copied redo log is never resized
const INNODB_ARGS = ['--innodb-buffer-pool-size=64M', '--innodb-log-file-size=32M'];
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

// servers not yet stop()ped, whether their process runs or was killed
const servers = new Set<Server>();
const dirsToRemove = new Set<string>();
let templatePromise: Promise<string> | undefined;
let nextServerId = 1;
let exitHookInstalled = false;

export async function startMariadb(opts: StartMariadbOptions = {}): Promise<MariadbServer> {
  installExitHook();
  const template = await templateDataDir();
  const dir = await makeOwnedDir('mariadb-test-');
  const server = new Server(dir, opts.serverId ?? nextServerId++, opts.extraArgs ?? []);
  servers.add(server);
  try {
    await mkdir(server.binlogDir, { recursive: true });
    await mkdir(join(dir, 'tmp'));
    await execFileAsync('cp', ['-a', template, server.dataDir]);
    await server.firstStart();
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

class Server implements MariadbServer {
  readonly host = '127.0.0.1';
  port = 0;
  readonly socket: string;
  readonly dataDir: string;
  readonly binlogDir: string;
  readonly errorLogPath: string;
  readonly rootUser = 'root';
  readonly rootPassword = randomBytes(12).toString('hex');
  readonly archiver = { user: 'archiver', password: randomBytes(12).toString('hex') };
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #pool: mysql.Pool | undefined;
  #removed = false;

  constructor(
    readonly dir: string,
    readonly serverId: number,
    private readonly extraArgs: string[],
  ) {
    this.socket = join(dir, 'mysqld.sock');
    this.dataDir = join(dir, 'data');
    this.binlogDir = join(dir, 'binlog');
    this.errorLogPath = join(dir, 'mariadbd.err');
  }

  /** picks a port, retrying with another when a parallel process took it first */
  async firstStart(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        await this.#spawnAndWait();
        break;
      } catch (error) {
        const log = await readFile(this.errorLogPath, 'utf8').catch(() => '');
        if (attempt >= 3 || !/address already in use|bind on tcp\/ip port/i.test(log)) throw error;
      }
    }
    const conn = await this.#socketConnection();
    try {
      // setup stays out of the binlog so tests see only their own events
      await conn.query('SET sql_log_bin = 0');
      await conn.query(`ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY ?`, [this.rootPassword]);
      await conn.query(`CREATE USER 'archiver'@'127.0.0.1' IDENTIFIED BY ?`, [this.archiver.password]);
      await conn.query(`GRANT ${ARCHIVER_GRANTS} ON *.* TO 'archiver'@'127.0.0.1'`);
    } finally {
      await conn.end();
    }
  }

  async query<T = any>(sql: string, params?: unknown[]): Promise<T> {
    this.#pool ??= mysql.createPool({ ...this.#rootOptions(), connectionLimit: 4 });
    const [rows] = await this.#pool.query(sql, params);
    return rows as T;
  }

  connectRoot(): Promise<mysql.Connection> {
    return mysql.createConnection(this.#rootOptions());
  }

  async stop(): Promise<void> {
    await this.#shutdown('SIGTERM');
    servers.delete(this);
    if (!this.#removed) {
      this.#removed = true;
      await removeDir(this.dir);
    }
  }

  async kill(): Promise<void> {
    await this.#shutdown('SIGKILL');
  }

  async restart(): Promise<void> {
    if (this.#removed) throw new Error(`mariadb server ${this.port} was stopped and its dir removed`);
    await this.#shutdown('SIGTERM');
    await this.#spawnAndWait();
  }

  /** synchronous SIGKILL for the process 'exit' hook */
  killNow(): void {
    try {
      this.#child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  #rootOptions(): mysql.ConnectionOptions {
    return {
      host: this.host,
      port: this.port,
      user: this.rootUser,
      password: this.rootPassword,
      multipleStatements: true,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      charset: 'utf8mb4',
    };
  }

  #socketConnection(): Promise<mysql.Connection> {
    return mysql.createConnection({ socketPath: this.socket, user: 'root', connectTimeout: 2_000 });
  }

  async #spawnAndWait(): Promise<void> {
    const args = [
      '--no-defaults',
      '--user=root',
      `--datadir=${this.dataDir}`,
      `--socket=${this.socket}`,
      `--pid-file=${join(this.dir, 'mariadbd.pid')}`,
      `--log-error=${this.errorLogPath}`,
      `--tmpdir=${join(this.dir, 'tmp')}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      `--log-bin=${join(this.binlogDir, 'mysql-bin')}`,
      '--binlog-format=ROW',
      '--binlog-row-image=FULL',
      '--binlog-row-metadata=FULL',
      '--binlog-checksum=CRC32',
      `--server-id=${this.serverId}`,
      ...INNODB_ARGS,
      // a SIGKILLed mariadbd still leaves its writes in the page cache, so this only trades away OS-crash safety
      '--innodb-flush-log-at-trx-commit=2',
      '--skip-name-resolve',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      '--max-allowed-packet=64M',
      ...this.extraArgs,
    ];
    const logFd = openSync(this.errorLogPath, 'a');
    let child: ChildProcess;
    try {
      // --pdeathsig makes the kernel kill mariadbd if the test process dies without running exit hooks
      child = SETPRIV
        ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', 'mariadbd', ...args], { stdio: ['ignore', logFd, logFd] })
        : spawn('mariadbd', args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once('error', (error) => {
        exitInfo = `spawn error: ${error.message}`;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    const exitedEarly = this.#exited.then(() => {
      throw new Error(`mariadbd exited during startup (${exitInfo})`);
    });
    try {
      await Promise.race([
        exitedEarly,
        waitFor(
          async () => {
            const conn = await this.#socketConnection();
            await conn.end();
            return true;
          },
          { what: `mariadbd on port ${this.port} to accept connections`, timeoutMs: START_TIMEOUT_MS, intervalMs: 25 },
        ),
      ]);
    } catch (error) {
      exitedEarly.catch(() => undefined);
      if (this.#child === child) await this.#shutdown('SIGKILL');
      const tail = await logTail(this.errorLogPath, 30);
      throw new Error(
        `mariadbd failed to start (${this.dir}): ${(error as Error).message}\n--- tail of ${this.errorLogPath} ---\n${tail}`,
        { cause: error },
      );
    }
    exitedEarly.catch(() => undefined);
  }

  async #shutdown(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end().catch(() => undefined);
    const child = this.#child;
    if (child) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
  }
}

function templateDataDir(): Promise<string> {
  templatePromise ??= sweepOrphans().then(makeTemplate).catch((error: unknown) => {
    templatePromise = undefined;
    throw error;
  });
  return templatePromise;
}

async function makeTemplate(): Promise<string> {
  const dir = await makeOwnedDir('mariadb-template-');
  const dataDir = join(dir, 'data');
  // its own tmpdir: concurrent install-db runs sharing /tmp have clobbered each other's temp tables
  await mkdir(join(dir, 'tmp'));
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--tmpdir=${join(dir, 'tmp')}`,
    '--user=root',
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    ...INNODB_ARGS,
  ];
  try {
    await execFileAsync('mariadb-install-db', args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').slice(-30).join('\n');
    throw new Error(`mariadb-install-db failed: ${e.message}\n${output}`, { cause: error });
  }
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

async function logTail(path: string, lines: number): Promise<string> {
  const text = await readFile(path, 'utf8').catch((error: Error) => `(no error log: ${error.message})`);
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function removeDir(dir: string): Promise<void> {
  dirsToRemove.delete(dir);
  await rm(dir, { recursive: true, force: true });
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
