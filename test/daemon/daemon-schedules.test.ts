import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { loadSchedules } from '../../src/config/schedules.js';
import { runDaemon, type DaemonStatus } from '../../src/daemon/run-daemon.js';
import { listDumps } from '../../src/dump/index.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { readStatusFile } from '../../src/ops/status-file.js';
import { createDropboxClient, createDropboxStorage } from '../../src/storage/dropbox/dropbox-storage.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { resolveSecret } from '../../src/config/secrets.js';
import { startFakeDropbox, type FakeDropbox } from '../support/fake-dropbox.js';
import { cliInProcess } from '../support/in-process-cli.js';
import { ManualTimers } from '../support/manual-timers.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { waitFor } from '../support/wait.js';
import { writeTestConfig } from '../support/config-file.js';

/**
 * The daemon runs the dump tiers on their schedules (a simulated clock for the schedules only;
 * real dumps of a real MariaDB to a real local disk and the fake Dropbox): the monthly run meets a
 * Dropbox outage, fails only its own target, is retried and lands after the outage; the daily
 * tier is unaffected; status shows the last dump per tier and the next run.
 */

let db: MariadbServer;
let dbx: FakeDropbox;
let work: string;

beforeAll(async () => {
  db = await startMariadb({ serverId: 811, initSql: ['CREATE DATABASE shop', 'CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2))', 'INSERT INTO shop.orders SELECT seq, seq / 7 FROM shop.seq_1_to_300'] });
  dbx = await startFakeDropbox({ accessTokens: ['t'] });
  work = await mkdtemp(join(tmpdir(), 'daemon-sched-'));
  await writeTestConfig(work, db, 9811, {
    archiver: { segment: { maxSeconds: 2 }, spoolMaxBytes: '1GiB' },
    storages: {
      disk: { type: 'local', path: join(work, 'disk') },
      offsite: { type: 'dropbox', root: '/d', apiBaseUrl: dbx.baseUrl, auth: { accessToken: { env: 'T_DBX' } } },
    },
    log: { level: 'warn', format: 'json' },
  });
  await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk'], retention: { keep: 2 } }));
  await writeFile(join(work, 'schedules', 'monthly.yaml'), stringify({ tier: 'monthly', cron: '0 5 1 * *', targets: ['offsite'], retention: { keep: 12 } }));
}, 120_000);

afterAll(async () => {
  await dbx?.stop();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('scheduled dumps in the daemon', () => {
  it('runs each tier at its time; a Dropbox outage fails only the monthly target, which is retried and lands after it', { timeout: 180_000 }, async () => {
    const env = { ...process.env, T_DB: db.archiver.password, T_DBX: 't' };
    const config = await loadConfig(join(work, 'config.yaml'));
    const schedules = await loadSchedules(config.schedulesDir, config);
    const timers = new ManualTimers(new Date('2026-11-30T02:00:00Z'));
    const controller = new AbortController();
    const daemon = runDaemon(config, {
      logger: createSilentLogger(),
      signal: controller.signal,
      env,
      schedules,
      scheduleClock: timers.clock,
      scheduleTimers: timers,
      scheduleRetryDelaysMs: [3_600_000],
      statusEveryMs: 200,
    });
    const status = () => readStatusFile<DaemonStatus>(config.archiver.stateDir);
    const tier = async (name: string) => (await status())?.schedules?.find((s) => s.tier === name);
    await waitFor(async () => (await tier('daily'))?.nextRunAt === '2026-11-30T03:00:00.000Z', { what: 'the daemon to arm the schedules', timeoutMs: 30_000 });
    expect((await tier('monthly'))?.nextRunAt).toBe('2026-12-01T05:00:00.000Z');

    const disk = createLocalStorage({ path: join(work, 'disk') });
    const offsite = createDropboxStorage({ root: '/d', client: await createDropboxClient(config.storages['offsite'] as never, { env, resolveSecret }) });
    const runsSettled = async () => {
      await waitFor(async () => {
        const s = await status();
        return s?.schedules?.every((t) => !t.running) ? true : false;
      }, { what: 'dump runs to finish', timeoutMs: 60_000, intervalMs: 100 });
    };
    const settle = async () => {
      await new Promise((r) => setTimeout(r, 50));
      await runsSettled();
    };

    // the daily run at 03:00
    await timers.advanceTo(new Date('2026-11-30T03:00:00Z'), settle);
    await waitFor(async () => (await listDumps(disk, 'daily')).length === 1, { what: 'the daily dump', timeoutMs: 60_000 });

    // Dropbox is down at the monthly time: only the monthly target fails, and a retry is planned
    dbx.faults.status(() => true, 503, 100_000);
    await timers.advanceTo(new Date('2026-12-01T05:00:00Z'), settle);
    await waitFor(async () => (await tier('monthly'))?.retry?.targets.join() === 'offsite', { what: 'a planned retry of the monthly target', timeoutMs: 60_000 });
    const monthlyState = await tier('monthly');
    expect(monthlyState?.lastRun).toMatchObject({ reason: 'scheduled', ok: [], failed: ['offsite'] });
    expect(monthlyState?.retry?.at).toBe('2026-12-01T06:00:00.000Z');
    // the daily tier ran again at its own time, unaffected
    expect((await tier('daily'))?.lastRun).toMatchObject({ scheduledFor: '2026-12-01T03:00:00.000Z', ok: ['disk'], failed: [] });

    // the outage ends; the retry lands the monthly dump, verified, in Dropbox
    dbx.faults.clear();
    await timers.advanceTo(new Date('2026-12-01T06:00:00Z'), settle);
    await waitFor(async () => (await tier('monthly'))?.lastRun?.ok.join() === 'offsite', { what: 'the monthly retry to land', timeoutMs: 60_000 });
    const monthly = await listDumps(offsite, 'monthly');
    expect(monthly).toHaveLength(1);
    expect(monthly[0]?.startedAt).toBe('2026-12-01T06:00:00.000Z');
    expect((await tier('monthly'))?.retry).toBeUndefined();

    // status shows the last dump per tier and the next run
    const r = await cliInProcess(['--config', join(work, 'config.yaml'), 'status'], env);
    expect(r.stdout).toMatch(/^dump daily +next 2026-12-02T03:00:00\.000Z \(0 3 \* \* \* UTC\); last: disk 2026-12-01T03:00:00\.000Z$/m);
    expect(r.stdout).toMatch(/^dump monthly +next 2027-01-01T05:00:00\.000Z \(0 5 1 \* \* UTC\); last: offsite 2026-12-01T06:00:00\.000Z$/m);

    controller.abort();
    await daemon;
  });
});
