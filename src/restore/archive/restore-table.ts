/**
 * `restore table DB.TABLE --at TIME` from our own archive: the nearest dump before the moment,
 * that table alone loaded into a scratch database on the target server, that table's row changes
 * replayed from the archived binlog up to the moment, and the result delivered into a NEW table
 * (or a SQL file). The live table is never touched. The scratch database is dropped whatever
 * happens (success, failure, Ctrl-C), and nothing of the restore reaches the target's binlog.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { listSegments } from '../../binlog/archive-catalog.js';
import { connectSource } from '../../db/connect.js';
import { loadDump } from '../../dump/index.js';
import { DumpIntegrityError, RestoreError, UsageError, VerificationError, describeError, throwIfAborted } from '../../errors.js';
import type { Logger } from '../../ops/logger.js';
import type { Storage } from '../../storage/storage.js';
import { restoredTableName } from '../rds/names.js';
import type { DbLogin } from '../rds/restore-table.js';
import { checkCopyTarget, copyTable, quoteId, type TableRef } from '../table-copy/index.js';
import { applyBinlog } from './apply-binlog.js';
import { prefetchedSegments } from './segment-prefetch.js';
import { replayProgress } from './replay-progress.js';
import { dumpCandidates, type DumpCandidate, type StorageOpener } from './dump-candidates.js';
import { filterEvents, type FilterResult, type StopPoint } from './event-filter.js';
import { selectSegments, type SegmentSelection } from './replay-segments.js';
import type { Schedule } from '../../config/schedules.js';
import { formatInZone } from '../../time/wall-clock.js';

export interface ArchiveTableRestoreOptions {
  readonly table: TableRef;
  readonly stop: StopPoint;
  /** default: TABLE__restored_<when> next to the live table */
  readonly into?: TableRef;
  readonly toFile?: string;
  /** only rows matching this SQL condition (the operator's own SQL, run against the restored copy) */
  readonly where?: string;
  readonly dryRun: boolean;
  readonly timeZone: string;
  readonly schedules: readonly Schedule[];
  /** opens a storage by its configured name */
  readonly open: StorageOpener;
  readonly archiveStorage: string;
  readonly target: DbLogin;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly clock?: () => Date;
  readonly onProgress?: (line: string) => void;
  /** the plan, before anything is created (not called on a dry run: the result carries it) */
  readonly onPlan?: (lines: readonly string[]) => void;
}

export interface ArchiveRestorePlan {
  readonly dump: DumpCandidate;
  readonly segments: SegmentSelection;
  readonly lines: string[];
}

export interface ArchiveTableRestoreResult {
  readonly plan: ArchiveRestorePlan;
  readonly dryRun: boolean;
  readonly rows?: number;
  /** `table db.name` or `file PATH` */
  readonly delivered?: string;
  /** the new table, when delivered into one */
  readonly restoredTable?: TableRef;
  readonly reached?: { file: string; position: number; time?: Date };
  readonly skippedDumps: string[];
}

/** Throughputs for the estimate, measured on a small VM; the plan says it is an estimate. */
const LOAD_BYTES_PER_S = 20e6;
const REPLAY_BYTES_PER_S = 60e6;

export async function restoreTableFromArchive(o: ArchiveTableRestoreOptions): Promise<ArchiveTableRestoreResult> {
  const progress = o.onProgress ?? (() => undefined);
  const when = o.stop.kind === 'time' ? o.stop.at : (o.clock ?? (() => new Date()))();
  const into: TableRef = o.into ?? { db: o.table.db, name: restoredTableName(o.table.name, when) };
  if (into.db === o.table.db && into.name === o.table.name) {
    throw new UsageError(`--into ${into.db}.${into.name} is the live table; a restore never overwrites it`, { hint: 'Give a new table name with --into DB.NEW_TABLE.' });
  }
  const { candidates, unreadable } = await dumpCandidates(o.schedules, o.open, o.stop, { database: o.table.db, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
  if (candidates.length === 0) {
    throw new RestoreError(`no dump of ${o.table.db} was taken before ${describeStop(o.stop)}`, {
      hint: `Restores start from a dump taken before the moment; \`mysql-archiver list dumps\` shows what exists${unreadable.length ? ` (unreadable targets: ${unreadable.join('; ')})` : ''}.`,
    });
  }
  const archive = await o.open(o.archiveStorage);
  try {
    const allSegments = await listSegments(archive, o.signal ? { signal: o.signal } : {});
    const planFor = (c: DumpCandidate): ArchiveRestorePlan => {
      const segments = selectSegments(allSegments, c.dump.coordinates, o.stop);
      return { dump: c, segments, lines: planLines(o, c, segments, into) };
    };
    const first = planFor(candidates[0]!);
    if (o.dryRun) return { plan: first, dryRun: true, skippedDumps: [] };
    o.onPlan?.(first.lines);

    // checks that change nothing, before anything is created
    const conn = await connectSource({ ...o.target, serverId: 0 });
    try {
      // the whole restore stays on this server: replicas would not have the scratch database
      await conn.query('SET SESSION sql_log_bin = 0');
    } catch (error) {
      await conn.end().catch(() => conn.destroy());
      throw new RestoreError(`the restore login cannot keep the restore out of the binlog: ${describeError(error)}`, {
        hint: 'Give the login in restore.target BINLOG ADMIN (or SUPER) and BINLOG REPLAY, or restore into another server with restore.target.',
      });
    }
    const skippedDumps: string[] = [];
    const scratch = `__ma_restore_${randomBytes(4).toString('hex')}`;
    const work = await mkdtemp(join(tmpdir(), 'mysql-archiver-restore-'));
    let scratchCreated = false;
    try {
      if (o.toFile) await checkCopyTarget({ kind: 'file', path: o.toFile, table: into });
      else await checkCopyTarget({ kind: 'table', conn, table: into });
      for (const [index, candidate] of candidates.entries()) {
        throwIfAborted(o.signal);
        const plan = index === 0 ? first : planFor(candidate);
        if (index > 0) progress(`using the older dump ${candidate.dump.dumpId} on ${candidate.target} instead`);
        await conn.query(`DROP DATABASE IF EXISTS ${quoteId(scratch)}`);
        await conn.query(`CREATE DATABASE ${quoteId(scratch)}`);
        scratchCreated = true;
        const storage = await o.open(candidate.target);
        let replayed: string[];
        try {
          replayed = await loadWithCascadeParents(conn, storage, candidate, scratch, o, progress);
        } catch (error) {
          if (error instanceof DumpIntegrityError || error instanceof VerificationError) {
            skippedDumps.push(`${candidate.dump.dumpId} on ${candidate.target}: ${describeError(error)}`);
            o.logger.warn('a dump file failed verification; trying an older dump', { dumpId: candidate.dump.dumpId, target: candidate.target, error: describeError(error) });
            progress(`dump ${candidate.dump.dumpId} on ${candidate.target} failed verification: ${describeError(error)}`);
            continue;
          }
          throw error;
        } finally {
          await storage.close?.();
        }
        progress(`replay: ${plan.segments.segments.length} segment(s), ${plan.segments.bytes} bytes, from ${candidate.dump.coordinates.file}:${candidate.dump.coordinates.position} to ${describeStop(o.stop)}`);
        let filtered: FilterResult | undefined;
        await applyBinlog(
          {
            // segments are verified before use and fetched ahead while the server applies
            feed: async (out) => {
              filtered = await filterEvents(prefetchedSegments(archive, plan.segments.segments, work, o.signal ? { signal: o.signal } : {}), out, {
                start: candidate.dump.coordinates,
                stop: o.stop,
                tables: replayed.map((name) => ({ db: o.table.db, name })),
                onBytes: replayProgress(plan.segments.bytes, progress),
              });
              checkReached(filtered, o.stop);
            },
          },
          { login: o.target, database: scratch, rewriteDb: { from: o.table.db, to: scratch }, singleTransaction: true, ...(o.signal ? { signal: o.signal } : {}) },
        );
        const f = filtered as FilterResult;
        progress(`replay: ${f.rowEvents} row event(s) of ${replayed.join(', ')}${f.reached ? ` up to ${f.reached.file}:${f.reached.position}${f.reached.time ? ` (${f.reached.time.toISOString()})` : ''}` : ''}`);
        const delivered = await deliver(conn, { db: scratch, name: o.table.name }, into, o);
        progress(`done:   ${delivered.rows} row(s) in ${delivered.where}`);
        return { plan, dryRun: false, rows: delivered.rows, delivered: delivered.where, ...(o.toFile ? {} : { restoredTable: into }), ...(f.reached ? { reached: f.reached } : {}), skippedDumps };
      }
      throw new RestoreError(`every dump that could serve ${describeStop(o.stop)} failed verification: ${skippedDumps.join('; ')}`, {
        hint: 'The archive copies are damaged; restore from another target or an older backup, and run `mysql-archiver verify` to check the rest.',
      });
    } finally {
      if (scratchCreated) await conn.query(`DROP DATABASE IF EXISTS ${quoteId(scratch)}`).catch((error) => o.logger.error('could not drop the scratch database; drop it by hand', { database: scratch, error: describeError(error) }));
      await conn.end().catch(() => conn.destroy());
      await rm(work, { recursive: true, force: true });
    }
  } finally {
    await archive.close?.();
  }
}

/** A position or GTID the segments never reached is an error (a time past the archive's end is reported in the plan). */
export function checkReached(result: FilterResult, stop: StopPoint): void {
  if (stop.kind === 'position' && !result.stopped && result.reached && (result.reached.file !== stop.file || result.reached.position < stop.position)) {
    throw new RestoreError(`the archive ends at ${result.reached.file}:${result.reached.position}, before ${stop.file}:${stop.position}`, { hint: 'Choose an earlier position, or wait until the archiver has shipped it (`mysql-archiver status`).' });
  }
  if (stop.kind === 'gtid' && !result.stopped) {
    throw new RestoreError(`GTID ${stop.gtid} is not in the archive after the dump`, { hint: 'Check the GTID (domain-server-sequence), or restore to a time instead.' });
  }
}

async function deliver(conn: Connection, scratchTable: TableRef, into: TableRef, o: ArchiveTableRestoreOptions): Promise<{ rows: number; where: string }> {
  if (o.toFile || o.where) {
    // rows are copied (filtered) out of the scratch copy; the session keeps them out of the binlog
    const src = await connectSource({ ...o.target, serverId: 0 });
    try {
      const target = o.toFile ? ({ kind: 'file', path: o.toFile, table: into } as const) : ({ kind: 'table', conn, table: into } as const);
      const r = await copyTable({ source: src, table: scratchTable, target, ...(o.where ? { where: o.where } : {}), logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
      return { rows: r.rows, where: o.toFile ? `file ${o.toFile}` : `table ${into.db}.${into.name}` };
    } finally {
      await src.end().catch(() => src.destroy());
    }
  }
  await dropForeignKeys(conn, scratchTable);
  await conn.query(`RENAME TABLE ${quoteId(scratchTable.db)}.${quoteId(scratchTable.name)} TO ${quoteId(into.db)}.${quoteId(into.name)}`);
  const [count] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${quoteId(into.db)}.${quoteId(into.name)}`);
  return { rows: Number(count[0]?.['n']), where: `table ${into.db}.${into.name}` };
}

/**
 * Loads the table into scratch, and with it every table it references through a foreign key
 * with ON DELETE/UPDATE CASCADE or SET NULL (transitively): the server does not log the changes
 * such cascades make, so they are only reproduced by replaying the parents' changes with the
 * constraints in place. Other foreign keys are dropped (their parents are not there). Returns the
 * tables whose row events the replay needs.
 */
async function loadWithCascadeParents(conn: Connection, storage: Storage, candidate: DumpCandidate, scratch: string, o: ArchiveTableRestoreOptions, progress: (line: string) => void): Promise<string[]> {
  const loaded: string[] = [];
  const queue = [o.table.name];
  while (queue.length > 0) {
    const name = queue.shift() as string;
    if (loaded.includes(name)) continue;
    progress(`load:   ${o.table.db}.${name} from dump ${candidate.dump.dumpId} (${candidate.target}) into scratch ${scratch}${name === o.table.name ? '' : ` (its changes cascade into ${o.table.name})`}`);
    await loadDump({
      storage,
      dumpPrefix: candidate.dump.prefix,
      target: o.target,
      tables: [{ db: o.table.db, table: name }],
      renameDatabase: { [o.table.db]: scratch },
      objects: false,
      skipBinlog: true,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    loaded.push(name);
    const [fks] = await conn.query<RowDataPacket[]>(
      'SELECT REFERENCED_TABLE_NAME AS parent, UNIQUE_CONSTRAINT_SCHEMA AS parentDb, DELETE_RULE AS del, UPDATE_RULE AS upd FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?',
      [scratch, name],
    );
    for (const fk of fks) {
      const cascades = [fk['del'], fk['upd']].some((rule) => rule === 'CASCADE' || rule === 'SET NULL' || rule === 'SET DEFAULT');
      if (cascades && fk['parentDb'] === scratch && !loaded.includes(String(fk['parent']))) queue.push(String(fk['parent']));
    }
  }
  // constraints whose parent is not in scratch would refuse every replayed row
  const [dangling] = await conn.query<RowDataPacket[]>(
    'SELECT TABLE_NAME AS t, CONSTRAINT_NAME AS c, REFERENCED_TABLE_NAME AS p, UNIQUE_CONSTRAINT_SCHEMA AS pdb FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?',
    [scratch],
  );
  for (const d of dangling) {
    if (d['pdb'] === scratch && loaded.includes(String(d['p']))) continue;
    await conn.query(`ALTER TABLE ${quoteId(scratch)}.${quoteId(String(d['t']))} DROP FOREIGN KEY ${quoteId(String(d['c']))}`);
  }
  return loaded;
}

/** Foreign keys name constraints per database, so the copy would also clash with the live table's. */
async function dropForeignKeys(conn: Connection, table: TableRef): Promise<void> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT CONSTRAINT_NAME AS name FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_TYPE = ?',
    [table.db, table.name, 'FOREIGN KEY'],
  );
  for (const r of rows) await conn.query(`ALTER TABLE ${quoteId(table.db)}.${quoteId(table.name)} DROP FOREIGN KEY ${quoteId(String(r['name']))}`);
}

export function describeStop(stop: StopPoint): string {
  if (stop.kind === 'time') return stop.at.toISOString();
  if (stop.kind === 'position') return `${stop.file}:${stop.position}`;
  return `GTID ${stop.gtid}`;
}

function planLines(o: ArchiveTableRestoreOptions, c: DumpCandidate, s: SegmentSelection, into: TableRef): string[] {
  const tableBytes = c.dump.bytes / Math.max(1, c.dump.tables);
  const seconds = Math.ceil(tableBytes / LOAD_BYTES_PER_S + s.bytes / REPLAY_BYTES_PER_S + 2);
  const at = o.stop.kind === 'time' ? `${o.stop.at.toISOString()} UTC (${formatInZone(o.stop.at, o.timeZone)})` : describeStop(o.stop);
  const first = s.segments[0];
  const last = s.segments.at(-1);
  return [
    `table:       ${o.table.db}.${o.table.name} as of ${at}`,
    `dump:        ${c.dump.dumpId} on ${c.target} (taken ${c.dump.startedAt}, binlog ${c.dump.coordinates.file}:${c.dump.coordinates.position})`,
    `binlog:      ${s.segments.length} segment(s) of ${s.source}, ${s.bytes} bytes${first && last ? `, ${first.serverFile}:${first.startPos} to ${last.serverFile}:${last.endPos}` : ''}; newest archived event ${s.lastEventTime ?? 'none'}`,
    `into:        ${o.toFile ? `file ${o.toFile}` : `table ${into.db}.${into.name}`}${o.where ? ` (only rows WHERE ${o.where})` : ''} (new; the live table is not touched)`,
    `estimate:    about ${seconds} s (reads ${Math.round(tableBytes)} bytes of dump and ${s.bytes} bytes of binlog)`,
    `scratch:     a temporary database on the target, dropped at the end (also on failure or Ctrl-C)`,
  ];
}
