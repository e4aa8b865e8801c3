import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load-config.js';
import { loadSchedules } from '../config/schedules.js';
import { ArchiverError, UsageError, describeError } from '../errors.js';
import { runCheck } from '../ops/check.js';
import { withMinimumLevel, type Logger } from '../ops/logger.js';
import { registerSecret } from '../ops/redact.js';
import { startArchiver, stopArchiver, verifyArchive, waitForArchive } from './demo-archive.js';
import {
  DEMO_BUCKET,
  DEMO_PASSWORD_ENV,
  DEMO_ROOT_PASSWORD_ENV,
  DEMO_S3_KEY_ID_ENV,
  DEMO_S3_SECRET_ENV,
  demoLayout,
  writeDemoConfig,
} from './demo-config.js';
import type { DemoState } from './demo-state.js';
import { formatSummary } from './demo-summary.js';
import { generateWorkload } from './demo-workload.js';
import { S3RVER_CREDENTIALS, startLocalS3, type LocalS3, type LocalS3Options } from './local-s3.js';
import { runSteps, type Step } from './run-steps.js';
import { runTierDump } from '../schedule/run-tier-dump.js';
import { runDrill } from '../restore/drill.js';
import { restoreTableFromArchive } from '../restore/archive/restore-table.js';
import { configuredOpener } from '../restore/archive/dump-candidates.js';
import { targetLogin } from '../restore/target-login.js';
import { waitUntil } from './wait-until.js';
import { startThrowawayMariadb, type ThrowawayMariadb, type ThrowawayMariadbOptions } from './throwaway-mariadb.js';

export interface RunDemoOptions {
  /** default: a new directory under os.tmpdir(); an existing one must be empty */
  workDir?: string;
  /** keep the work dir (config, spool, manifest, local S3 files, server files) after the run */
  keep?: boolean;
  out: (line: string) => void;
  logger: Logger;
  signal: AbortSignal;
  /** the caller's environment; the demo adds its own secrets to a copy, never to process.env */
  env: NodeJS.ProcessEnv;
  /** seams for tests: the real launchers by default */
  startMariadb?: (opts: ThrowawayMariadbOptions, signal?: AbortSignal) => Promise<ThrowawayMariadb>;
  startS3?: (opts: LocalS3Options) => Promise<LocalS3>;
  now?: () => number;
}

export interface DemoResult {
  readonly workDir: string;
  readonly kept: boolean;
  readonly objects: DemoState['archived'];
}

/**
 * `mysql-archiver demo`: the main job on embedded defaults, for real, on this machine. A throwaway
 * MariaDB and a local S3 are started, a config is written and loaded like a user's, `check` runs,
 * a workload is generated and its binlog goes through the spool to S3 and into the manifest, which
 * is then verified deep. Everything started is stopped even on failure or Ctrl-C; the work dir
 * stays only with `keep`.
 */
export async function runDemo(opts: RunDemoOptions): Promise<DemoResult> {
  const now = opts.now ?? (() => performance.now());
  const started = now();
  const { workDir, created } = await prepareWorkDir(opts.workDir);
  const state: DemoState = {
    layout: demoLayout(workDir),
    // a chosen password is honoured so a caller (or a test) can check it never leaks
    env: {
      ...opts.env,
      [DEMO_S3_KEY_ID_ENV]: S3RVER_CREDENTIALS.accessKeyId,
      [DEMO_S3_SECRET_ENV]: S3RVER_CREDENTIALS.secretAccessKey,
    },
    logger: opts.logger,
    signal: opts.signal,
    checkLines: [],
    archived: [],
    dumps: [],
    closers: [],
  };
  opts.out(`mysql-archiver demo: the main job on this machine, nothing outside it needed`);
  opts.out(`work dir: ${workDir}${opts.keep ? ' (kept after the run)' : ' (removed after the run; --keep keeps it)'}`);
  let failed = true;
  try {
    const timings = await runSteps(demoSteps(opts), state, { out: opts.out, signal: opts.signal, now });
    failed = false;
    for (const line of formatSummary(state, timings, { keep: opts.keep === true, totalMs: now() - started })) opts.out(line);
    return { workDir, kept: opts.keep === true, objects: state.archived };
  } finally {
    await teardown(state, { ...opts, created, failed });
  }
}

function demoSteps(opts: RunDemoOptions): Step<DemoState>[] {
  const startMariadb = opts.startMariadb ?? startThrowawayMariadb;
  const startS3 = opts.startS3 ?? startLocalS3;
  return [
    {
      name: 'start a throwaway MariaDB',
      async run(s) {
        await mkdir(s.layout.mariadbDir, { recursive: true });
        const chosen = s.env[DEMO_PASSWORD_ENV];
        const db = await startMariadb(
          { dir: s.layout.mariadbDir, env: s.env, ...(chosen ? { archiverPassword: chosen } : {}) },
          s.signal,
        );
        s.db = db;
        s.closers.push({ what: 'stopped MariaDB', close: () => db.shutdown() });
        s.env[DEMO_PASSWORD_ENV] = db.archiver.password;
        registerSecret(db.archiver.password);
        registerSecret(db.rootPassword);
        s.env[DEMO_ROOT_PASSWORD_ENV] = db.rootPassword;
        const [row] = await db.query<{ v: string }[]>('SELECT VERSION() AS v');
        s.serverVersion = row?.v ?? 'unknown';
        return [`mariadbd ${s.serverVersion} on ${db.host}:${db.port} (pid ${db.pid ?? '?'}), files in ${db.dir}`];
      },
    },
    {
      name: 'start a local S3 (s3rver)',
      async run(s) {
        const s3 = await startS3({ dir: s.layout.s3Dir, bucket: DEMO_BUCKET });
        s.s3 = s3;
        s.closers.push({ what: 'stopped the local S3', close: () => s3.close() });
        return [`${s3.endpoint}, bucket ${s3.bucket}, objects kept as files in ${s3.dir}`];
      },
    },
    {
      name: 'write and load the configuration',
      async run(s) {
        const db = required(s.db, 'MariaDB');
        const s3 = required(s.s3, 'local S3');
        const files = await writeDemoConfig({
          layout: s.layout,
          db: { host: db.host, port: db.port, user: db.archiver.user },
          s3: { endpoint: s3.endpoint, bucket: s3.bucket },
        });
        s.config = await loadConfig(s.layout.configFile, { env: s.env });
        s.schedules = await loadSchedules(s.config.schedulesDir, s.config);
        const storages = Object.keys(s.config.storages);
        return [
          `${files.length} files: ${files.map((f) => f.slice(s.layout.workDir.length + 1)).join(', ')}`,
          `storages ${storages.join(', ')}; schedules ${s.schedules.map((t) => t.tier).join(', ')}; archiver → ${s.config.archiver.storage}`,
        ];
      },
    },
    {
      name: 'check (preflight: storages, server settings, privileges)',
      async run(s) {
        const config = required(s.config, 'configuration');
        const lines: string[] = [];
        const result = await runCheck(config, { logger: s.logger, signal: s.signal, env: s.env, out: (l) => lines.push(l) });
        s.checkLines = lines;
        if (!result.ok) {
          throw new ArchiverError(`check failed: ${lines.filter((l) => l.startsWith('FAIL')).map((l) => l.replace(/^FAIL\s+/, '')).join('; ')}`, {
            hint: 'The demo builds its own setup, so this points at a problem on this machine or in this build; run again with --log-level debug and report the output.',
          });
        }
        return lines.flatMap((l) => l.split('\n'));
      },
    },
    {
      name: 'start the binlog archiver (mysql-archiver run)',
      run: (s) => startArchiver(s),
    },
    {
      name: 'generate a workload',
      async run(s) {
        const workload = await generateWorkload(required(s.db, 'MariaDB'));
        s.workload = workload;
        return [
          `database ${workload.database}: ${workload.tables.map((t) => `${t.name} ${t.rows} rows`).join(', ')}`,
          `FLUSH BINARY LOGS closed ${workload.closedBinlogs.map((b) => `${b.name} (${b.size} bytes)`).join(', ')}; now writing ${workload.currentBinlog}`,
        ];
      },
    },
    {
      name: 'take a dump of every tier (mysql-archiver dump --tier ...)',
      async run(s) {
        const config = required(s.config, 'configuration');
        const lines: string[] = [];
        for (const schedule of required(s.schedules, 'schedules')) {
          // the step's lines say what happened; the dump's own info lines would repeat it
          const outcomes = await runTierDump(config, schedule, { logger: withMinimumLevel(s.logger, 'warn'), signal: s.signal, env: s.env });
          for (const o of outcomes) {
            if (!o.ok || !o.manifest) throw new ArchiverError(`dump of tier ${schedule.tier} to ${o.target} failed: ${o.error ?? 'unknown error'}`);
            const m = o.manifest;
            const rows = m.tables.reduce((n, t) => n + t.rows, 0);
            const bytes = m.files.reduce((n, f) => n + f.size, 0);
            s.dumps.push({ tier: schedule.tier, target: o.target, prefix: m.prefix });
            lines.push(`${schedule.tier} → ${o.target}: ${m.prefix} (${m.tables.length} tables, ${rows} rows, ${m.files.length} files, ${bytes} bytes, snapshot at ${m.snapshot.coordinates ? `${m.snapshot.coordinates.file}:${m.snapshot.coordinates.position}` : 'unknown position'}), every file verified`);
          }
        }
        return lines;
      },
    },
    {
      name: 'an accident at T: DELETE FROM demo.orders',
      async run(s) {
        const db = required(s.db, 'MariaDB');
        // the dumps end a clear second before T, and T starts a second of its own
        const settled = Date.now() + 1100;
        await waitUntil(() => Date.now() >= settled, { timeoutMs: 5000, intervalMs: 20, what: 'a second after the dumps', signal: s.signal });
        const boundary = (Math.floor(Date.now() / 1000) + 1) * 1000 + 50;
        await waitUntil(() => Date.now() >= boundary, { timeoutMs: 5000, intervalMs: 20, what: 'the next second', signal: s.signal });
        const [before] = await db.query<{ Checksum: string }[]>('CHECKSUM TABLE demo.orders');
        const [count] = await db.query<{ n: number }[]>('SELECT COUNT(*) AS n FROM demo.orders');
        const at = new Date();
        await db.query('DELETE FROM demo.orders');
        s.accident = { at, rows: Number(count?.n), checksum: String(before?.Checksum) };
        return [`${s.accident.rows} rows deleted at ${at.toISOString()}; CHECKSUM TABLE before: ${s.accident.checksum}`];
      },
    },
    {
      name: 'wait until every byte is archived (sealed, spooled, uploaded, verified, in the manifest)',
      run: (s) => waitForArchive(s),
    },
    {
      name: 'stop the archiver (SIGTERM path: seal, checkpoint)',
      run: (s) => stopArchiver(s),
    },
    {
      name: 'verify the archive deep (re-read every object, rebuild the binlog files)',
      run: (s) => verifyArchive(s),
    },
    {
      name: 'restore drill (mysql-archiver verify)',
      async run(s) {
        const lines: string[] = [];
        const r = await runDrill(required(s.config, 'configuration'), required(s.schedules, 'schedules'), { logger: withMinimumLevel(s.logger, 'warn'), env: s.env, signal: s.signal, onProgress: (l) => lines.push(l) });
        if (!r.ok) throw new ArchiverError(`the restore drill failed: ${r.error}`);
        lines.push(`passed: dump ${r.base?.dumpId} restored${r.comparedWith ? `, binlog replayed to dump ${r.comparedWith.dumpId}, all ${r.tables} tables equal to its checksums` : ''} in ${(r.durationMs / 1000).toFixed(1)} s`);
        return lines;
      },
    },
    {
      name: 'on-call restore: mysql-archiver restore table demo.orders --at "T minus 1 s"',
      async run(s) {
        const config = required(s.config, 'configuration');
        const accident = required(s.accident, 'accident');
        const db = required(s.db, 'MariaDB');
        const lines: string[] = [];
        const at = new Date(accident.at.getTime() - 1000);
        const r = await restoreTableFromArchive({
          table: { db: 'demo', name: 'orders' },
          stop: { kind: 'time', at },
          dryRun: false,
          timeZone: config.restore.timezone,
          schedules: required(s.schedules, 'schedules'),
          open: configuredOpener(config, s.env),
          archiveStorage: config.archiver.storage,
          target: await targetLogin(config, s.env),
          logger: withMinimumLevel(s.logger, 'warn'),
          signal: s.signal,
          onProgress: (l) => lines.push(l),
        });
        const restored = String(r.delivered).replace(/^table /, '');
        const [after] = await db.query<{ Checksum: string }[]>(`CHECKSUM TABLE ${restored}`);
        if (r.rows !== accident.rows || String(after?.Checksum) !== accident.checksum) {
          throw new ArchiverError(`the restored table differs from demo.orders before the accident: ${r.rows} rows (expected ${accident.rows}), checksum ${after?.Checksum} (expected ${accident.checksum})`);
        }
        lines.push(`${r.rows} rows back in ${restored}, CHECKSUM TABLE equal to demo.orders just before the DELETE; the live table was not touched`);
        return lines;
      },
    },
  ];
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the demo step needs the ${what}, which an earlier step did not provide`);
  return value;
}

async function prepareWorkDir(requested: string | undefined): Promise<{ workDir: string; created: boolean }> {
  if (!requested) return { workDir: await mkdtemp(join(tmpdir(), 'mysql-archiver-demo-')), created: true };
  const workDir = resolve(requested);
  const entries = await readdir(workDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new UsageError(`--work-dir ${workDir}: ${describeError(error)}`, { hint: 'Pass a directory this user can create and write.' });
  });
  if (entries === undefined) {
    await mkdir(workDir, { recursive: true });
    return { workDir, created: true };
  }
  if (entries.length > 0) {
    throw new UsageError(`--work-dir ${workDir} is not empty`, {
      hint: 'Pass a new or empty directory: the demo removes its work dir at the end (unless --keep) and never mixes with existing files.',
    });
  }
  return { workDir, created: false };
}

/** Stops whatever was started, newest first; a failure here is reported, never hides the run's own error. */
async function teardown(state: DemoState, opts: RunDemoOptions & { created: boolean; failed: boolean }): Promise<void> {
  const done: string[] = [];
  for (const closer of [...state.closers].reverse()) {
    try {
      await closer.close();
      done.push(closer.what);
    } catch (error) {
      opts.out(`cleanup: ${closer.what.replace(/^stopped/, 'stopping')} failed: ${describeError(error)}`);
    }
  }
  const { workDir } = state.layout;
  if (opts.keep) {
    done.push(`kept ${workDir}`);
  } else {
    try {
      if (opts.created) await rm(workDir, { recursive: true, force: true });
      else for (const name of await readdir(workDir)) await rm(join(workDir, name), { recursive: true, force: true });
      done.push(`removed ${workDir}`);
    } catch (error) {
      opts.out(`cleanup: removing ${workDir} failed: ${describeError(error)}`);
    }
  }
  if (done.length) opts.out(`cleanup: ${done.join(', ')}${opts.failed ? ' (after a failure)' : ''}`);
}
