import { loadCheckpoint } from '../binlog/checkpoint.js';
import { describeGap } from '../binlog/continuity.js';
import type { Config } from '../config/schema.js';
import type { DaemonStatus } from '../daemon/run-daemon.js';
import type { Schedule } from '../config/schedules.js';
import { cronCalendar } from '../schedule/cron-calendar.js';
import type { TierState } from '../schedule/tier-scheduler.js';
import { readStatusFile, STATUS_STALE_MS } from './status-file.js';
import { readLastDrill, type DrillResult } from '../restore/drill.js';

/** Reads when each target of a tier last got a dump (undefined: never, null: unknown). */
export type LastRunsReader = (schedule: Schedule) => Promise<Map<string, Date | undefined | null>>;

export interface DumpTierStatus {
  tier: string;
  cron: string;
  timezone: string;
  nextRunAt?: string;
  running: boolean;
  /** per target: ISO time of the last complete dump, null when never, 'unknown' when unreadable */
  lastDump: Record<string, string | null>;
  lastRun?: TierState['lastRun'];
  retry?: TierState['retry'];
}

/**
 * `mysql-archiver status`: what the daemon last wrote about itself plus the durable checkpoint,
 * readable by a person (a few lines, problems first) or as one JSON document for monitoring.
 */
export interface StatusReport {
  daemon: { running: boolean; pid?: number; updatedAt?: string; startedAt?: string };
  archiver?: DaemonStatus['archiver'];
  spool?: DaemonStatus['spool'];
  lastShipped?: DaemonStatus['lastShipped'];
  checkpoint?: { source: string; next: { file: string; position: number }; updatedAt: string; needsFullDump: boolean };
  dumps: DumpTierStatus[];
  /** the last restore drill (`verify`), if one ran */
  drill?: DrillResult & { ageSeconds: number };
  problems: string[];
}

export async function buildStatus(config: Config, now: number, schedules: readonly Schedule[] = [], lastRuns?: LastRunsReader): Promise<StatusReport> {
  const doc = await readStatusFile<DaemonStatus>(config.archiver.stateDir);
  const checkpoint = await loadCheckpoint(config.archiver.stateDir);
  const running = doc !== undefined && doc.stoppedAt === undefined && now - Date.parse(doc.updatedAt) < STATUS_STALE_MS;
  const report: StatusReport = {
    daemon: { running, ...(doc ? { pid: doc.pid, updatedAt: doc.updatedAt, startedAt: doc.startedAt } : {}) },
    ...(doc ? { archiver: doc.archiver, spool: doc.spool, ...(doc.lastShipped ? { lastShipped: doc.lastShipped } : {}) } : {}),
    ...(checkpoint
      ? { checkpoint: { source: checkpoint.source, next: checkpoint.next, updatedAt: checkpoint.updatedAt, needsFullDump: checkpoint.needsFullDump === true } }
      : {}),
    dumps: [],
    problems: [],
  };
  const p = report.problems;
  const drill = await readLastDrill(config.archiver.stateDir);
  if (drill) {
    report.drill = { ...drill, ageSeconds: Math.round((now - Date.parse(drill.finishedAt)) / 1000) };
    if (!drill.ok) p.push(`the last restore drill FAILED at ${drill.finishedAt}: ${drill.error ?? 'unknown error'}`);
    else if (schedules.some((s) => s.verify) && now - Date.parse(drill.finishedAt) > 8 * 86_400_000) p.push(`the last restore drill passed ${drill.finishedAt}, more than 8 days ago; run \`mysql-archiver verify\``);
  }
  report.dumps = await dumpStatus(schedules, running ? doc?.schedules : undefined, now, lastRuns);
  for (const d of report.dumps) {
    const calendar = cronCalendar(d.cron, d.timezone);
    const previous = calendar.previous(new Date(now));
    const before = previous ? calendar.previous(new Date(previous.getTime() - 1)) : undefined;
    for (const [target, at] of Object.entries(d.lastDump)) {
      // one scheduled run may be in progress or retried: alarm when two were missed
      if (at !== null && at !== 'unknown' && before && Date.parse(at) < before.getTime()) {
        p.push(`tier ${d.tier}: the last dump to ${target} is from ${at}; runs scheduled since then did not land there (see the daemon's log; \`mysql-archiver dump --tier ${d.tier}\` runs one now)`);
      }
    }
    if (d.retry) p.push(`tier ${d.tier}: ${d.retry.targets.join(', ')} failed; retry ${d.retry.attempt} at ${d.retry.at}`);
  }
  if (!doc) p.push('the daemon has never run with this configuration (no status file in archiver.stateDir)');
  else if (!running) p.push(doc.stoppedAt ? `the daemon is not running: it stopped at ${doc.stoppedAt}` : `the daemon is not running: its last status is from ${doc.updatedAt}`);
  if (doc?.archiver && running && !doc.archiver.connected) p.push(`not connected to the source${doc.archiver.lastError ? `: ${doc.archiver.lastError.message}` : ''}`);
  if (doc?.spool.full) p.push('the spool is full: new segments are refused until uploads catch up (nothing is dropped; check the archive storage)');
  const clash = doc?.archiver.serverIdClash;
  if (running && clash && now - clash.at < 10 * 60_000) {
    p.push(`another replica or archiver uses serverId ${config.source.serverId} (${clash.count} time(s), last at ${new Date(clash.at).toISOString()}): the server keeps only one of them connected; give each a unique source.serverId`);
  }
  for (const gap of doc?.archiver.gaps ?? []) p.push(describeGap(gap));
  if (checkpoint?.needsFullDump || doc?.archiver.needsFullDump) p.push('a full dump is needed: the binlog archive has a gap, so moments before it can only be restored from older dumps');
  return report;
}

async function dumpStatus(schedules: readonly Schedule[], states: TierState[] | undefined, now: number, lastRuns?: LastRunsReader): Promise<DumpTierStatus[]> {
  const out: DumpTierStatus[] = [];
  for (const schedule of schedules) {
    const state = states?.find((s) => s.tier === schedule.tier);
    const next = state?.nextRunAt ?? cronCalendar(schedule.cron, schedule.timezone).next(new Date(now))?.toISOString();
    const lastDump: Record<string, string | null> = {};
    if (state) {
      for (const t of schedule.targets) lastDump[t] = state.lastSuccess[t] ?? null;
    } else if (lastRuns) {
      const runs = await lastRuns(schedule).catch(() => new Map<string, Date | undefined | null>(schedule.targets.map((t) => [t, null])));
      for (const t of schedule.targets) {
        const at = runs.get(t);
        lastDump[t] = at === null ? 'unknown' : at ? at.toISOString() : null;
      }
    } else {
      for (const t of schedule.targets) lastDump[t] = 'unknown';
    }
    out.push({
      tier: schedule.tier,
      cron: schedule.cron,
      timezone: schedule.timezone,
      ...(next ? { nextRunAt: next } : {}),
      running: state?.running ?? false,
      lastDump,
      ...(state?.lastRun ? { lastRun: state.lastRun } : {}),
      ...(state?.retry ? { retry: state.retry } : {}),
    });
  }
  return out;
}

export function formatStatus(r: StatusReport): string[] {
  const lines: string[] = [];
  lines.push(`daemon     ${r.daemon.running ? `running (pid ${r.daemon.pid}, since ${r.daemon.startedAt})` : 'NOT RUNNING'}`);
  const a = r.archiver;
  if (a) {
    lines.push(`source     ${a.connected ? 'connected' : 'disconnected'}${a.source ? `, archiving as ${a.source}` : ''}${a.reconnects ? `, ${a.reconnects} reconnect(s)` : ''}`);
    if (a.server) lines.push(`server at  ${a.server.file}:${a.server.position}`);
    if (a.archived) lines.push(`archived   ${a.archived.file}:${a.archived.position}${a.lagBytes !== undefined ? ` (${a.lagBytes} bytes, ${Math.round(a.lagSeconds ?? 0)} s behind)` : ''}`);
    if (a.lastSealed) lines.push(`last seal  ${a.lastSealed.name} (${a.lastSealed.size} bytes) at ${new Date(a.lastSealed.at).toISOString()}`);
  } else if (r.checkpoint) {
    lines.push(`archived   ${r.checkpoint.next.file}:${r.checkpoint.next.position} (checkpoint of ${r.checkpoint.updatedAt})`);
  }
  if (r.spool) lines.push(`spool      ${r.spool.items} item(s), ${r.spool.bytes} bytes waiting${r.spool.full ? ' (FULL)' : ''}`);
  if (r.lastShipped) lines.push(`shipped    ${r.lastShipped.key} at ${new Date(r.lastShipped.at).toISOString()}`);
  for (const d of r.dumps) {
    const last = Object.entries(d.lastDump).map(([t, at]) => `${t} ${at === null ? 'never' : at}`).join(', ');
    lines.push(`dump ${d.tier.padEnd(8)} ${d.running ? 'RUNNING, ' : ''}next ${d.nextRunAt ?? 'never'} (${d.cron} ${d.timezone}); last: ${last}`);
  }
  if (r.drill) lines.push(`drill      ${r.drill.ok ? 'passed' : 'FAILED'} at ${r.drill.finishedAt} (${Math.round(r.drill.ageSeconds / 3600)} h ago)${r.drill.comparedWith ? `, dump ${r.drill.base?.dumpId} + binlog = dump ${r.drill.comparedWith.dumpId}` : ''}`);
  else lines.push('drill      never run (mysql-archiver verify)');
  for (const problem of r.problems) lines.push(`PROBLEM    ${problem}`);
  if (r.problems.length === 0) lines.push('ok         no problems');
  return lines;
}
