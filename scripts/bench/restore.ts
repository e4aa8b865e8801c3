/**
 * Restore benchmark, same server, same data, same run:
 * 1. single-table restore: `mysql-archiver restore table sbtest.sbtest1 --at T` (our dump + the archived
 *    binlog of BENCH_WORKLOAD_SECONDS of sysbench oltp_write_only) vs the manual runbook on a scratch
 *    server (`mariadb < full dump`, then `mariadb-binlog --start-position … --stop-datetime … | mariadb`);
 *    both results are checked equal (CHECKSUM TABLE);
 * 2. replay throughput on the same binlog range from the same starting state: ours (verified archived
 *    segments, filtered, applied) vs `mariadb-binlog FILES | mariadb`.
 * Run through scripts/bench/restore.sh (installs what it needs). For looking into it: BENCH_SHOW=1 prints
 * our restore's progress with timestamps, BENCH_SKIP_REPLAY=1 stops after part 1, BENCH_KEEP=1 keeps
 * the work directory (archive, dumps, data directories).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startThrowawayMariadb, type ThrowawayMariadb } from '../../src/demo/throwaway-mariadb.js';
import { assertSucceeded, measureChild, type Measurement } from './lib/measure-child.js';
import { formatMiB, formatRatio, formatSize, formatTable } from './lib/table.js';
import { dirBytes, sysbench } from './lib/sysbench.js';

const TABLES = 8;
const TABLE_ROWS = Number(process.env['BENCH_TABLE_ROWS'] ?? 200_000);
const WORKLOAD_SECONDS = Number(process.env['BENCH_WORKLOAD_SECONDS'] ?? 120);
const CLI = ['dist/cli/main.js'];

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-restore-'));
  const servers: ThrowawayMariadb[] = [];
  let daemon: ReturnType<typeof spawn> | undefined;
  try {
    const start = async (name: string, serverId: number) => {
      await mkdir(join(work, name));
      const s = await startThrowawayMariadb({ dir: join(work, name), serverId, extraArgs: ['--innodb-buffer-pool-size=512M', '--max-binlog-size=64M'] });
      servers.push(s);
      return s;
    };
    const db = await start('source', 1);
    await db.query('CREATE DATABASE sbtest');
    console.log(`preparing ${TABLES} x ${TABLE_ROWS} rows with sysbench ...`);
    await sysbench(db, ['--tables=' + TABLES, `--table-size=${TABLE_ROWS}`, '--threads=2', 'oltp_write_only', 'prepare']);

    // root on the socket is the OS user (unix_socket); over TCP it has its password
    const env = { ...process.env, B_DB: db.archiver.password, B_ROOT: db.rootPassword };
    const configFile = join(work, 'config.yaml');
    await mkdir(join(work, 'schedules'));
    await writeFile(configFile, stringify({
      source: { host: db.host, port: db.port, user: db.archiver.user, password: { env: 'B_DB' }, serverId: 7001 },
      archiver: { storage: 'disk', spoolDir: join(work, 'spool'), stateDir: join(work, 'state'), segment: { maxSeconds: 5 }, spoolMaxBytes: '4GiB' },
      storages: { disk: { type: 'local', path: join(work, 'disk') } },
      restore: { target: { host: db.host, port: db.port, user: 'root', password: { env: 'B_ROOT' } } },
      log: { level: 'warn', format: 'json' },
    }));
    await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk'], retention: { keep: 7 } }));
    daemon = spawn(process.execPath, [...CLI, '-c', configFile, 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    await until(async () => JSON.parse(await readFile(join(work, 'state', 'status.json'), 'utf8').catch(() => '{}')).archiver?.connected === true, 'the archiver to connect');

    // our dump and the runbook's full dump, both before the workload
    const dump = await measureChild({ command: process.execPath, args: [...CLI, '-c', configFile, 'dump', '--tier', 'daily'], env, stdout: 'capture' });
    assertSucceeded('mysql-archiver dump', dump);
    const fullDump = join(work, 'full.sql');
    const mdump = await measureChild({
      command: 'bash',
      args: ['-c', `mariadb-dump --no-defaults --socket=${db.socket} -uroot --single-transaction --master-data=2 --databases sbtest > ${fullDump}`],
      env: process.env,
    });
    assertSucceeded('mariadb-dump', mdump);
    const head = (await readFile(fullDump, 'utf8')).slice(0, 4000);
    const m = /MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)/.exec(head);
    if (!m) throw new Error('no binlog position in the mariadb-dump header');
    const startFile = m[1] as string;
    const startPos = Number(m[2]);

    console.log(`sysbench oltp_write_only for ${WORKLOAD_SECONDS} s while archiving ...`);
    await sysbench(db, ['--tables=' + TABLES, `--table-size=${TABLE_ROWS}`, '--threads=2', `--time=${WORKLOAD_SECONDS}`, '--report-interval=0', 'oltp_write_only', 'run']);
    const [status] = await db.query<{ File: string; Position: string }[]>('SHOW MASTER STATUS');
    await until(async () => {
      const r = await measureChild({ command: process.execPath, args: [...CLI, '-c', configFile, 'list', 'segments', '--json'], env, stdout: 'capture' });
      const last = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { serverFile: string; endPos: number }).at(-1);
      return last !== undefined && last.serverFile === status!.File && last.endPos >= Number(status!.Position);
    }, 'the archive to catch up', 300_000);
    const at = new Date(Date.now() + 2000);
    await until(async () => Date.now() > at.getTime() + 1000, 'T to pass');
    const binlogs = (await readdir(db.binlogDir)).filter((f) => /\.\d{6}$/.test(f) && f >= startFile).sort().map((f) => join(db.binlogDir, f));
    const archiveBytes = await dirBytes(join(work, 'disk', 'segments'));

    // 1. single-table restore
    const restoreArgs = [...CLI, '-c', configFile, 'restore', 'table', 'sbtest.sbtest1', '--at', at.toISOString(), '--into', 'sbtest.restored1'];
    // BENCH_SHOW: print our restore's output with a timestamp per line (where the time goes)
    const ours = process.env['BENCH_SHOW']
      ? await measureChild({ command: 'bash', args: ['-c', `set -o pipefail; "$0" "$@" | while IFS= read -r l; do echo "$(date +%s.%N) $l"; done`, process.execPath, ...restoreArgs], env, stdout: 'capture' })
      : await measureChild({ command: process.execPath, args: restoreArgs, env, stdout: 'capture' });
    assertSucceeded('mysql-archiver restore table', ours);
    if (process.env['BENCH_SHOW']) console.log(ours.stdout);
    const scratch = await start('scratch', 2);
    const stopDatetime = at.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
    const runbook = await measureChild({
      command: 'bash',
      args: ['-c', `set -o pipefail; mariadb --no-defaults --socket=${scratch.socket} -uroot < ${fullDump} && mariadb-binlog --no-defaults --start-position=${startPos} --stop-datetime='${stopDatetime}' ${binlogs.join(' ')} | mariadb --no-defaults --socket=${scratch.socket} -uroot`],
      env: { ...process.env, TZ: 'UTC' },
    });
    assertSucceeded('manual runbook', runbook);
    const [a] = await db.query<{ Checksum: string }[]>('CHECKSUM TABLE sbtest.restored1');
    const [b] = await scratch.query<{ Checksum: string }[]>('CHECKSUM TABLE sbtest.sbtest1');
    if (String(a?.Checksum) !== String(b?.Checksum)) throw new Error(`the two restores differ: ours ${a?.Checksum}, runbook ${b?.Checksum}`);

    if (process.env['BENCH_SKIP_REPLAY']) {
      console.log(`single-table: runbook ${runbook.wallSeconds.toFixed(2)} s, ours ${ours.wallSeconds.toFixed(2)} s = ${formatRatio(runbook.wallSeconds, ours.wallSeconds)}, peak RSS ${formatMiB(ours.peakRssBytes)} MiB; archive ${formatSize(archiveBytes)}`);
      return;
    }
    // 2. replay throughput from the same state (the full dump) over the same range
    const theirsServer = await start('replay-theirs', 3);
    const oursServer = await start('replay-ours', 4);
    for (const s of [theirsServer, oursServer]) {
      const load = await measureChild({ command: 'bash', args: ['-c', `mariadb --no-defaults --socket=${s.socket} -uroot < ${fullDump}`], env: process.env });
      assertSucceeded('loading the full dump', load);
    }
    const theirsReplay = await measureChild({
      command: 'bash',
      args: ['-c', `set -o pipefail; mariadb-binlog --no-defaults --start-position=${startPos} --stop-datetime='${stopDatetime}' ${binlogs.join(' ')} | mariadb --no-defaults --socket=${theirsServer.socket} -uroot`],
      env: { ...process.env, TZ: 'UTC' },
    });
    assertSucceeded('mariadb-binlog | mariadb', theirsReplay);
    const oursReplay = await measureChild({
      command: process.execPath,
      args: ['scripts/bench/restore-replay-child.mjs'],
      env: { ...process.env, BENCH_PASSWORD: oursServer.rootPassword, BENCH_REPLAY: JSON.stringify({ archiveDir: join(work, 'disk'), file: startFile, position: startPos, at: at.toISOString(), host: oursServer.host, port: oursServer.port, out: join(work, 'replay.binlog') }) },
      stdout: 'capture',
    });
    assertSucceeded('our replay', oursReplay);
    const [c] = await theirsServer.query<{ Checksum: string }[]>('CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest8');
    const [d] = await oursServer.query<{ Checksum: string }[]>('CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest8');
    if (String(c?.Checksum) !== String(d?.Checksum)) throw new Error('the two replays differ');

    const row = (name: string, mm: Measurement, anchor: Measurement, bytes?: number) => [
      name, mm.wallSeconds.toFixed(2), bytes ? (bytes / mm.wallSeconds / 1e6).toFixed(1) : '', formatRatio(anchor.wallSeconds, mm.wallSeconds), formatMiB(mm.peakRssBytes),
    ];
    console.log(`\ndata: ${TABLES} x ${TABLE_ROWS} rows; dump ${dump.wallSeconds.toFixed(1)} s; binlog archived after the dump: ${formatSize(archiveBytes)} (${WORKLOAD_SECONDS} s of oltp_write_only)`);
    console.log('\nsingle-table restore of sbtest.sbtest1 as of T (results checked equal)');
    console.log(formatTable(['how', 'wall s', '', 'speed-up', 'peak RSS MiB'], [
      row('manual runbook: mariadb < full dump; mariadb-binlog | mariadb', runbook, runbook),
      row('mysql-archiver restore table', ours, runbook),
    ]));
    console.log('target: >= 10x');
    console.log('\nreplay of the same binlog range from the same state (results checked equal)');
    console.log(formatTable(['how', 'wall s', 'MB/s', 'ratio', 'peak RSS MiB'], [
      row('mariadb-binlog FILES | mariadb (anchor)', theirsReplay, theirsReplay, archiveBytes),
      row('mysql-archiver replay (verified segments)', oursReplay, theirsReplay, archiveBytes),
    ]));
    console.log('target: >= 1.0x');
  } finally {
    daemon?.kill('SIGTERM');
    if (daemon && daemon.exitCode === null) await new Promise((r) => daemon!.once('close', r));
    for (const s of servers) await s.shutdown().catch(() => undefined);
    if (process.env['BENCH_KEEP']) console.log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

async function until(fn: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

await main();
