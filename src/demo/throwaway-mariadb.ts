/**
 * Throwaway MariaDB servers: a real `mariadbd` in a directory of its own, listening on a free port
 * on 127.0.0.1 and on a socket, with the binlog settings the archiver needs (ROW, FULL row image,
 * FULL row metadata, CRC32). Used by `demo`, later by the restore drill, and (through a thin
 * wrapper, test/support/mariadb.ts) by the tests.
 *
 * Setup statements (root password, the `archiver` login) are kept out of the binlog, so a fresh
 * server's binlog holds only what its user did. Readiness is a real connection, never a sleep.
 * mariadbd runs with a parent-death signal where `setpriv` exists, so it dies with this process even
 * on a SIGKILL; `shutdown()` stops it cleanly, `kill()` crashes it, `stop()` also removes its dir.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { ArchiverError, throwIfAborted } from '../errors.js';
import { freePort } from './free-port.js';
import { waitUntil } from './wait-until.js';

const execFileAsync = promisify(execFile);

/** Privileges of the `archiver` login; MariaDB 10.11 shows REPLICATION CLIENT as BINLOG MONITOR. */
export const ARCHIVER_GRANTS =
  'REPLICATION SLAVE, BINLOG MONITOR, REPLICATION CLIENT, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER';

// the same InnoDB sizes for install-db and mariadbd, so a copied redo log is never resized
const INNODB_ARGS = ['--innodb-buffer-pool-size=64M', '--innodb-log-file-size=32M'];
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
// sun_path holds 108 bytes; leave room for the NUL and for tmp dirs named by mkdtemp
const MAX_SOCKET_PATH = 100;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
// Debian puts mariadbd in /usr/sbin, which a non-root PATH often lacks
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/mysql/bin', '/opt/mariadb/bin'];

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const asRootArgs = isRoot ? ['--user=root'] : [];

/** Absolute path of a MariaDB program, from PATH or the usual install dirs. */
export function findMariadbProgram(name: 'mariadbd' | 'mariadb-install-db', env: NodeJS.ProcessEnv = process.env): string {
  const dirs = [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  throw new ArchiverError(`${name} not found in PATH or ${EXTRA_DIRS.join(', ')}`, {
    hint: 'Install the MariaDB server (on Debian: apt-get install mariadb-server mariadb-client); scripts/demo.sh does this for you.',
  });
}

/** Creates a fresh data directory with `mariadb-install-db` (root without password, no test db). */
export async function installMariadbDataDir(dataDir: string, options: { tmpDir: string; env?: NodeJS.ProcessEnv }): Promise<void> {
  // its own tmpdir: concurrent install-db runs sharing /tmp have clobbered each other's temp tables
  await mkdir(options.tmpDir, { recursive: true });
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--tmpdir=${options.tmpDir}`,
    ...asRootArgs,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    ...INNODB_ARGS,
  ];
  try {
    await execFileAsync(findMariadbProgram('mariadb-install-db', options.env), args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    if (error instanceof ArchiverError) throw error;
    const e = error as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').slice(-30).join('\n');
    throw new ArchiverError(`mariadb-install-db failed: ${e.message}\n${output}`, {
      cause: error,
      hint: 'Check that the MariaDB server package is installed completely and that the work directory is writable.',
    });
  }
}

export interface ThrowawayMariadbOptions {
  /** an existing directory owned by this server: datadir, binlogs, socket, error log go inside */
  dir: string;
  /** `--server-id` (default 1) */
  serverId?: number;
  /** appended after the defaults, so they win (`--log-slave-updates`, `--binlog-row-metadata=MINIMAL`) */
  extraArgs?: string[];
  /** a datadir made by installMariadbDataDir to copy; without it install-db runs (about 2 s) */
  templateDataDir?: string;
  /** the `archiver` login's password (default: random) */
  archiverPassword?: string;
  /** where to look for the MariaDB programs (PATH) */
  env?: NodeJS.ProcessEnv;
}

/** Starts a throwaway server and waits until it accepts connections. On failure nothing runs. */
export async function startThrowawayMariadb(opts: ThrowawayMariadbOptions, signal?: AbortSignal): Promise<ThrowawayMariadb> {
  const server = new ThrowawayMariadb(opts);
  try {
    await server.start(signal);
    return server;
  } catch (error) {
    await server.shutdown().catch(() => undefined);
    throw error;
  }
}

export class ThrowawayMariadb {
  readonly host = '127.0.0.1';
  readonly dir: string;
  readonly dataDir: string;
  readonly binlogDir: string;
  readonly errorLogPath: string;
  readonly serverId: number;
  readonly rootUser = 'root';
  readonly rootPassword = randomBytes(12).toString('hex');
  /** the least-privileged login the archiver and the dumper are meant to use */
  readonly archiver: { readonly user: string; readonly password: string };
  #port = 0;
  #socket: string;
  #socketDir: string | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #pool: mysql.Pool | undefined;
  #removed = false;
  readonly #opts: ThrowawayMariadbOptions;

  constructor(opts: ThrowawayMariadbOptions) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.serverId = opts.serverId ?? 1;
    this.archiver = { user: 'archiver', password: opts.archiverPassword ?? randomBytes(12).toString('hex') };
    this.dataDir = join(opts.dir, 'data');
    this.binlogDir = join(opts.dir, 'binlog');
    this.errorLogPath = join(opts.dir, 'mariadbd.err');
    this.#socket = join(opts.dir, 'mysqld.sock');
  }

  get port(): number {
    return this.#port;
  }

  get socket(): string {
    return this.#socket;
  }

  /** the mariadbd process id while it runs */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Lays out the dir, starts mariadbd on a free port (retrying when another process took it) and creates the logins. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#removed) throw new Error(`mariadb server dir ${this.dir} was removed`);
    throwIfAborted(signal);
    await mkdir(this.binlogDir, { recursive: true });
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    if (this.#socket.length > MAX_SOCKET_PATH) {
      this.#socketDir = await mkdtemp(join(tmpdir(), 'mariadb-sock-'));
      this.#socket = join(this.#socketDir, 'mysqld.sock');
    }
    if (this.#opts.templateDataDir) await execFileAsync('cp', ['-a', this.#opts.templateDataDir, this.dataDir]);
    else await installMariadbDataDir(this.dataDir, { tmpDir: join(this.dir, 'tmp'), ...(this.#opts.env ? { env: this.#opts.env } : {}) });
    throwIfAborted(signal);
    for (let attempt = 1; ; attempt++) {
      this.#port = await freePort();
      try {
        await this.#spawnAndWait(signal);
        break;
      } catch (error) {
        const log = await readFile(this.errorLogPath, 'utf8').catch(() => '');
        if (attempt >= 3 || signal?.aborted || !/address already in use|bind on tcp\/ip port/i.test(log)) throw error;
      }
    }
    const conn = await this.#socketConnection();
    try {
      // setup stays out of the binlog so its users see only their own events
      await conn.query('SET sql_log_bin = 0');
      await conn.query(`ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY ?`, [this.rootPassword]);
      await conn.query(`CREATE USER 'archiver'@'127.0.0.1' IDENTIFIED BY ?`, [this.archiver.password]);
      await conn.query(`GRANT ${ARCHIVER_GRANTS} ON *.* TO 'archiver'@'127.0.0.1'`);
    } finally {
      await conn.end();
    }
  }

  /** Runs a statement as root over TCP and returns the rows (or the ResultSetHeader). */
  async query<T = any>(sql: string, params?: unknown[]): Promise<T> {
    this.#pool ??= mysql.createPool({ ...this.rootOptions(), connectionLimit: 4 });
    const [rows] = await this.#pool.query(sql, params);
    return rows as T;
  }

  /** A new root connection over TCP; the caller ends it. */
  connectRoot(): Promise<mysql.Connection> {
    return mysql.createConnection(this.rootOptions());
  }

  /**
   * Root connection options with the product's value options: DATETIME and BIGINT as strings
   * (`SELECT @@server_id` gives '1').
   */
  rootOptions(): mysql.ConnectionOptions {
    return {
      host: this.host,
      port: this.#port,
      user: this.rootUser,
      password: this.rootPassword,
      multipleStatements: true,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      charset: 'utf8mb4',
    };
  }

  /** Graceful shutdown; waits for the process to exit and keeps every file. */
  shutdown(): Promise<void> {
    return this.#shutdown('SIGTERM');
  }

  /** SIGKILL (a crash); waits for the process to exit and keeps the datadir so restart() recovers it. */
  kill(): Promise<void> {
    return this.#shutdown('SIGKILL');
  }

  /** Shuts down (if running) and starts again on the same datadir and port. */
  async restart(signal?: AbortSignal): Promise<void> {
    if (this.#removed) throw new Error(`mariadb server ${this.#port} was stopped and its dir removed`);
    await this.#shutdown('SIGTERM');
    await this.#spawnAndWait(signal);
  }

  /** Graceful shutdown, then removes the dir. Safe to call more than once. */
  async stop(): Promise<void> {
    await this.#shutdown('SIGTERM');
    if (this.#removed) return;
    this.#removed = true;
    await rm(this.dir, { recursive: true, force: true });
    if (this.#socketDir) await rm(this.#socketDir, { recursive: true, force: true });
  }

  /** Synchronous SIGKILL, for process 'exit' hooks that cannot wait. */
  killNow(): void {
    try {
      this.#child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  #socketConnection(): Promise<mysql.Connection> {
    return mysql.createConnection({ socketPath: this.#socket, user: 'root', connectTimeout: 2_000 });
  }

  #args(): string[] {
    return [
      '--no-defaults',
      ...asRootArgs,
      `--datadir=${this.dataDir}`,
      `--socket=${this.#socket}`,
      `--pid-file=${join(this.dir, 'mariadbd.pid')}`,
      `--log-error=${this.errorLogPath}`,
      `--tmpdir=${join(this.dir, 'tmp')}`,
      `--port=${this.#port}`,
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
      ...(this.#opts.extraArgs ?? []),
    ];
  }

  async #spawnAndWait(signal?: AbortSignal): Promise<void> {
    const mariadbd = findMariadbProgram('mariadbd', this.#opts.env);
    const args = this.#args();
    const logFd = openSync(this.errorLogPath, 'a');
    let child: ChildProcess;
    try {
      // --pdeathsig makes the kernel kill mariadbd if this process dies without running its cleanup
      child = SETPRIV
        ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', mariadbd, ...args], { stdio: ['ignore', logFd, logFd] })
        : spawn(mariadbd, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    this.#child = child;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      const done = (info: string) => {
        exitInfo ??= info;
        if (this.#child === child) this.#child = undefined;
        resolve();
      };
      child.once('exit', (code, sig) => done(sig ? `signal ${sig}` : `exit code ${code}`));
      child.once('error', (error) => done(`spawn error: ${error.message}`));
    });
    const exitedEarly = this.#exited.then(() => {
      throw new Error(`mariadbd exited during startup (${exitInfo})`);
    });
    exitedEarly.catch(() => undefined);
    try {
      await Promise.race([
        exitedEarly,
        waitUntil(
          async () => {
            const conn = await this.#socketConnection();
            await conn.end();
            return true;
          },
          {
            what: `mariadbd on port ${this.#port} to accept connections`,
            timeoutMs: START_TIMEOUT_MS,
            intervalMs: 25,
            ...(signal ? { signal } : {}),
          },
        ),
      ]);
    } catch (error) {
      if (this.#child === child) await this.#shutdown('SIGKILL');
      if (signal?.aborted) throw error;
      const tail = await logTail(this.errorLogPath, 30);
      throw new ArchiverError(
        `mariadbd failed to start (${this.dir}): ${(error as Error).message}\n--- tail of ${this.errorLogPath} ---\n${tail}`,
        { cause: error, hint: `The server's error log ${this.errorLogPath} says why; the lines above are its end.` },
      );
    }
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

async function logTail(path: string, lines: number): Promise<string> {
  const text = await readFile(path, 'utf8').catch((error: Error) => `(no error log: ${error.message})`);
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
