/**
 * When a schedule fires, as a pure function of its cron expression, zone and a time range, so the
 * daemon, catch-up, `status` and the tests (with an injected clock) all agree.
 *
 * node-cron parses the expression and decides which days match (its own rules, so a schedule
 * means here what it means to node-cron). The times of day are then placed in the zone here, with
 * one rule for daylight saving: every scheduled wall-clock time fires exactly once. A time that
 * happens twice (autumn) fires at its first occurrence; a time that does not exist (spring) fires
 * at the same distance after the change (02:30 becomes 03:30). Neither skipped nor doubled.
 */
import { createTask, parse, type ScheduledTask } from 'node-cron';
import { localParts, wallClockIn } from '../time/wall-clock.js';

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const DAY_MS = 86_400_000;

export interface CronCalendar {
  readonly expression: string;
  readonly timeZone: string;
  /** fire times t with after < t <= until, in order */
  between(after: Date, until: Date): Date[];
  /** the first fire time after `after` (searches up to ~5 years ahead) */
  next(after: Date): Date | undefined;
  /** the last fire time at or before `at` (searches up to ~5 years back) */
  previous(at: Date): Date | undefined;
}

export function cronCalendar(expression: string, timeZone: string): CronCalendar {
  const resolved = NICKNAMES[expression.trim().toLowerCase()] ?? expression.trim();
  const fields = parse(resolved);
  const raw = resolved.split(/\s+/);
  const six = raw.length === 5 ? ['0', ...raw] : raw;
  // day fields only, checked in UTC on the calendar date: no zone or DST in the way
  const dayMatcher: ScheduledTask = createTask(`0 0 0 ${six[3]} ${six[4]} ${six[5]}`, () => undefined, { timezone: 'UTC' });
  const times: [number, number, number][] = [];
  for (const h of fields.hour) for (const m of fields.minute) for (const s of fields.second) times.push([h, m, s]);
  times.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');

  /** fire times on one local calendar date */
  const onDate = (y: number, mo: number, d: number): Date[] => {
    if (!dayMatcher.match(new Date(Date.UTC(y, mo - 1, d)))) return [];
    const date = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
    return times.map(([h, m, s]) => wallClockIn(`${date}T${pad(h)}:${pad(m)}:${pad(s)}`, timeZone));
  };

  const between = (after: Date, until: Date): Date[] => {
    const out = new Set<number>();
    // local dates can be a day off the UTC ones either way: scan one extra day on each side
    const start = localParts(new Date(after.getTime() - DAY_MS), timeZone);
    const end = until.getTime() + DAY_MS;
    for (let day = Date.UTC(start.year, start.month - 1, start.day); day <= end + DAY_MS; day += DAY_MS) {
      const d = new Date(day);
      for (const t of onDate(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate())) {
        if (t.getTime() > after.getTime() && t.getTime() <= until.getTime()) out.add(t.getTime());
      }
    }
    return [...out].sort((a, b) => a - b).map((t) => new Date(t));
  };

  return {
    expression,
    timeZone,
    between,
    next(after) {
      for (let span = 2; span <= 2048; span *= 2) {
        const found = between(after, new Date(after.getTime() + span * DAY_MS))[0];
        if (found) return found;
      }
      return undefined;
    },
    previous(at) {
      for (let span = 2; span <= 2048; span *= 2) {
        const found = between(new Date(at.getTime() - span * DAY_MS), at).at(-1);
        if (found) return found;
      }
      return undefined;
    },
  };
}
