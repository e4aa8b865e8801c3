import type { Config } from '../config/schema.js';
import type { Schedule } from '../config/schedules.js';
import { sourceOptionsFromConfig } from '../db/source-from-config.js';
import { describeError } from '../errors.js';
import { chooseCompression } from '../dump/codec.js';
import { runDump, type DumpManifest } from '../dump/index.js';
import { createManifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import { hashStream } from '../storage/byte-counter.js';
import { openStorage } from '../storage/registry.js';

export interface TargetOutcome {
  target: string;
  ok: boolean;
  manifest?: DumpManifest;
  error?: string;
}

/**
 * One dump of a tier to each of its targets. Each target gets its own consistent dump, so one
 * target that is down fails only itself: the others still get theirs, and the outcome names it.
 * A dump is complete once its dump.json (the list of every file with size and sha256, written
 * last) is stored, verified, and recorded in that storage's manifest.
 */
export async function runTierDump(
  config: Config,
  schedule: Schedule,
  deps: { logger: Logger; signal: AbortSignal; env: NodeJS.ProcessEnv; clock?: () => Date },
): Promise<TargetOutcome[]> {
  // bad configuration fails the run once, with exit 2, instead of each target in turn
  chooseCompression(config.dump.compression);
  const source = await sourceOptionsFromConfig(config.source, deps.env);
  const outcomes: TargetOutcome[] = [];
  for (const target of schedule.targets) {
    try {
      const storage = await openStorage(target, config.storages[target]!, { env: deps.env });
      try {
        const manifest = await runDump({
          source,
          storage,
          tier: schedule.tier,
          mode: config.dump.mode,
          concurrency: config.dump.concurrency,
          compression: config.dump.compression,
          chunkBytes: config.dump.chunkSize,
          ...(schedule.databases ? { databases: [...schedule.databases] } : {}),
          ...(schedule.exclude ? { exclude: [...schedule.exclude] } : {}),
          ...(schedule.users ? { users: true } : {}),
          logger: deps.logger,
          signal: deps.signal,
          ...(deps.clock ? { clock: deps.clock } : {}),
        });
        // read back: the record's sha256 is of the bytes the storage holds, whatever the driver keeps
        const key = `${manifest.prefix}/dump.json`;
        const dumpJson = await hashStream(await storage.get(key, { signal: deps.signal }));
        await createManifest(storage).recordObject(
          'dump',
          { key, size: dumpJson.size, sha256: dumpJson.sha256 },
          { tier: schedule.tier, dumpId: manifest.dumpId, coordinates: manifest.snapshot.coordinates, files: manifest.files.length, startedAt: manifest.startedAt, finishedAt: manifest.finishedAt },
        );
        outcomes.push({ target, ok: true, manifest });
      } finally {
        await storage.close?.();
      }
    } catch (error) {
      if (deps.signal.aborted) throw error;
      deps.logger.error(`dump of tier ${schedule.tier} to ${target} failed`, { error: describeError(error) });
      outcomes.push({ target, ok: false, error: describeError(error) });
    }
  }
  return outcomes;
}
