/**
 * N connections on one consistent snapshot, with the binlog coordinates of that snapshot.
 *
 * - `backup-stage` (MariaDB ≥ 10.4, RELOAD): BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT blocks
 *   commits and DDL (not reads) while the coordinates are read and every worker starts
 *   `START TRANSACTION WITH CONSISTENT SNAPSHOT`; then BACKUP STAGE END. Writes to MyISAM/Aria
 *   tables wait too (tested), so non-transactional tables read inside `whileLocked` are point-in-time.
 * - `ftwrl` (RELOAD): the same under FLUSH TABLES WITH READ LOCK / UNLOCK TABLES (blocks every write).
 * - `single`: no lock, one connection. MariaDB binds the binlog position to the snapshot
 *   (`SHOW STATUS LIKE 'binlog_snapshot_%'`), BINLOG_GTID_POS() turns it into a GTID position.
 * - `rds`: the same as `single` (RDS allows no FTWRL). On a server without binlog_snapshot_*
 *   (MySQL), the position is read right after the snapshot started and marked `exact: false`.
 *
 * In lock modes every worker's own binlog_snapshot_* is checked against the coordinates read under
 * the lock (MariaDB): a disagreement fails the dump instead of recording a wrong position.
 */
import { DumpSnapshotError, describeError, throwIfAborted } from '../errors.js';
import { openSession, rows, text, type DbSession, type DumpConnectionOptions } from './connection.js';
import type { BinlogCoordinates, DumpLogger, SnapshotMode } from './types.js';

export interface SnapshotOptions {
  source: DumpConnectionOptions;
  mode: SnapshotMode;
  /** worker connections wanted; `single` and `rds` always use one */
  workers: number;
  /** seconds the lock statement may wait for running statements/DDL (lock_wait_timeout), default 60 */
  lockWaitTimeoutSec?: number;
  logger: DumpLogger;
  signal?: AbortSignal;
  /** runs while the lock is held (lock modes only), with the workers already in their snapshot */
  whileLocked?: (workers: readonly DbSession[]) => Promise<void>;
}

export interface ServerInfo {
  version: string;
  serverId: string;
  hostname: string | null;
  mariadb: boolean;
}

export interface Snapshot {
  readonly mode: SnapshotMode;
  readonly workers: readonly DbSession[];
  readonly coordinates: BinlogCoordinates | null;
  readonly lockHeldMs: number | null;
  readonly server: ServerInfo;
  readonly warnings: string[];
  /** ends the transactions and closes every connection */
  close(): Promise<void>;
}

export function isLockMode(mode: SnapshotMode): boolean {
  return mode === 'backup-stage' || mode === 'ftwrl';
}

export async function openSnapshot(o: SnapshotOptions): Promise<Snapshot> {
  const count = isLockMode(o.mode) ? Math.max(1, o.workers) : 1;
  const opened: DbSession[] = [];
  const closeAll = () => Promise.all(opened.map((s) => s.end())).then(() => undefined);
  try {
    const workers = await Promise.all(
      Array.from({ length: count }, async () => {
        const s = await openSession(o.source);
        opened.push(s);
        await s.q.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        return s;
      }),
    );
    throwIfAborted(o.signal);
    const server = await serverInfo(workers[0]!);
    const warnings: string[] = [];
    let coordinates: BinlogCoordinates | null;
    let lockHeldMs: number | null = null;
    if (isLockMode(o.mode)) {
      const timing = { heldMs: 0 };
      coordinates = await lockedSnapshot(o, workers, server, opened, timing);
      lockHeldMs = timing.heldMs;
    } else {
      coordinates = await lockFreeSnapshot(workers[0]!, server, warnings);
    }
    if (!coordinates) warnings.push('the server has no binary log: the dump records no binlog coordinates and cannot anchor a point-in-time restore');
    o.logger.info('snapshot taken', { mode: o.mode, connections: count, file: coordinates?.file, position: coordinates?.position, gtid: coordinates?.gtid, lockHeldMs });
    return {
      mode: o.mode,
      workers,
      coordinates,
      lockHeldMs,
      server,
      warnings,
      async close() {
        await Promise.all(workers.map((w) => w.q.query('COMMIT').catch(() => undefined)));
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function serverInfo(s: DbSession): Promise<ServerInfo> {
  const [r] = await rows(s, 'SELECT @@version AS v, @@server_id AS id, @@hostname AS h, @@version_comment AS c');
  const version = text(r?.['v']);
  return {
    version,
    serverId: text(r?.['id']),
    hostname: r?.['h'] == null ? null : text(r['h']),
    mariadb: /mariadb/i.test(version) || /mariadb/i.test(text(r?.['c'])),
  };
}

async function masterStatus(s: DbSession): Promise<{ file: string; position: number } | null> {
  let r: Record<string, unknown>[];
  try {
    r = await rows(s, 'SHOW MASTER STATUS');
  } catch {
    r = await rows(s, 'SHOW BINARY LOG STATUS'); // MySQL ≥ 8.4
  }
  const row = r[0];
  if (!row || !row['File']) return null;
  return { file: text(row['File']), position: Number(text(row['Position'])) };
}

async function gtidNow(s: DbSession, server: ServerInfo): Promise<string | null> {
  const sql = server.mariadb ? 'SELECT @@gtid_binlog_pos AS g' : 'SELECT @@global.gtid_executed AS g';
  const [r] = await rows(s, sql).catch(() => [] as Record<string, unknown>[]);
  const g = text(r?.['g']).trim();
  return g === '' ? null : g;
}

async function snapshotStatus(s: DbSession): Promise<{ file: string; position: number } | null> {
  const r = await rows<{ Variable_name: unknown; Value: unknown }>(s, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'");
  const map = new Map(r.map((x) => [text(x.Variable_name).toLowerCase(), text(x.Value)]));
  const file = map.get('binlog_snapshot_file');
  const pos = map.get('binlog_snapshot_position');
  if (!file || pos === undefined) return null;
  return { file, position: Number(pos) };
}

async function lockedSnapshot(
  o: SnapshotOptions,
  workers: DbSession[],
  server: ServerInfo,
  opened: DbSession[],
  timing: { heldMs: number },
): Promise<BinlogCoordinates | null> {
  const ctl = await openSession(o.source);
  opened.push(ctl);
  await ctl.q.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.floor(o.lockWaitTimeoutSec ?? 60))}`);
  const lock = o.mode === 'backup-stage' ? ['BACKUP STAGE START', 'BACKUP STAGE BLOCK_COMMIT'] : ['FLUSH TABLES WITH READ LOCK'];
  const unlock = o.mode === 'backup-stage' ? 'BACKUP STAGE END' : 'UNLOCK TABLES';
  const t0 = performance.now();
  let locked = false;
  try {
    for (const sql of lock) {
      try {
        await ctl.q.query(sql);
      } catch (error) {
        throw new DumpSnapshotError(`cannot take the snapshot lock (${sql}): ${describeError(error)}`, {
          cause: error,
          hint:
            o.mode === 'backup-stage'
              ? 'Grant RELOAD to the dump user, or use mode ftwrl (MySQL) or single (no lock).'
              : 'Grant RELOAD to the dump user, or use mode single (no lock; on RDS use mode rds).',
        });
      }
      locked = true;
    }
    const status = await masterStatus(ctl);
    const gtid = status ? await gtidNow(ctl, server) : null;
    await Promise.all(workers.map((w) => w.q.query('START TRANSACTION WITH CONSISTENT SNAPSHOT')));
    if (status && server.mariadb) {
      const seen = await Promise.all(workers.map(snapshotStatus));
      for (const [i, s] of seen.entries()) {
        if (s && (s.file !== status.file || s.position !== status.position) && !(await onlyMarkersBetween(ctl, status, s))) {
          throw new DumpSnapshotError(
            `snapshot connection ${i + 1} sees binlog ${s.file}:${s.position}, the lock saw ${status.file}:${status.position}`,
            { hint: 'Something committed while the lock was held; this should not happen: report it, and use mode ftwrl meanwhile.' },
          );
        }
      }
    }
    throwIfAborted(o.signal);
    if (o.whileLocked) await o.whileLocked(workers);
    return status ? { file: status.file, position: status.position, gtid, exact: true } : null;
  } finally {
    if (locked) await ctl.q.query(unlock).catch(() => undefined);
    timing.heldMs = Math.round(performance.now() - t0);
    o.logger.debug('snapshot lock released', { mode: o.mode, heldMs: timing.heldMs });
    await ctl.end();
  }
}

/** Events the server writes on its own, also under the lock, that change no data. */
const MARKER_EVENTS = new Set(['Binlog_checkpoint', 'Gtid_list']);

/**
 * True when the binlog between the lock's position and a snapshot's later one holds only marker
 * events: after a rotation the server writes a Binlog_checkpoint in the background, which the lock
 * does not hold back. The snapshot is then as consistent as if the positions were equal.
 */
export async function onlyMarkersBetween(ctl: DbSession, lock: { file: string; position: number }, seen: { file: string; position: number }): Promise<boolean> {
  if (seen.file !== lock.file || seen.position < lock.position) return false;
  const events = await rows(ctl, `SHOW BINLOG EVENTS IN ${ctl.q.escape(lock.file)} FROM ${lock.position} LIMIT 16`).catch(() => undefined);
  if (!events) return false;
  let end = lock.position;
  for (const e of events) {
    if (end >= seen.position) break;
    if (!MARKER_EVENTS.has(text(e['Event_type']))) return false;
    end = Number(text(e['End_log_pos']));
  }
  return end === seen.position;
}

async function lockFreeSnapshot(s: DbSession, server: ServerInfo, warnings: string[]): Promise<BinlogCoordinates | null> {
  await s.q.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  const snap = await snapshotStatus(s);
  if (snap && snap.file !== '') {
    let gtid: string | null = null;
    if (server.mariadb) {
      const [r] = await rows(s, 'SELECT BINLOG_GTID_POS(?, ?) AS g', [snap.file, snap.position]);
      gtid = text(r?.['g']).trim() || null;
    }
    return { file: snap.file, position: snap.position, gtid, exact: true };
  }
  const status = await masterStatus(s);
  if (!status) return null;
  warnings.push('the server does not bind the binlog position to the snapshot (no binlog_snapshot_* status): the recorded position was read right after the snapshot started and may be slightly late');
  return { ...status, gtid: await gtidNow(s, server), exact: false };
}
