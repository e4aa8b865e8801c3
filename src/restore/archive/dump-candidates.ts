/**
 * The dumps a restore can start from: every complete dump with binlog coordinates on every dump
 * target, taken at or before the restore point, newest first. A restore tries them in that order
 * and moves to an older one when a file fails its sha256.
 */
import type { Schedule } from '../../config/schedules.js';
import type { Config } from '../../config/schema.js';
import { listDumps, type DumpSummary } from '../../dump/index.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../ops/logger.js';
import { openStorage } from '../../storage/registry.js';
import type { Storage } from '../../storage/storage.js';
import { compareBinlogFiles } from '../../binlog/segment-name.js';
import type { StopPoint } from './event-filter.js';

export interface DumpCandidate {
  readonly target: string;
  readonly dump: DumpSummary & { coordinates: NonNullable<DumpSummary['coordinates']> };
}

export type StorageOpener = (name: string) => Promise<Storage>;

export function configuredOpener(config: Config, env: NodeJS.ProcessEnv): StorageOpener {
  return (name) => openStorage(name, config.storages[name]!, { env });
}

export async function dumpCandidates(
  schedules: readonly Schedule[],
  open: StorageOpener,
  stop: StopPoint,
  opts: { database?: string; logger: Logger; signal?: AbortSignal },
): Promise<{ candidates: DumpCandidate[]; unreadable: string[] }> {
  const targets = [...new Set(schedules.flatMap((s) => s.targets))];
  const candidates: DumpCandidate[] = [];
  const unreadable: string[] = [];
  for (const target of targets) {
    let storage: Storage | undefined;
    try {
      storage = await open(target);
      for (const d of await listDumps(storage, undefined, opts.signal ? { signal: opts.signal } : {})) {
        if (!d.coordinates) continue;
        if (opts.database && !d.databases.includes(opts.database)) continue;
        if (!covers(d, stop)) continue;
        candidates.push({ target, dump: d as DumpCandidate['dump'] });
      }
    } catch (error) {
      if (opts.signal?.aborted) throw error;
      unreadable.push(`${target}: ${describeError(error)}`);
      opts.logger.warn('cannot list the dumps of a target; it is left out', { target, error: describeError(error) });
    } finally {
      await storage?.close?.();
    }
  }
  candidates.sort((a, b) => (a.dump.startedAt > b.dump.startedAt ? -1 : a.dump.startedAt < b.dump.startedAt ? 1 : 0));
  return { candidates, unreadable };
}

function covers(d: DumpSummary, stop: StopPoint): boolean {
  // the snapshot falls between start and finish and is not timed itself: finished before is safe
  if (stop.kind === 'time') return Date.parse(d.finishedAt) <= stop.at.getTime();
  if (stop.kind === 'position') {
    const c = d.coordinates!;
    const cmp = compareBinlogFiles(c.file, stop.file);
    return cmp < 0 || (cmp === 0 && c.position <= stop.position);
  }
  return true;
}
