/**
 * `mysql-archiver verify`, the restore drill: a backup counts only once a restore from it worked.
 * A throwaway mariadbd gets the second newest dump (its files checked by sha256, its tables by
 * row count and checksum), then the archived binlog is replayed up to the newest dump's
 * coordinates, and every table is compared with the checksums that newest dump recorded: dumps
 * and binlog archive are proven together. With a single dump, it is loaded and the binlog is
 * replayed to the newest segment. The result is recorded in the archive's manifest and in the
 * state dir for `status`; a failure names what failed.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Schedule } from '../config/schedules.js';
import type { Config } from '../config/schema.js';
import { checksumTable, readDumpManifest } from '../dump/index.js';
import { openSession } from '../dump/connection.js';
import { startThrowawayMariadb, type ThrowawayMariadb } from '../demo/throwaway-mariadb.js';
import { RestoreError, describeError } from '../errors.js';
import { createManifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import { configuredOpener, dumpCandidates, type DumpCandidate, type StorageOpener } from './archive/dump-candidates.js';
import { replayToServer } from './archive/replay-to-server.js';

export const DRILL_STATE_FILE = 'last-drill.json';

export interface DrillResult {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  base?: { dumpId: string; target: string };
  /** the dump whose checksums the replayed state was compared with */
  comparedWith?: { dumpId: string; target: string };
  tables: number;
  events?: number;
  mismatches: string[];
  error?: string;
}

export interface DrillDeps {
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly clock?: () => Date;
  readonly open?: StorageOpener;
  readonly onProgress?: (line: string) => void;
}

export async function runDrill(config: Config, schedules: readonly Schedule[], deps: DrillDeps): Promise<DrillResult> {
  const clock = deps.clock ?? (() => new Date());
  const open = deps.open ?? configuredOpener(config, deps.env);
  const progress = deps.onProgress ?? (() => undefined);
  const started = clock();
  const result: DrillResult = { ok: false, startedAt: started.toISOString(), finishedAt: '', durationMs: 0, tables: 0, mismatches: [] };
  let server: ThrowawayMariadb | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'mysql-archiver-drill-'));
  try {
    const { candidates } = await dumpCandidates(schedules, open, { kind: 'time', at: clock() }, { logger: deps.logger, ...(deps.signal ? { signal: deps.signal } : {}) });
    if (candidates.length === 0) throw new RestoreError('there is no dump to drill with', { hint: 'Take one with `mysql-archiver dump --tier daily` first.' });
    const next: DumpCandidate | undefined = candidates.length > 1 ? candidates[0] : undefined;
    const base = (next ? candidates[1] : candidates[0]) as DumpCandidate;
    result.base = { dumpId: base.dump.dumpId, target: base.target };
    progress(`drill: a throwaway server gets dump ${base.dump.dumpId} (${base.target}), then the binlog up to ${next ? `dump ${next.dump.dumpId}'s position ${next.dump.coordinates.file}:${next.dump.coordinates.position}` : 'the newest archived event'}`);
    await mkdir(join(dir, 'db'));
    server = await startThrowawayMariadb({ dir: join(dir, 'db'), serverId: 4_000_000_000, env: deps.env }, deps.signal);
    const login = { host: server.host, port: server.port, user: server.rootUser, password: server.rootPassword };
    const replay = await replayToServer({
      stop: next ? { kind: 'position', file: next.dump.coordinates.file, position: next.dump.coordinates.position } : { kind: 'time', at: clock() },
      schedules,
      open,
      archiveStorage: config.archiver.storage,
      target: login,
      dryRun: false,
      logger: deps.logger,
      dump: base,
      onProgress: progress,
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    result.events = replay.filtered?.events ?? 0;
    result.tables = replay.load?.tables.length ?? 0;
    if (next) {
      result.comparedWith = { dumpId: next.dump.dumpId, target: next.target };
      const storage = await open(next.target);
      const manifest = await readDumpManifest(storage, next.dump.prefix, deps.signal).finally(() => storage.close?.());
      const session = await openSession(login);
      try {
        for (const t of manifest.tables) {
          const sum = await checksumTable(session, t.db, t, manifest.checksumAlgorithm);
          if (sum.rows !== t.rows || sum.digest() !== t.checksum) {
            result.mismatches.push(`${t.db}.${t.table}: ${sum.rows} rows after replay, dump ${next.dump.dumpId} recorded ${t.rows}${sum.digest() !== t.checksum ? ' (checksum differs)' : ''}`);
          }
        }
        result.tables = manifest.tables.length;
      } finally {
        await session.end();
      }
    }
    result.ok = result.mismatches.length === 0;
    if (!result.ok) result.error = `replayed state differs from dump ${next?.dump.dumpId}: ${result.mismatches.join('; ')}`;
  } catch (error) {
    if (deps.signal?.aborted) throw error;
    result.error = describeError(error);
  } finally {
    await server?.shutdown().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  const finished = clock();
  result.finishedAt = finished.toISOString();
  result.durationMs = finished.getTime() - started.getTime();
  await recordDrill(config, open, result, deps);
  if (result.ok) deps.logger.info('restore drill passed', { ...result });
  else deps.logger.error('RESTORE DRILL FAILED', { ...result });
  return result;
}

async function recordDrill(config: Config, open: StorageOpener, result: DrillResult, deps: DrillDeps): Promise<void> {
  await mkdir(config.archiver.stateDir, { recursive: true });
  await writeFile(join(config.archiver.stateDir, DRILL_STATE_FILE), `${JSON.stringify(result, null, 1)}\n`);
  try {
    const archive = await open(config.archiver.storage);
    try {
      await createManifest(archive, deps.clock ? { clock: deps.clock } : {}).event('drill', { ...result });
    } finally {
      await archive.close?.();
    }
  } catch (error) {
    deps.logger.error('could not record the drill result in the manifest', { error: describeError(error) });
  }
}

export async function readLastDrill(stateDir: string): Promise<DrillResult | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, DRILL_STATE_FILE), 'utf8')) as DrillResult;
  } catch {
    return undefined;
  }
}
