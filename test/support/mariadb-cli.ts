/**
 * The real `mariadb` and `mariadb-binlog` clients, for loading fixtures and replaying binlogs the
 * way an operator would. Root over the server's socket needs no password, so none is ever in argv.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MariadbServer } from './mariadb.js';

/**
 * The shared fixtures live beside the repository (`../shared/fixtures`), as CI lays them out;
 * MYSQL_ARCHIVER_SHARED_DIR points elsewhere (a clone in /tmp, say).
 */
export const FIXTURES_DIR = `${process.env['MYSQL_ARCHIVER_SHARED_DIR'] ?? fileURLToPath(new URL('../../../shared', import.meta.url))}/fixtures/`;
if (!existsSync(FIXTURES_DIR)) {
  throw new Error(`the shared fixtures are not at ${FIXTURES_DIR}: the round-trip tests need the shared/ folder beside the repository (or MYSQL_ARCHIVER_SHARED_DIR set to it)`);
}
export const TRICKY_SQL = `${FIXTURES_DIR}tricky.sql`;
export const TRICKY_CHURN_SQL = `${FIXTURES_DIR}tricky-churn.sql`;

/**
 * Runs a SQL file through `mariadb` as root on the socket; rejects with its stderr on failure.
 * `tolerate` lists server error numbers after which the file goes on (`--force`): the churn
 * fixture's `DATE_ADD(dt6, INTERVAL 1 MICROSECOND)` overflows (1441) on the 9999-12-31 row in
 * about one round in a hundred, a statement that changes nothing, which replay must match anyway.
 */
export function runSqlFile(server: Pick<MariadbServer, 'socket'>, file: string, options: { database?: string; tolerate?: readonly number[] } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const tolerate = options.tolerate ?? [];
    const args = ['--no-defaults', '--socket', server.socket, '-uroot', '--binary-mode', ...(tolerate.length ? ['--force'] : []), ...(options.database ? [options.database] : [])];
    const child = spawn('mariadb', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const errors = [...stderr.matchAll(/^ERROR (\d+)/gm)].map((m) => Number(m[1]));
      const tolerated = code !== 0 && errors.length > 0 && errors.every((e) => tolerate.includes(e));
      if (code === 0 || tolerated) resolve();
      else reject(new Error(`mariadb < ${file} exited ${code}: ${stderr.trim()}`));
    });
    createReadStream(file).on('error', reject).pipe(child.stdin);
  });
}

/** One round of the churn fixture (see runSqlFile for the one error it may raise). */
export function runChurn(server: Pick<MariadbServer, 'socket'>): Promise<void> {
  return runSqlFile(server, TRICKY_CHURN_SQL, { tolerate: [1441] });
}

/** `mariadb-binlog FILES... | mariadb` into `server`, as the manual runbook does. */
export function replayBinlogFiles(server: Pick<MariadbServer, 'socket'>, files: readonly string[], extraBinlogArgs: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const dump = spawn('mariadb-binlog', ['--no-defaults', ...extraBinlogArgs, ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    const load = spawn('mariadb', ['--no-defaults', '--socket', server.socket, '-uroot', '--binary-mode'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    dump.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += `mariadb-binlog: ${d}`));
    load.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += `mariadb: ${d}`));
    dump.stdout.pipe(load.stdin);
    let pending = 2;
    let failed = false;
    const done = (who: string) => (code: number | null) => {
      if (code !== 0 && !failed) {
        failed = true;
        reject(new Error(`${who} exited ${code}: ${stderr.trim().slice(0, 2000)}`));
      }
      if (--pending === 0 && !failed) resolve();
    };
    dump.on('close', done('mariadb-binlog'));
    load.on('close', done('mariadb'));
    dump.on('error', reject);
    load.on('error', reject);
  });
}
