/** Wall-clock times in IANA zones, with daylight saving handled the same way everywhere. */

/**
 * The instant a zone-less wall-clock time names in `timeZone`. In an autumn overlap the time
 * exists twice and the earlier instant is taken; in a spring gap it does not exist and it is read
 * with the offset before the change (so 02:30 becomes 03:30 summer time). The plan echoes the
 * result in UTC and local time, so the operator sees which one.
 */
export function wallClockIn(wallClock: string, timeZone: string): Date {
  const asUtc = new Date(`${wallClock}Z`).getTime();
  const format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const localOf = (instant: number): number => {
    const parts = Object.fromEntries(format.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
    return Date.UTC(Number(parts['year']), Number(parts['month']) - 1, Number(parts['day']), Number(parts['hour']), Number(parts['minute']), Number(parts['second']));
  };
  const offsetAt = (instant: number): number => localOf(instant) - Math.floor(instant / 1000) * 1000;
  const offsets = [offsetAt(asUtc - 86_400_000), offsetAt(asUtc), offsetAt(asUtc + 86_400_000)];
  const whole = Math.floor(asUtc / 1000) * 1000;
  const fits = offsets.map((o) => asUtc - o).filter((instant) => localOf(instant) === whole);
  if (fits.length > 0) return new Date(Math.min(...fits));
  return new Date(asUtc - (offsets[0] as number));
}

const partsFormat = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of `instant` in `timeZone` (month 1-12, weekday 0 = Sunday). */
export function localParts(instant: Date, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  let format = partsFormat.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    partsFormat.set(timeZone, format);
  }
  const p = Object.fromEntries(format.formatToParts(instant).map((x) => [x.type, x.value]));
  return { year: Number(p['year']), month: Number(p['month']), day: Number(p['day']), hour: Number(p['hour']), minute: Number(p['minute']), second: Number(p['second']) };
}

/** "2026-11-25 15:03:00 CET": an instant as people in `timeZone` (default: this machine's) read it. */
export function formatInZone(at: Date, timeZone?: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    ...(timeZone ? { timeZone } : {}),
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
  })
    .format(at)
    .replace(',', '');
}
