/**
 * `restore pitr --at TIME --target HOST:PORT`: disaster recovery into a fresh server. Refuses a
 * target that already holds any of the databases it would create (exit 2, nothing changed).
 */
import type { RowDataPacket } from 'mysql2/promise';
import { connectSource } from '../../db/connect.js';
import { UsageError } from '../../errors.js';
import { formatInZone } from '../../time/wall-clock.js';
import { describeStop } from './restore-table.js';
import { planReplay, replayToServer, type ReplayToServerOptions, type ReplayToServerResult } from './replay-to-server.js';

const SYSTEM = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/** `onPlan` gets the plan before anything is checked or created (not on a dry run: the result carries it). */
export async function restorePitr(o: ReplayToServerOptions & { timeZone: string; onPlan?: (lines: readonly string[]) => void }): Promise<ReplayToServerResult & { lines: string[] }> {
  const { plans } = await planReplay(o);
  const plan = plans[0]!;
  const dbs = o.database ? [o.database] : plan.dump.dump.databases;
  const at = o.stop.kind === 'time' ? `${o.stop.at.toISOString()} UTC (${formatInZone(o.stop.at, o.timeZone)})` : describeStop(o.stop);
  const s = plan.segments;
  const seconds = Math.ceil(plan.dump.dump.bytes / 20e6 + s.bytes / 60e6 + 5);
  const lines = [
    `restore:     ${o.database ?? 'all databases'} as of ${at}`,
    `into:        ${o.target.host}:${o.target.port} (must not hold ${dbs.join(', ')})`,
    `dump:        ${plan.dump.dump.dumpId} on ${plan.dump.target} (taken ${plan.dump.dump.startedAt}, ${plan.dump.dump.tables} tables, ${plan.dump.dump.bytes} bytes, binlog ${plan.dump.dump.coordinates.file}:${plan.dump.dump.coordinates.position})`,
    `binlog:      ${s.segments.length} segment(s) of ${s.source}, ${s.bytes} bytes; newest archived event ${s.lastEventTime ?? 'none'}`,
    `estimate:    about ${seconds} s`,
  ];
  if (o.dryRun) return { plan, skippedDumps: [], lines };
  o.onPlan?.(lines);
  const conn = await connectSource({ ...o.target, serverId: 0 });
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SHOW DATABASES');
    const present = rows.map((r) => String(r['Database'])).filter((d) => !SYSTEM.has(d) && dbs.includes(d));
    if (present.length > 0) {
      throw new UsageError(`${o.target.host}:${o.target.port} already has ${present.join(', ')}; a full restore goes into a fresh server`, {
        hint: 'Point --target at a new, empty server (or drop those databases there yourself if that is really meant); the live server is never the target of a full restore.',
      });
    }
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
  const result = await replayToServer(o);
  return { ...result, lines };
}
