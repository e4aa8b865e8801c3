/**
 * The core of full restores (`restore pitr`, the restore drill): a whole dump loaded into a server,
 * then every archived event from the dump's coordinates to the stop point replayed into it. The
 * newest dump that covers the stop point is used; when one of its files fails its sha256 the next
 * older one is tried (the databases it created are dropped first).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listSegments, type SegmentEntry } from '../../binlog/archive-catalog.js';
import type { Schedule } from '../../config/schedules.js';
import { loadDump, type LoadReport } from '../../dump/index.js';
import { DumpIntegrityError, RestoreError, VerificationError, describeError, throwIfAborted } from '../../errors.js';
import type { Logger } from '../../ops/logger.js';
import { connectSource } from '../../db/connect.js';
import type { DbLogin } from '../rds/restore-table.js';
import { quoteId } from '../table-copy/index.js';
import { applyBinlog } from './apply-binlog.js';
import { prefetchedSegments } from './segment-prefetch.js';
import { replayProgress } from './replay-progress.js';
import { dumpCandidates, type DumpCandidate, type StorageOpener } from './dump-candidates.js';
import { filterEvents, type FilterResult, type StopPoint } from './event-filter.js';
import { selectSegments, type SegmentSelection } from './replay-segments.js';
import { checkReached, describeStop } from './restore-table.js';

export interface ReplayToServerOptions {
  readonly stop: StopPoint;
  readonly schedules: readonly Schedule[];
  readonly open: StorageOpener;
  readonly archiveStorage: string;
  readonly target: DbLogin;
  /** only this database (default: all in the dump) */
  readonly database?: string;
  readonly dryRun: boolean;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly onProgress?: (line: string) => void;
  /** use exactly this dump (the drill picks its own) */
  readonly dump?: DumpCandidate;
}

export interface ReplayPlan {
  readonly dump: DumpCandidate;
  readonly segments: SegmentSelection;
}

export interface ReplayToServerResult {
  readonly plan: ReplayPlan;
  readonly load?: LoadReport;
  readonly filtered?: FilterResult;
  readonly skippedDumps: string[];
}

export async function planReplay(o: Pick<ReplayToServerOptions, 'stop' | 'schedules' | 'open' | 'archiveStorage' | 'database' | 'logger' | 'signal' | 'dump'>): Promise<{ plans: ReplayPlan[]; segments: SegmentEntry[] }> {
  const candidates = o.dump
    ? [o.dump]
    : (await dumpCandidates(o.schedules, o.open, o.stop, { ...(o.database ? { database: o.database } : {}), logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) })).candidates;
  if (candidates.length === 0) {
    throw new RestoreError(`no dump was taken before ${describeStop(o.stop)}`, { hint: 'A full restore starts from a dump taken before the moment; `mysql-archiver list dumps` shows what exists.' });
  }
  const archive = await o.open(o.archiveStorage);
  try {
    const segments = await listSegments(archive, o.signal ? { signal: o.signal } : {});
    const plans: ReplayPlan[] = [];
    let firstError: unknown;
    for (const c of candidates) {
      try {
        plans.push({ dump: c, segments: selectSegments(segments, c.dump.coordinates, o.stop) });
      } catch (error) {
        firstError ??= error;
      }
    }
    if (plans.length === 0) throw firstError;
    return { plans, segments };
  } finally {
    await archive.close?.();
  }
}

export async function replayToServer(o: ReplayToServerOptions): Promise<ReplayToServerResult> {
  const progress = o.onProgress ?? (() => undefined);
  const { plans } = await planReplay(o);
  if (o.dryRun) return { plan: plans[0]!, skippedDumps: [] };
  const work = await mkdtemp(join(tmpdir(), 'mysql-archiver-pitr-'));
  const archive = await o.open(o.archiveStorage);
  const skippedDumps: string[] = [];
  try {
    for (const plan of plans) {
      throwIfAborted(o.signal);
      const c = plan.dump;
      const storage = await o.open(c.target);
      let load: LoadReport;
      try {
        progress(`load:   dump ${c.dump.dumpId} from ${c.target} (${c.dump.tables} tables, ${c.dump.bytes} bytes)`);
        load = await loadDump({
          storage,
          dumpPrefix: c.dump.prefix,
          target: o.target,
          ...(o.database ? { tables: [o.database] } : {}),
          // a whole-server restore brings the accounts back too, when the dump has them
          users: !o.database,
          concurrency: 2,
          ...(o.signal ? { signal: o.signal } : {}),
        });
      } catch (error) {
        if (error instanceof DumpIntegrityError || error instanceof VerificationError) {
          skippedDumps.push(`${c.dump.dumpId} on ${c.target}: ${describeError(error)}`);
          progress(`dump ${c.dump.dumpId} on ${c.target} failed verification: ${describeError(error)}; trying an older one`);
          await dropDatabases(o.target, o.database ? [o.database] : c.dump.databases);
          continue;
        }
        await dropDatabases(o.target, o.database ? [o.database] : c.dump.databases).catch(() => undefined);
        throw error;
      } finally {
        await storage.close?.();
      }
      progress(`replay: ${plan.segments.segments.length} segment(s), ${plan.segments.bytes} bytes, from ${c.dump.coordinates.file}:${c.dump.coordinates.position} to ${describeStop(o.stop)}`);
      let filtered: FilterResult | undefined;
      // merged groups span databases; mariadb-binlog --database is left to cut plain transactions
      const mergeTransactions = !o.database;
      // a replay that fails (or is interrupted) leaves the target as it was: without these databases
      const undo = () => dropDatabases(o.target, o.database ? [o.database] : c.dump.databases).catch(() => undefined);
      await applyBinlog(
        {
          // segments are verified before use and fetched ahead while the server applies
          feed: async (out) => {
            filtered = await filterEvents(prefetchedSegments(archive, plan.segments.segments, work, o.signal ? { signal: o.signal } : {}), out, { start: c.dump.coordinates, stop: o.stop, mergeTransactions, onBytes: replayProgress(plan.segments.bytes, progress) });
            checkReached(filtered, o.stop);
          },
        },
        { login: o.target, ...(o.database ? { database: o.database, onlyDatabase: o.database } : {}), ...(o.signal ? { signal: o.signal } : {}) },
      ).catch(async (error: unknown) => {
        await undo();
        throw error;
      });
      const f = filtered as FilterResult;
      progress(`replay: ${f.events} event(s) applied${f.reached ? ` up to ${f.reached.file}:${f.reached.position}` : ''}`);
      return { plan, load, filtered: f, skippedDumps };
    }
    throw new RestoreError(`every dump that could serve ${describeStop(o.stop)} failed verification: ${skippedDumps.join('; ')}`, {
      hint: 'Restore from another target or an older backup; `mysql-archiver verify` checks the rest.',
    });
  } finally {
    await archive.close?.();
    await rm(work, { recursive: true, force: true });
  }
}

async function dropDatabases(login: DbLogin, dbs: readonly string[]): Promise<void> {
  const conn = await connectSource({ ...login, serverId: 0 });
  try {
    for (const db of dbs) await conn.query(`DROP DATABASE IF EXISTS ${quoteId(db)}`);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
