import { describe, expect, it } from 'vitest';
import { parseRestorePoint, restoreInstant, wallClockIn } from '../../src/cli/args.js';

describe('restore times', () => {
  it('reads a zone-less time in the configured zone, and a zoned one as written', () => {
    const local = parseRestorePoint('2026-11-25 14:03:00');
    const zoned = parseRestorePoint('2026-11-25T14:03:00+01:00');
    if (local.kind !== 'time' || zoned.kind !== 'time') throw new Error('expected times');
    expect(restoreInstant(local, 'UTC').toISOString()).toBe('2026-11-25T14:03:00.000Z');
    expect(restoreInstant(local, 'Europe/Berlin').toISOString()).toBe('2026-11-25T13:03:00.000Z');
    expect(restoreInstant(local, 'America/New_York').toISOString()).toBe('2026-11-25T19:03:00.000Z');
    expect(restoreInstant(zoned, 'America/New_York').toISOString()).toBe('2026-11-25T13:03:00.000Z');
  });

  it('keeps fractions of a second and handles both daylight saving changes', () => {
    expect(wallClockIn('2026-07-01T14:03:00.250', 'Europe/Berlin').toISOString()).toBe('2026-07-01T12:03:00.250Z');
    // autumn: 02:30 happens twice; the earlier (summer time) instant is taken
    expect(wallClockIn('2026-10-25T02:30:00', 'Europe/Berlin').toISOString()).toBe('2026-10-25T00:30:00.000Z');
    // spring: 02:30 does not exist; read with the offset before the change (= 03:30 summer time)
    expect(wallClockIn('2026-03-29T02:30:00', 'Europe/Berlin').toISOString()).toBe('2026-03-29T01:30:00.000Z');
  });
});
