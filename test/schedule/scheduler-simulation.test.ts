/**
 * The default tiers (schedules/*.yaml) driven by an injected clock: 420 simulated days with the
 * real scheduler, the real retention and dumps recorded in storage the way the daemon records
 * them (a dump.json, a file, a manifest record). The daemon is down for three days once, and the
 * Dropbox target is down on one monthly run. Expected sets are computed here from the calendar,
 * independently of the retention code.
 */
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSchedules, type Schedule } from '../../src/config/schedules.js';
import type { Config } from '../../src/config/schema.js';
import { listDumps } from '../../src/dump/index.js';
import { createManifest } from '../../src/manifest/manifest.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { cronCalendar } from '../../src/schedule/cron-calendar.js';
import { lastDumpRuns } from '../../src/schedule/last-runs.js';
import { runRetention } from '../../src/schedule/retention.js';
import { TierScheduler, type TierRunResult } from '../../src/schedule/tier-scheduler.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { sha256 as sha256Hex } from '../support/bytes.js';
import { makeSandbox, ROOT, validConfig, type Sandbox } from '../config/fixtures.js';
import { ManualTimers } from '../support/manual-timers.js';
import { loadConfig } from '../../src/config/load-config.js';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

const DAY = 86_400_000;
const START = new Date('2026-01-01T00:00:00Z');
const END = new Date(START.getTime() + 420 * DAY);
const DOWN_FROM = new Date('2026-04-10T12:00:00Z');
const DOWN_UNTIL = new Date('2026-04-13T12:00:00Z');
/** the monthly run of June 1st 05:00 finds Dropbox down until 09:30 */
const DROPBOX_DOWN = { from: new Date('2026-06-01T00:00:00Z'), until: new Date('2026-06-01T09:30:00Z') };

let sandbox: Sandbox;
let config: Config;
let schedules: Schedule[];

beforeAll(async () => {
  sandbox = await makeSandbox();
  await writeFile(sandbox.configFile, stringify(validConfig(sandbox)));
  config = await loadConfig(sandbox.configFile);
  schedules = await loadSchedules(join(ROOT, 'schedules'), config);
});
afterAll(() => sandbox?.cleanup());

/** Writes what a finished dump leaves in a storage: a data file, dump.json, the manifest record. */
async function writeDump(storage: Storage, tier: string, startedAt: Date): Promise<void> {
  const dumpId = `${startedAt.toISOString().replace(/[-:.]/g, '')}-sim`;
  const prefix = `dumps/${tier}/${dumpId}`;
  const data = Buffer.from(`-- ${tier} ${dumpId}\n`);
  await storage.put(`${prefix}/app.t.00001.sql.gz`, () => Readable.from([data]));
  const manifest = {
    format: 1, tool: 'mysql-archiver', dumpId, tier, prefix,
    startedAt: startedAt.toISOString(), finishedAt: startedAt.toISOString(), mode: 'single',
    snapshot: { coordinates: { file: 'mysql-bin.000001', position: 4 }, lockHeldMs: null, connections: 1 },
    server: { version: 'sim', serverId: '1', hostname: null }, compression: 'gzip', chunkBytes: 1, checksumAlgorithm: 'rowsum-mm3-v2',
    session: { timeZone: '+00:00', sqlMode: '', charset: 'utf8mb4' }, databases: [], tables: [],
    files: [{ key: 'app.t.00001.sql.gz', size: data.length, sha256: sha256Hex(data) }], warnings: [],
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const put = await storage.put(`${prefix}/dump.json`, () => Readable.from([body]));
  await createManifest(storage, { clock: () => startedAt }).recordObject('dump', put, { tier, dumpId, startedAt: startedAt.toISOString() });
}

describe('400+ simulated days of the default tiers', () => {
  it('keep exactly the expected daily, weekly and monthly sets; a missed run is caught up once; a Dropbox outage fails only the monthly target, which lands after it', async () => {
    const timers = new ManualTimers(START);
    const storages = new Map<string, Storage>(['local-disk', 's3-main', 'dropbox-offsite'].map((n) => [n, createMemoryStorage(n)]));
    const open = async (name: string) => storages.get(name) as Storage;
    const runs: { tier: string; target: string; at: Date; reason: string; ok: boolean }[] = [];
    const logger = createSilentLogger();

    const runTier = async (schedule: Schedule, targets: readonly string[], reason: string): Promise<TierRunResult> => {
      const ok: string[] = [];
      const failed: string[] = [];
      const at = timers.clock();
      for (const target of targets) {
        const down = target === 'dropbox-offsite' && at >= DROPBOX_DOWN.from && at < DROPBOX_DOWN.until;
        runs.push({ tier: schedule.tier, target, at, reason, ok: !down });
        if (down) {
          failed.push(target);
          continue;
        }
        await writeDump(storages.get(target) as Storage, schedule.tier, at);
        ok.push(target);
      }
      const report = await runRetention(config, schedules, { logger, env: {}, dryRun: false, clock: timers.clock, openStorage: open });
      expect(report.errors).toEqual([]);
      return { ok, failed };
    };

    const startScheduler = async () => {
      const s = new TierScheduler({
        schedules,
        clock: timers.clock,
        timers,
        logger,
        lastRuns: (schedule) => lastDumpRuns(schedule, open, logger),
        runTier,
        retryDelaysMs: [3_600_000, 2 * 3_600_000],
      });
      await s.start();
      return s;
    };

    let scheduler = await startScheduler();
    const settle = async () => {
      await new Promise((r) => setImmediate(r));
      await scheduler.idle();
    };
    await settle();
    expect(runs).toEqual([]); // nothing ever ran: the first runs wait for their times
    await timers.advanceTo(DOWN_FROM, settle);
    await scheduler.stop();

    // the daemon is down for three days; a new one reads the last runs from storage
    timers.jumpTo(DOWN_UNTIL);
    const before = runs.length;
    scheduler = await startScheduler();
    await settle();
    const catchUp = runs.slice(before);
    // April 11 and 12 (a Sunday) were missed: one catch-up run each for daily and weekly, not three
    expect(catchUp).toEqual([
      { tier: 'daily', target: 'local-disk', at: DOWN_UNTIL, reason: 'catch-up', ok: true },
      { tier: 'weekly', target: 's3-main', at: DOWN_UNTIL, reason: 'catch-up', ok: true },
    ]);
    expect(new Date('2026-04-12T00:00:00Z').getUTCDay()).toBe(0);

    await timers.advanceTo(END, settle);
    await scheduler.stop();

    // the Dropbox outage: the monthly run failed, was retried alone, and landed once after the outage
    const june = runs.filter((r) => r.tier === 'monthly' && r.at >= DROPBOX_DOWN.from && r.at < new Date('2026-06-02T00:00:00Z'));
    expect(june.map((r) => [r.at.toISOString(), r.reason, r.ok])).toEqual([
      ['2026-06-01T05:00:00.000Z', 'scheduled', false],
      ['2026-06-01T06:00:00.000Z', 'retry', false],
      ['2026-06-01T08:00:00.000Z', 'retry', false],
      ['2026-06-01T10:00:00.000Z', 'retry', true],
    ]);
    // ...and nothing else failed or ran twice
    expect(runs.filter((r) => !r.ok).every((r) => r.tier === 'monthly')).toBe(true);
    const key = (r: { tier: string; at: Date }) => `${r.tier}@${r.at.toISOString()}`;
    expect(new Set(runs.filter((r) => r.ok).map(key)).size).toBe(runs.filter((r) => r.ok).length);

    // expected sets, from the calendar
    const occurrences = (tier: string) => {
      const s = schedules.find((x) => x.tier === tier) as Schedule;
      return cronCalendar(s.cron, s.timezone).between(START, END);
    };
    const withCatchUp = (tier: string) => {
      const times = occurrences(tier).filter((t) => t < DOWN_FROM || t >= DOWN_UNTIL);
      times.push(DOWN_UNTIL);
      return times.sort((a, b) => a.getTime() - b.getTime());
    };
    const expectedDaily = withCatchUp('daily').slice(-7).map((d) => d.toISOString());
    const expectedWeekly = withCatchUp('weekly').slice(-5).map((d) => d.toISOString());
    const monthly = occurrences('monthly').map((t) => (t.toISOString() === '2026-06-01T05:00:00.000Z' ? new Date('2026-06-01T10:00:00.000Z') : t));
    const expectedMonthly = monthly
      .filter((t, i) => i >= monthly.length - 12 || END.getTime() - t.getTime() < 400 * DAY)
      .map((d) => d.toISOString());
    expect(monthly.length).toBe(14);
    // February 2026 is kept only by maxAge (389 days old); January 2026 by neither rule
    expect(expectedMonthly.length).toBe(13);

    const kept = async (target: string, tier: string) => (await listDumps(storages.get(target) as Storage, tier)).map((d) => d.startedAt);
    expect(await kept('local-disk', 'daily')).toEqual(expectedDaily);
    expect(await kept('s3-main', 'weekly')).toEqual(expectedWeekly);
    expect(await kept('dropbox-offsite', 'monthly')).toEqual(expectedMonthly);

    // deleted dumps leave no file behind, and each deletion is an event in that storage's manifest
    const local = storages.get('local-disk') as Storage & { objects: Map<string, Buffer> };
    const dumpFiles = [...local.objects.keys()].filter((k) => k.startsWith('dumps/'));
    expect(dumpFiles).toHaveLength(7 * 2);
    const records = [...local.objects.keys()].filter((k) => k.startsWith('manifest/dumps/'));
    expect(records).toHaveLength(7);
    expect([...local.objects.keys()].some((k) => k.startsWith('manifest/events/retention/'))).toBe(true);
  }, 120_000);
});
