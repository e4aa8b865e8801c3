/**
 * Which dumps of one tier on one target to keep, and which binlog segments are no longer needed,
 * as pure functions of what is stored and the clock: `retention --dry-run` prints exactly what the
 * real run does, and the tests simulate years of schedules against the same code.
 */
import type { ScheduleRetention } from '../config/schedules.js';

export interface RetainedDump {
  readonly dumpId: string;
  readonly prefix: string;
  /** when the snapshot was taken (ISO 8601) */
  readonly startedAt: string;
}

export interface DumpDecision<D extends RetainedDump> {
  readonly dump: D;
  readonly keep: boolean;
  /** why: "newest 7", "younger than 30d", "newest dump", or why it may go */
  readonly reason: string;
}

/**
 * A dump is kept while any rule wants it: among the newest `keep`, younger than `maxAgeMs`, or the
 * newest of all (a tier is never left without a dump, whatever the rules say). Everything else
 * may be deleted.
 */
export function planDumpRetention<D extends RetainedDump>(dumps: readonly D[], rules: ScheduleRetention, now: Date): DumpDecision<D>[] {
  const newestFirst = [...dumps].sort((a, b) => (a.startedAt > b.startedAt ? -1 : a.startedAt < b.startedAt ? 1 : a.dumpId > b.dumpId ? -1 : 1));
  return newestFirst.map((dump, index) => {
    const ageMs = now.getTime() - Date.parse(dump.startedAt);
    if (index === 0) return { dump, keep: true, reason: 'newest dump' };
    if (rules.keep !== undefined && index < rules.keep) return { dump, keep: true, reason: `newest ${rules.keep}` };
    if (rules.maxAgeMs !== undefined && ageMs < rules.maxAgeMs) return { dump, keep: true, reason: `younger than ${formatDays(rules.maxAgeMs)}` };
    const why = [rules.keep !== undefined ? `not among the newest ${rules.keep}` : '', rules.maxAgeMs !== undefined ? `older than ${formatDays(rules.maxAgeMs)}` : '']
      .filter(Boolean)
      .join(' and ');
    return { dump, keep: false, reason: why };
  });
}

export interface RetainedSegment {
  readonly key: string;
  /** the segment's last event (ISO 8601, second resolution, the server's clock) */
  readonly lastEventTime: string;
}

/**
 * Segments that no kept dump needs: every moment a restore can still reach starts from a kept
 * dump and replays the binlog from that dump's coordinates on, so a segment whose last event is
 * older than the oldest kept dump (by `marginMs`, for clock skew between this host and the
 * server) is unreachable. Without any kept dump nothing is pruned, and the newest segment is
 * always kept.
 */
export function planSegmentPruning<S extends RetainedSegment>(segments: readonly S[], oldestKeptDumpStart: Date | undefined, marginMs: number): S[] {
  if (!oldestKeptDumpStart || segments.length === 0) return [];
  const cutoff = oldestKeptDumpStart.getTime() - marginMs;
  const newest = segments.reduce((a, b) => (Date.parse(b.lastEventTime) > Date.parse(a.lastEventTime) ? b : a));
  return segments.filter((s) => s !== newest && Date.parse(s.lastEventTime) < cutoff);
}

function formatDays(ms: number): string {
  return ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 1000)}s`;
}
