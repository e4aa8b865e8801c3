import { loadCheckpoint } from '../binlog/checkpoint.js';
import { describeGap } from '../binlog/continuity.js';
import type { Config } from '../config/schema.js';
import type { DaemonStatus } from '../daemon/run-daemon.js';
import { readStatusFile, STATUS_STALE_MS } from './status-file.js';

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
  problems: string[];
}

export async function buildStatus(config: Config, now: number): Promise<StatusReport> {
  const doc = await readStatusFile<DaemonStatus>(config.archiver.stateDir);
  const checkpoint = await loadCheckpoint(config.archiver.stateDir);
  const running = doc !== undefined && doc.stoppedAt === undefined && now - Date.parse(doc.updatedAt) < STATUS_STALE_MS;
  const report: StatusReport = {
    daemon: { running, ...(doc ? { pid: doc.pid, updatedAt: doc.updatedAt, startedAt: doc.startedAt } : {}) },
    ...(doc ? { archiver: doc.archiver, spool: doc.spool, ...(doc.lastShipped ? { lastShipped: doc.lastShipped } : {}) } : {}),
    ...(checkpoint
      ? { checkpoint: { source: checkpoint.source, next: checkpoint.next, updatedAt: checkpoint.updatedAt, needsFullDump: checkpoint.needsFullDump === true } }
      : {}),
    problems: [],
  };
  const p = report.problems;
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
  for (const problem of r.problems) lines.push(`PROBLEM    ${problem}`);
  if (r.problems.length === 0) lines.push('ok         no problems');
  return lines;
}
