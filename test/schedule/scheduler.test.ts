import { describe, expect, it } from 'vitest';
import type { Schedule } from '../../src/config/schedules.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { cronCalendar } from '../../src/schedule/cron-calendar.js';
import { planDumpRetention, planSegmentPruning } from '../../src/schedule/retention-plan.js';
import { TierScheduler, type TierRunResult } from '../../src/schedule/tier-scheduler.js';
import { localParts } from '../../src/time/wall-clock.js';
import { ManualTimers } from '../support/manual-timers.js';

const DAY = 86_400_000;

function schedule(over: Partial<Schedule> = {}): Schedule {
  return { tier: 'daily', cron: '0 3 * * *', timezone: 'UTC', targets: ['local-disk'], retention: { keep: 7 }, verify: false, users: false, file: '/x/daily.yaml', ...over };
}

describe('cron calendar', () => {
  it.each([
    ['Europe/Berlin', '30 2 * * *'],
    ['America/New_York', '30 2 * * *'],
    ['Europe/London', '30 1 * * *'],
    ['Australia/Sydney', '30 2 * * *'],
  ])('%s "%s": exactly one run per local date across both daylight saving changes of 2026', (zone, cron) => {
    const runs = cronCalendar(cron, zone).between(new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
    const dates = runs.map((t) => {
      const p = localParts(t, zone);
      return `${p.year}-${p.month}-${p.day}`;
    });
    // 2026 local dates, each once; the first one or two may fall before Jan 1 local in UTC terms
    expect(new Set(dates).size).toBe(dates.length);
    expect(dates.length).toBeGreaterThanOrEqual(364);
    expect(dates.length).toBeLessThanOrEqual(366);
    // consecutive runs are 23, 24 or 25 hours apart: nothing skipped, nothing doubled
    for (let i = 1; i < runs.length; i++) {
      const gap = (runs[i]!.getTime() - runs[i - 1]!.getTime()) / 3_600_000;
      expect([23, 24, 25]).toContain(gap);
    }
  });

  it('places a nonexistent time after the spring change and a doubled time at its first occurrence', () => {
    const c = cronCalendar('30 2 * * *', 'Europe/Berlin');
    expect(c.between(new Date('2026-03-28T12:00:00Z'), new Date('2026-03-29T12:00:00Z')).map((d) => d.toISOString())).toEqual(['2026-03-29T01:30:00.000Z']);
    expect(c.between(new Date('2026-10-24T12:00:00Z'), new Date('2026-10-25T12:00:00Z')).map((d) => d.toISOString())).toEqual(['2026-10-25T00:30:00.000Z']);
  });

  it('next and previous, nicknames and six fields', () => {
    const weekly = cronCalendar('0 4 * * 0', 'UTC');
    expect(weekly.next(new Date('2026-11-29T04:00:00Z'))?.toISOString()).toBe('2026-12-06T04:00:00.000Z');
    expect(weekly.previous(new Date('2026-11-29T04:00:00Z'))?.toISOString()).toBe('2026-11-29T04:00:00.000Z');
    expect(cronCalendar('@monthly', 'UTC').next(new Date('2026-11-29T00:00:00Z'))?.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(cronCalendar('15 0 3 * * *', 'UTC').next(new Date('2026-11-29T00:00:00Z'))?.toISOString()).toBe('2026-11-29T03:00:15.000Z');
  });
});

describe('TierScheduler', () => {
  it('never overlaps two runs of a tier: a scheduled time during a long run is skipped and said so', async () => {
    const timers = new ManualTimers(new Date('2026-11-01T00:00:00Z'));
    const calls: Date[] = [];
    let release: (() => void) | undefined;
    const s = new TierScheduler({
      schedules: [schedule({ cron: '0 * * * *' })],
      clock: timers.clock,
      timers,
      logger: createSilentLogger(),
      lastRuns: async () => new Map([['local-disk', undefined]]),
      runTier: (_s, targets) => {
        calls.push(timers.clock());
        return new Promise<TierRunResult>((resolve) => (release = () => resolve({ ok: [...targets], failed: [] })));
      },
    });
    await s.start();
    const settle = () => new Promise<void>((r) => setImmediate(r));
    await timers.advanceTo(new Date('2026-11-01T01:00:00Z'), settle);
    expect(calls).toHaveLength(1);
    expect(s.states()[0]?.running).toBe(true);
    // the run takes more than two hours: 02:00 and 03:00 are skipped, not queued
    await timers.advanceTo(new Date('2026-11-01T03:30:00Z'), settle);
    expect(calls).toHaveLength(1);
    expect(s.states()[0]?.skipped).toBe(2);
    release?.();
    await s.idle();
    await timers.advanceTo(new Date('2026-11-01T04:00:00Z'), settle);
    expect(calls.map((d) => d.toISOString())).toEqual(['2026-11-01T01:00:00.000Z', '2026-11-01T04:00:00.000Z']);
    release?.();
    await s.stop();
  });

  it('runs different tiers one at a time', async () => {
    const timers = new ManualTimers(new Date('2026-11-01T00:00:00Z'));
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const s = new TierScheduler({
      schedules: [schedule({ tier: 'a', cron: '0 3 * * *' }), schedule({ tier: 'b', cron: '0 3 * * *' })],
      clock: timers.clock,
      timers,
      logger: createSilentLogger(),
      lastRuns: async () => new Map([['local-disk', undefined]]),
      runTier: (_s, targets) => {
        running++;
        most = Math.max(most, running);
        return new Promise<TierRunResult>((resolve) => releases.push(() => ((running--), resolve({ ok: [...targets], failed: [] }))));
      },
    });
    await s.start();
    const settle = () => new Promise<void>((r) => setImmediate(r));
    await timers.advanceTo(new Date('2026-11-01T03:00:00Z'), settle);
    expect(releases).toHaveLength(1);
    releases[0]?.();
    await settle();
    await settle();
    expect(releases).toHaveLength(2);
    releases[1]?.();
    await s.idle();
    expect(most).toBe(1);
    await s.stop();
  });

  it('a target whose last run cannot be read is run at start; a tier that never ran waits for its time', async () => {
    const timers = new ManualTimers(new Date('2026-11-01T12:00:00Z'));
    const calls: [string, readonly string[], string][] = [];
    const s = new TierScheduler({
      schedules: [schedule({ tier: 'never', targets: ['a'] }), schedule({ tier: 'unknown', targets: ['a', 'b'] })],
      clock: timers.clock,
      timers,
      logger: createSilentLogger(),
      lastRuns: async (sch) => (sch.tier === 'never' ? new Map([['a', undefined]]) : new Map<string, Date | null>([['a', new Date('2026-11-01T03:00:01Z')], ['b', null]])),
      runTier: async (sch, targets, reason) => {
        calls.push([sch.tier, targets, reason]);
        return { ok: [...targets], failed: [] };
      },
    });
    await s.start();
    await s.idle();
    expect(calls).toEqual([['unknown', ['b'], 'catch-up']]);
    expect(s.states().map((t) => t.nextRunAt)).toEqual(['2026-11-02T03:00:00.000Z', '2026-11-02T03:00:00.000Z']);
    await s.stop();
  });
});

describe('retention plan', () => {
  const dump = (day: number) => ({ dumpId: `d${day}`, prefix: `dumps/t/d${day}`, startedAt: new Date(Date.UTC(2026, 0, 1) + day * DAY).toISOString() });
  const now = new Date(Date.UTC(2026, 0, 1) + 100 * DAY);

  it('keeps the newest N and/or those younger than D, whichever keeps more', () => {
    const dumps = [1, 50, 90, 95, 99].map(dump);
    const keep = (rules: { keep?: number; maxAgeMs?: number }) => planDumpRetention(dumps, rules, now).filter((d) => d.keep).map((d) => d.dump.dumpId);
    expect(keep({ keep: 2 })).toEqual(['d99', 'd95']);
    expect(keep({ maxAgeMs: 20 * DAY })).toEqual(['d99', 'd95', 'd90']);
    expect(keep({ keep: 4, maxAgeMs: 20 * DAY })).toEqual(['d99', 'd95', 'd90', 'd50']);
  });

  it('never deletes the newest dump, even when every rule would', () => {
    const decisions = planDumpRetention([dump(1), dump(2)], { maxAgeMs: DAY }, now);
    expect(decisions.map((d) => [d.dump.dumpId, d.keep, d.reason])).toEqual([
      ['d2', true, 'newest dump'],
      ['d1', false, 'older than 1d'],
    ]);
  });

  it('prunes only segments older than the oldest kept dump (with a margin), never the newest, never without a dump', () => {
    const seg = (key: string, iso: string) => ({ key, lastEventTime: iso });
    const segments = [seg('s1', '2026-01-01T00:00:00Z'), seg('s2', '2026-01-01T22:30:00Z'), seg('s3', '2026-01-01T23:30:00Z'), seg('s4', '2026-01-02T05:00:00Z')];
    expect(planSegmentPruning(segments, new Date('2026-01-02T00:00:00Z'), 3_600_000).map((s) => s.key)).toEqual(['s1', 's2']);
    expect(planSegmentPruning(segments, undefined, 3_600_000)).toEqual([]);
    expect(planSegmentPruning(segments, new Date('2027-01-01T00:00:00Z'), 0).map((s) => s.key)).toEqual(['s1', 's2', 's3']);
  });
});
