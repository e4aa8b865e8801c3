/**
 * Dump benchmark, same server, same data (sysbench, 8 tables), same run:
 * 1. our dump (default codec, zstd level 1, into a local storage) vs `mariadb-dump --single-transaction | zstd -1`
 *    and vs `mydumper -t 2 --compress`; ours with gzip (the fallback codec) for comparison;
 * 2. the same dump vs `mydumper -t 2` uncompressed (our writer always compresses);
 * 3. load: our loader (verified, into a fresh database on a second server) vs `myloader -t 2` of the
 *    `mydumper --compress` dump; both keep the load out of the target's binlog (myloader's default,
 *    our skipBinlog) and both results are checked against the source with CHECKSUM TABLE;
 * 4. our dump's peak RSS on the full tables and on tables a quarter the size (flat as tables grow).
 * Every tool reaches the servers as root on the socket, so no password exists to leak; each runs in a
 * child process measured from outside (wall time, peak RSS). Run through scripts/bench/dump.sh.
 * BENCH_TABLE_ROWS (default 1,000,000) and BENCH_REPEAT (default 1; medians over the repeats) tune it.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startThrowawayMariadb, type ThrowawayMariadb } from '../../src/demo/throwaway-mariadb.js';
import { waitUntil } from '../../src/demo/wait-until.js';
import { dirBytes } from './lib/sysbench.js';
import { assertSucceeded, measureChild, type Measurement } from './lib/measure-child.js';
import { max, median } from './lib/stats.js';
import { formatMiB, formatSize, formatTable, MiB } from './lib/table.js';

const TABLES = 8;
const TABLE_ROWS = Number(process.env['BENCH_TABLE_ROWS'] ?? 1_000_000);
const SMALL_ROWS = Math.max(1, Math.floor(TABLE_ROWS / 4));
const REPEAT = Math.max(1, Number(process.env['BENCH_REPEAT'] ?? 1));
const SERVER_ARGS = ['--innodb-buffer-pool-size=3G', '--innodb-log-file-size=512M', '--sync-binlog=0'];

interface Run {
  m: Measurement;
  bytes: number;
}

interface DumpSummary {
  rows: number;
  sqlBytes: number;
  fileBytes: number;
  connections: number;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-dump-'));
  const servers: ThrowawayMariadb[] = [];
  const start = async (name: string, serverId: number) => {
    await mkdir(join(work, name));
    const s = await startThrowawayMariadb({ dir: join(work, name), serverId, extraArgs: SERVER_ARGS });
    servers.push(s);
    return s;
  };
  try {
    const [db, target] = await Promise.all([start('source', 1), start('target', 2)]);
    await db.query('CREATE DATABASE sbtest');
    await db.query('CREATE DATABASE sbsmall');
    console.log(`preparing ${TABLES} x ${TABLE_ROWS} rows (sbtest) and ${TABLES} x ${SMALL_ROWS} rows (sbsmall) with sysbench ...`);
    await sysbench(db, 'sbtest', TABLE_ROWS);
    await sysbench(db, 'sbsmall', SMALL_ROWS);
    // also warms the buffer pool, so no tool pays for the first read from disk
    const expected = await checksums(db, 'sbtest');
    await settle(db);

    const ours: Run[] = [];
    const oursGzip: Run[] = [];
    const oursSmall: Run[] = [];
    let smallSql = 0;
    const mdump: Run[] = [];
    const myc: Run[] = [];
    const myu: Run[] = [];
    let summary: DumpSummary | undefined;
    const dirs = { ours: join(work, 'ours'), gzip: join(work, 'ours-gzip'), small: join(work, 'ours-small'), mdump: join(work, 'mdump'), myc: join(work, 'mydumper-c'), myu: join(work, 'mydumper') };
    const steps: (() => Promise<void>)[] = [
      async () => {
        const o = await ourDump(db, work, dirs.ours, 'sbtest');
        summary = o.summary;
        if (summary.rows !== TABLES * TABLE_ROWS) throw new Error(`our dump has ${summary.rows} rows, expected ${TABLES * TABLE_ROWS}`);
        ours.push(o.run);
      },
      async () => void mdump.push(await mariadbDump(db, dirs.mdump)),
      async () => void myc.push(await mydumper(db, dirs.myc, true)),
      async () => void myu.push(await mydumper(db, dirs.myu, false)),
      async () => void oursGzip.push((await ourDump(db, work, dirs.gzip, 'sbtest', 'gzip')).run),
      async () => {
        const small = await ourDump(db, work, dirs.small, 'sbsmall');
        oursSmall.push(small.run);
        smallSql = small.summary.sqlBytes;
      },
    ];
    for (let r = 1; r <= REPEAT; r++) {
      console.log(`dumps, round ${r}/${REPEAT} ...`);
      // each round starts with the next tool, so none always runs first (or last)
      for (let i = 0; i < steps.length; i++) await steps[(i + r - 1) % steps.length]!();
    }
    await rm(dirs.mdump, { recursive: true, force: true });
    await rm(dirs.myu, { recursive: true, force: true });
    await rm(dirs.small, { recursive: true, force: true });
    await rm(dirs.gzip, { recursive: true, force: true });

    const loadOurs: Run[] = [];
    const loadUnverified: Run[] = [];
    const loadTheirs: Run[] = [];
    for (let r = 1; r <= REPEAT; r++) {
      console.log(`loads, round ${r}/${REPEAT} ...`);
      // alternate who goes first: the second load meets the purge of the first one's dropped tables
      const order = r % 2 === 1 ? ['ours', 'theirs', 'unverified'] : ['unverified', 'theirs', 'ours'];
      for (const who of order) {
        const dbName = `load_${who}`;
        await target.query(`DROP DATABASE IF EXISTS ${dbName}`);
        await settle(target);
        const run = who === 'theirs' ? await myloader(target, dirs.myc, dbName) : await ourLoad(target, work, dirs.ours, dbName, who === 'ours');
        (who === 'ours' ? loadOurs : who === 'theirs' ? loadTheirs : loadUnverified).push(run);
        await assertSameChecksums(expected, await checksums(target, dbName), `${who} load`);
        await target.query(`DROP DATABASE ${dbName}`);
      }
    }

    const sqlBytes = summary!.sqlBytes;
    const wall = (runs: Run[]) => median(runs.map((x) => x.m.wallSeconds))!;
    const rss = (runs: Run[]) => max(runs.map((x) => x.m.peakRssBytes))!;
    const cpu = (runs: Run[]) => median(runs.map((x) => x.m.cpuSeconds ?? Number.NaN));
    const row = (name: string, runs: Run[], anchor: Run[] | undefined, target: string) => [
      name,
      formatSize(runs.at(-1)!.bytes),
      wall(runs).toFixed(2),
      (sqlBytes / 1e6 / wall(runs)).toFixed(1),
      cpu(runs)?.toFixed(1),
      formatMiB(rss(runs)),
      anchor ? `${(wall(runs) / wall(anchor)).toFixed(2)}x` : '',
      target,
    ];
    const columns = (bytes: string) => ['tool', bytes, 'wall s', 'MB/s', 'CPU s', 'peak RSS MiB', 'ours faster by', 'target'];
    const repeats = REPEAT > 1 ? `, median of ${REPEAT}` : '';
    console.log(`\ndump of ${TABLES} x ${TABLE_ROWS} sysbench rows: ${formatSize(sqlBytes)} of SQL (MB/s = our SQL bytes / wall s${repeats})`);
    console.log(
      formatTable(columns('output'), [
        row(`mysql-archiver dump (zstd -1, ${summary!.connections} connections)`, ours, undefined, ''),
        row('mariadb-dump --single-transaction | zstd -1', mdump, ours, '>= 1.00x'),
        row('mydumper -t 2 --compress', myc, ours, '>= 3.00x'),
        row('mydumper -t 2 (uncompressed; ours always compresses)', myu, ours, ''),
        row('mysql-archiver dump, compression gzip (fallback without zstd)', oursGzip, ours, ''),
      ]),
    );
    console.log(`\nload into a fresh database on a second server, checked equal to the source (CHECKSUM TABLE)${repeats}`);
    console.log(
      formatTable(columns('dump read'), [
        row('mysql-archiver load (2 connections, verified, skipBinlog)', loadOurs, undefined, ''),
        row('myloader -t 2 (of the mydumper --compress dump)', loadTheirs, loadOurs, '>= 1.00x'),
        row('mysql-archiver load without the checksum pass (verify: false; files still sha256-checked)', loadUnverified, undefined, ''),
      ]),
    );
    console.log('\npeak RSS of our dump as the tables grow (target <= 200 MiB, flat)');
    console.log(
      formatTable(['rows per table', 'SQL', 'wall s', 'peak RSS MiB'], [
        [SMALL_ROWS, formatSize(smallSql), wall(oursSmall).toFixed(2), formatMiB(rss(oursSmall))],
        [TABLE_ROWS, formatSize(sqlBytes), wall(ours).toFixed(2), formatMiB(rss(ours))],
      ]),
    );
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      [
        `\nvs mariadb-dump | zstd -1: ${(wall(mdump) / wall(ours)).toFixed(2)}x (>= 1.00x ${verdict(wall(mdump) >= wall(ours))})`,
        `vs mydumper --compress: ${(wall(myc) / wall(ours)).toFixed(2)}x (>= 3.00x ${verdict(wall(myc) >= 3 * wall(ours))})`,
        `load vs myloader: ${(wall(loadTheirs) / wall(loadOurs)).toFixed(2)}x (>= 1.00x ${verdict(wall(loadTheirs) >= wall(loadOurs))}); without the checksum pass ${(wall(loadTheirs) / wall(loadUnverified)).toFixed(2)}x`,
        `peak RSS: ${formatMiB(rss(ours))} MiB (<= 200 MiB ${verdict(rss(ours) <= 200 * MiB)})`,
      ].join('\n'),
    );
  } finally {
    await Promise.all(servers.map((s) => s.shutdown().catch(() => undefined)));
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Waits until InnoDB flushed every dirty page (the sysbench prepare, the previous load): the
 * background flush otherwise slows whoever runs next, and most of all a tool that fsyncs its files.
 */
async function settle(db: ThrowawayMariadb): Promise<void> {
  await db.query('SET GLOBAL innodb_max_dirty_pages_pct = 0');
  try {
    await waitUntil(
      async () => {
        const [row] = await db.query<{ Value: string }[]>("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
        return Number(row?.Value ?? 0) <= 16;
      },
      { what: 'InnoDB to flush its dirty pages', timeoutMs: 600_000, intervalMs: 500 },
    );
  } finally {
    await db.query('SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT');
  }
}

async function ourDump(db: ThrowawayMariadb, work: string, outDir: string, database: string, compression?: 'gzip'): Promise<{ run: Run; summary: DumpSummary }> {
  await rm(outDir, { recursive: true, force: true });
  const settings = { mode: 'dump', socket: db.socket, outDir, tmpDir: work, databases: [database], compression };
  const m = await measureChild({ command: process.execPath, args: ['scripts/bench/dump-child.mjs'], env: { ...process.env, BENCH_DUMP: JSON.stringify(settings) } });
  assertSucceeded(`mysql-archiver dump (${database})`, m);
  const summary = JSON.parse(m.stdout) as DumpSummary;
  return { run: { m, bytes: summary.fileBytes }, summary };
}

async function ourLoad(target: ThrowawayMariadb, work: string, outDir: string, renameTo: string, verify: boolean): Promise<Run> {
  // myloader keeps its load out of the binlog unless told otherwise: ours does the same, for the same work
  const settings = { mode: 'load', socket: target.socket, outDir, tmpDir: work, renameTo, skipBinlog: true, verify };
  const m = await measureChild({ command: process.execPath, args: ['scripts/bench/dump-child.mjs'], env: { ...process.env, BENCH_DUMP: JSON.stringify(settings) } });
  assertSucceeded('mysql-archiver load', m);
  const r = JSON.parse(m.stdout) as { rows: number; verified: boolean; bytesRead: number };
  if (r.verified !== verify || (verify && r.rows !== TABLES * TABLE_ROWS)) throw new Error(`our load: ${m.stdout}`);
  return { m, bytes: r.bytesRead };
}

async function mariadbDump(db: ThrowawayMariadb, dir: string): Promise<Run> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  const out = join(dir, 'sbtest.sql.zst');
  const m = await measureChild({
    command: 'bash',
    args: ['-o', 'pipefail', '-c', 'mariadb-dump --no-defaults --socket="$B_SOCKET" --user=root --single-transaction --databases sbtest | zstd -1 -q -f -o "$B_OUT"'],
    env: { ...process.env, B_SOCKET: db.socket, B_OUT: out },
  });
  assertSucceeded('mariadb-dump | zstd', m);
  return { m, bytes: (await stat(out)).size };
}

async function mydumper(db: ThrowawayMariadb, dir: string, compress: boolean): Promise<Run> {
  await rm(dir, { recursive: true, force: true });
  const m = await measureChild({
    command: 'mydumper',
    args: [`--socket=${db.socket}`, '--user=root', '--threads=2', '--database=sbtest', `--outputdir=${dir}`, ...(compress ? ['--compress'] : [])],
  });
  assertSucceeded(`mydumper${compress ? ' --compress' : ''}`, m);
  return { m, bytes: await dirBytes(dir) };
}

async function myloader(target: ThrowawayMariadb, dir: string, into: string): Promise<Run> {
  const m = await measureChild({
    command: 'myloader',
    args: [`--socket=${target.socket}`, '--user=root', '--threads=2', `--directory=${dir}`, '--source-db=sbtest', `--database=${into}`],
  });
  assertSucceeded('myloader', m);
  return { m, bytes: await dirBytes(dir) };
}

async function checksums(db: ThrowawayMariadb, database: string): Promise<Map<string, string>> {
  const names = Array.from({ length: TABLES }, (_, i) => `${database}.sbtest${i + 1}`);
  const rows = await db.query<{ Table: string; Checksum: string | null }[]>(`CHECKSUM TABLE ${names.join(', ')}`);
  return new Map(rows.map((r) => [r.Table.slice(r.Table.indexOf('.') + 1), String(r.Checksum)]));
}

async function assertSameChecksums(expected: Map<string, string>, actual: Map<string, string>, what: string): Promise<void> {
  for (const [table, sum] of expected) {
    if (actual.get(table) !== sum) throw new Error(`${what}: ${table} has CHECKSUM ${actual.get(table)}, the source ${sum}`);
  }
}

function sysbench(db: ThrowawayMariadb, database: string, rows: number): Promise<void> {
  const args = ['--db-driver=mysql', `--mysql-socket=${db.socket}`, '--mysql-user=root', `--mysql-db=${database}`, `--tables=${TABLES}`, `--table-size=${rows}`, '--threads=2', 'oltp_read_only', 'prepare'];
  return new Promise((resolve, reject) => {
    const p = spawn('sysbench', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`sysbench prepare exited ${code}`))));
  });
}


await main();
