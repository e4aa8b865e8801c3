import type { Schedule } from '../config/schedules.js';
import { keyName } from '../dump/names.js';
import { DEFAULT_DUMPS_ROOT } from '../dump/types.js';
import { describeError } from '../errors.js';
import { createManifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import type { Storage } from '../storage/storage.js';

/**
 * When each target of a tier last got a complete dump, from the `dump` records of the manifest in
 * that storage (written only once a dump's dump.json is stored and verified): the daemon's memory
 * does not survive a restart, the storage does. `undefined`: never; `null`: could not be read.
 */
export async function lastDumpRuns(
  schedule: Schedule,
  open: (target: string) => Promise<Storage>,
  logger: Logger,
  signal?: AbortSignal,
): Promise<Map<string, Date | undefined | null>> {
  const out = new Map<string, Date | undefined | null>();
  for (const target of schedule.targets) {
    let storage: Storage | undefined;
    try {
      storage = await open(target);
      let last: number | undefined;
      for await (const r of createManifest(storage).records(`${DEFAULT_DUMPS_ROOT}/${keyName(schedule.tier)}/`, signal ? { signal } : {})) {
        if (r.kind !== 'dump') continue;
        const at = Date.parse(String(r['startedAt'] ?? r['finishedAt'] ?? r.writtenAt));
        if (!Number.isNaN(at) && (last === undefined || at > last)) last = at;
      }
      out.set(target, last === undefined ? undefined : new Date(last));
    } catch (error) {
      logger.warn('could not read the last dump of a target', { tier: schedule.tier, target, error: describeError(error) });
      out.set(target, null);
    } finally {
      await storage?.close?.();
    }
  }
  return out;
}
