/**
 * Binlog archiver benchmark, same server, same backlog, same run:
 * 1. catch-up: archive a backlog of sysbench binlog (>= 1 GB by default: `prepare`'s bulk inserts, then
 *    BENCH_RUN_SECONDS of `oltp_write_only`, whose small transactions are what a live archiver sees) from a
 *    throwaway MariaDB, ours vs `mariadb-binlog --read-from-remote-server --raw --to-last-log`,
 *    throughput and peak RSS, and ours again on half the backlog to show memory stays flat as the
 *    backlog grows. mariadb-binlog leaves its files in the page cache; the archiver fsyncs every
 *    segment before its checkpoint moves (it must: the checkpoint says those bytes are safe), so the
 *    table also shows mariadb-binlog followed by an fsync of its files: the same durability.
 * 2. lag: under sustained `sysbench oltp_write_only`, commit -> verified in storage per segment (p50/p99).
 * Run through scripts/bench/binlog.sh (installs what it needs). BENCH_TABLE_ROWS, BENCH_LAG_SECONDS,
 * BENCH_MAX_SECONDS tune it.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayMariadb, type ThrowawayMariadb } from '../../src/demo/throwaway-mariadb.js';
import { assertSucceeded, measureChild, type Measurement } from './lib/measure-child.js';
import { dirBytes, sysbench } from './lib/sysbench.js';
import { formatMiB, formatRatio, formatSize, formatTable, MiB } from './lib/table.js';

const TABLE_ROWS = Number(process.env['BENCH_TABLE_ROWS'] ?? 1_000_000);
const TABLES = 4;
const LAG_SECONDS = Number(process.env['BENCH_LAG_SECONDS'] ?? 60);
const MAX_SECONDS = Number(process.env['BENCH_MAX_SECONDS'] ?? 5);
const RUN_SECONDS = Number(process.env['BENCH_RUN_SECONDS'] ?? 30);

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-binlog-'));
  let db: ThrowawayMariadb | undefined;
  try {
    await mkdir(join(work, 'db'));
    db = await startThrowawayMariadb({
      dir: join(work, 'db'),
      serverId: 1,
      extraArgs: ['--innodb-buffer-pool-size=1G', '--max-binlog-size=256M', '--sync-binlog=0'],
    });
    await db.query('CREATE DATABASE sbtest');
    console.log(`preparing ${TABLES} x ${TABLE_ROWS} rows with sysbench (the backlog) ...`);
    await sysbench(db, ['--tables=' + TABLES, `--table-size=${TABLE_ROWS}`, '--threads=2', 'oltp_write_only', 'prepare']);
    if (RUN_SECONDS > 0) {
      console.log(`adding ${RUN_SECONDS} s of oltp_write_only transactions to the backlog ...`);
      await sysbench(db, ['--tables=' + TABLES, `--table-size=${TABLE_ROWS}`, '--threads=2', `--time=${RUN_SECONDS}`, '--report-interval=0', 'oltp_write_only', 'run']);
    }
    await db.query('FLUSH BINARY LOGS');
    const logs = await db.query<{ Log_name: string; File_size: string }[]>('SHOW BINARY LOGS');
    const first = logs[0]!.Log_name;
    const until = { file: logs.at(-1)!.Log_name, position: 4 };
    const backlog = logs.slice(0, -1).reduce((n, l) => n + Number(l.File_size), 0);
    const half = logs.slice(0, Math.max(1, Math.ceil((logs.length - 1) / 2)));
    const halfBytes = half.reduce((n, l) => n + Number(l.File_size), 0);
    console.log(`backlog: ${formatSize(backlog)} in ${logs.length - 1} files`);

    const binlogArgs = (dir: string) => ['--no-defaults', '--read-from-remote-server', '--raw', `--host=${db!.host}`, `--port=${db!.port}`, `--user=${db!.archiver.user}`, `--result-file=${dir}/`, first, '--to-last-log'];
    // the password goes in the environment (MYSQL_PWD), never in argv
    const binlogEnv = { ...process.env, MYSQL_PWD: db.archiver.password };
    await mkdir(join(work, 'theirs'));
    await settleDisk();
    const theirs = await measureChild({ command: 'mariadb-binlog', args: binlogArgs(join(work, 'theirs')), env: binlogEnv, stdout: 'ignore' });
    assertSucceeded('mariadb-binlog --raw', theirs);
    await mkdir(join(work, 'theirs-synced'));
    await settleDisk();
    const theirsSynced = await measureChild({
      command: 'bash',
      args: ['-c', 'mariadb-binlog "$@" && sync -- "$DIR"/*', 'bash', ...binlogArgs(join(work, 'theirs-synced'))],
      env: { ...binlogEnv, DIR: join(work, 'theirs-synced') },
      stdout: 'ignore',
    });
    assertSucceeded('mariadb-binlog --raw && sync', theirsSynced);
    const oursFull = await runOurs(db, work, 'full', { file: first, position: 4 }, until);
    const oursHalf = await runOurs(db, work, 'half', { file: first, position: 4 }, { file: logs[half.length]!.Log_name, position: 4 });
    const ourBytes = await dirBytes(join(work, 'out-full'));
    if (ourBytes < backlog) throw new Error(`the archive holds ${ourBytes} bytes, the backlog ${backlog}`);

    const rate = (bytes: number, m: Measurement) => bytes / m.wallSeconds / 1e6;
    console.log('\ncatch-up (same server, same backlog, same run)');
    console.log(
      formatTable(
        ['tool', 'backlog', 'wall s', 'MB/s', 'ratio', 'peak RSS MiB'],
        [
          ['mariadb-binlog --raw (anchor)', formatSize(backlog), theirs.wallSeconds.toFixed(2), rate(backlog, theirs).toFixed(0), '1.00x', formatMiB(theirs.peakRssBytes)],
          ['mariadb-binlog --raw, then sync of its files', formatSize(backlog), theirsSynced.wallSeconds.toFixed(2), rate(backlog, theirsSynced).toFixed(0), formatRatio(rate(backlog, theirsSynced), rate(backlog, theirs)), formatMiB(theirsSynced.peakRssBytes)],
          ['mysql-archiver', formatSize(backlog), oursFull.wallSeconds.toFixed(2), rate(backlog, oursFull).toFixed(0), formatRatio(rate(backlog, oursFull), rate(backlog, theirs)), formatMiB(oursFull.peakRssBytes)],
          ['mysql-archiver, half the backlog', formatSize(halfBytes), oursHalf.wallSeconds.toFixed(2), rate(halfBytes, oursHalf).toFixed(0), '', formatMiB(oursHalf.peakRssBytes)],
        ],
      ),
    );
    console.log(`target: >= 0.8x and <= 150 MiB peak RSS, flat as the backlog grows (half: ${formatMiB(oursHalf.peakRssBytes)}, full: ${formatMiB(oursFull.peakRssBytes)})`);
    console.log(`at the same durability (mariadb-binlog, then sync): ${formatRatio(rate(backlog, oursFull), rate(backlog, theirsSynced))}`);

    const lags = await runLag(db, work);
    const sorted = [...lags].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
    console.log(`\narchive lag under sysbench oltp_write_only for ${LAG_SECONDS} s (segment.maxSeconds ${MAX_SECONDS})`);
    console.log(
      formatTable(
        ['segments', 'p50 s', 'p99 s', 'max s', 'target p99 s'],
        [[lags.length, ((pct(50) ?? 0) / 1000).toFixed(1), ((pct(99) ?? 0) / 1000).toFixed(1), ((sorted.at(-1) ?? 0) / 1000).toFixed(1), `<= ${MAX_SECONDS + 10}`]],
      ),
    );
    console.log('lag = verified in storage minus the commit second of the oldest event in the segment (an upper bound for every commit in it)');
  } finally {
    await db?.shutdown().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function runOurs(db: ThrowawayMariadb, work: string, name: string, start: { file: string; position: number }, until: { file: string; position: number }): Promise<Measurement> {
  const settings = { mode: 'catch-up', host: db.host, port: db.port, user: db.archiver.user, stateDir: join(work, `state-${name}`), outDir: join(work, `out-${name}`), maxSeconds: 300, maxBytes: 256 * MiB, until, start };
  await mkdir(settings.stateDir, { recursive: true });
  await settleDisk();
  const m = await measureChild({
    command: process.execPath,
    // as the systemd unit runs the archiver
    args: ['--max-semi-space-size=4', 'scripts/bench/binlog-child.mjs'],
    env: { ...process.env, BENCH_ARCHIVER: JSON.stringify(settings), BENCH_PASSWORD: db.archiver.password },
    stdout: 'ignore',
  });
  assertSucceeded(`mysql-archiver catch-up (${name})`, m);
  return m;
}

/** Writes back what earlier steps left dirty, so no run pays for the one before it. */
function settleDisk(): Promise<void> {
  return new Promise((resolve, reject) => {
    spawn('sync', { stdio: 'ignore' }).on('error', reject).on('close', () => resolve());
  });
}

async function runLag(db: ThrowawayMariadb, work: string): Promise<number[]> {
  const status = await db.query<{ File: string; Position: string }[]>('SHOW MASTER STATUS');
  const settings = { mode: 'lag', host: db.host, port: db.port, user: db.archiver.user, stateDir: join(work, 'state-lag'), outDir: join(work, 'out-lag'), maxSeconds: MAX_SECONDS, maxBytes: 256 * MiB };
  await mkdir(settings.stateDir, { recursive: true });
  // start at the current position: the lag run measures fresh commits only
  const { saveCheckpoint } = await import('../../src/binlog/checkpoint.js');
  await saveCheckpoint(settings.stateDir, { v: 1, source: 'server-1', epoch: 1, serverId: 1, next: { file: status[0]!.File, position: Number(status[0]!.Position) }, updatedAt: new Date().toISOString() });
  const child = spawn(process.execPath, ['--max-semi-space-size=4', 'scripts/bench/binlog-child.mjs'], {
    env: { ...process.env, BENCH_ARCHIVER: JSON.stringify(settings), BENCH_PASSWORD: db.archiver.password },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lags: number[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      lags.push((JSON.parse(buffered.slice(0, i)) as { lagMs: number }).lagMs);
      buffered = buffered.slice(i + 1);
    }
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await sysbench(db, ['--tables=' + TABLES, `--table-size=${TABLE_ROWS}`, '--threads=2', `--time=${LAG_SECONDS}`, '--report-interval=0', 'oltp_write_only', 'run']);
  child.kill('SIGTERM');
  await exited;
  return lags;
}



await main();
