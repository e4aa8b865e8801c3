/**
 * Retention: per tier and target, the dumps no rule keeps are deleted; then the binlog segments
 * that no kept dump needs. Only objects the tool wrote and can name are deleted: the files a
 * dump's own dump.json lists (data first, dump.json after, its manifest record last, so an
 * interrupted deletion is finished by the next run and never leaves files nobody lists), and
 * segments with a manifest record. Deletion may use other credentials than the archiver
 * (`retention.credentials`), so the archiver itself needs no delete permission.
 */
import type { Schedule } from '../config/schedules.js';
import type { Config, StorageConfig } from '../config/schema.js';
import { listSegments, type SegmentEntry } from '../binlog/archive-catalog.js';
import { listDumps, readDumpManifest, type DumpSummary } from '../dump/index.js';
import { DUMP_MANIFEST_NAME } from '../dump/types.js';
import { describeError, ManifestError, StorageNotFoundError, throwIfAborted } from '../errors.js';
import { createManifest, recordKeyFor } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import { openStorage as openConfiguredStorage } from '../storage/registry.js';
import type { Storage } from '../storage/storage.js';
import { planDumpRetention, planSegmentPruning } from './retention-plan.js';

/** Segments are kept this long before the oldest kept dump, for clock skew between host and server. */
export const SEGMENT_MARGIN_MS = 3_600_000;

export interface DumpRetentionLine {
  readonly target: string;
  readonly tier: string;
  readonly dumpId: string;
  readonly startedAt: string;
  readonly keep: boolean;
  readonly reason: string;
  readonly deleted?: boolean;
}

export interface RetentionReport {
  readonly dryRun: boolean;
  readonly dumps: DumpRetentionLine[];
  readonly segments: { readonly key: string; readonly lastEventTime: string; readonly deleted: boolean }[];
  /** why segments were not pruned this time, if they were not */
  segmentsSkipped?: string;
  readonly errors: string[];
}

export interface RetentionDeps {
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly clock?: () => Date;
  readonly dryRun: boolean;
  /** only these tiers' dumps (segments are pruned only when every tier was looked at) */
  readonly tiers?: readonly string[];
  /** tests: storages by name instead of opening the configured ones */
  readonly openStorage?: (name: string) => Promise<Storage>;
}

export async function runRetention(config: Config, schedules: readonly Schedule[], deps: RetentionDeps): Promise<RetentionReport> {
  const now = (deps.clock ?? (() => new Date()))();
  const report: RetentionReport = { dryRun: deps.dryRun, dumps: [], segments: [], errors: [] };
  const open = deps.openStorage ?? ((name: string) => openForDeletion(config, name, deps.env));
  let oldestKept: Date | undefined;
  let everyTierSeen = deps.tiers === undefined;

  for (const schedule of schedules) {
    if (deps.tiers && !deps.tiers.includes(schedule.tier)) continue;
    for (const target of schedule.targets) {
      throwIfAborted(deps.signal);
      let storage: Storage | undefined;
      try {
        storage = await open(target);
        const dumps = await listDumps(storage, schedule.tier, deps.signal ? { signal: deps.signal } : {});
        for (const decision of planDumpRetention(dumps, schedule.retention, now)) {
          const d = decision.dump;
          const line: DumpRetentionLine = { target, tier: schedule.tier, dumpId: d.dumpId, startedAt: d.startedAt, keep: decision.keep, reason: decision.reason };
          if (decision.keep) {
            if (!oldestKept || Date.parse(d.startedAt) < oldestKept.getTime()) oldestKept = new Date(d.startedAt);
            report.dumps.push(line);
            continue;
          }
          if (deps.dryRun) {
            report.dumps.push(line);
            continue;
          }
          await deleteDump(storage, d, deps);
          report.dumps.push({ ...line, deleted: true });
          deps.logger.info('retention deleted a dump', { target, tier: schedule.tier, dumpId: d.dumpId, reason: decision.reason });
        }
        const deleted = report.dumps.filter((l) => l.deleted && l.target === target && l.tier === schedule.tier);
        if (deleted.length > 0) {
          await createManifest(storage, deps.clock ? { clock: deps.clock } : {}).event('retention', { tier: schedule.tier, deleted: deleted.map((l) => l.dumpId) });
        }
      } catch (error) {
        if (deps.signal?.aborted) throw error;
        everyTierSeen = false;
        const message = `${schedule.tier} on ${target}: ${describeError(error)}`;
        report.errors.push(message);
        deps.logger.error('retention failed for a target; its dumps are left as they are', { tier: schedule.tier, target, error: describeError(error) });
      } finally {
        await storage?.close?.();
      }
    }
  }

  if (!everyTierSeen) {
    report.segmentsSkipped = deps.tiers ? 'only some tiers were looked at' : 'not every target could be read, so the oldest kept dump is unknown';
    return report;
  }
  if (!oldestKept) {
    report.segmentsSkipped = 'no dump is kept anywhere yet: every segment may still be needed';
    return report;
  }
  let archive: Storage | undefined;
  try {
    archive = await open(config.archiver.storage);
    const segments = await listSegments(archive, deps.signal ? { signal: deps.signal } : {});
    const prune = planSegmentPruning(segments, oldestKept, SEGMENT_MARGIN_MS);
    for (const s of prune) {
      throwIfAborted(deps.signal);
      if (!deps.dryRun) await deleteSegment(archive, s);
      report.segments.push({ key: s.key, lastEventTime: s.lastEventTime, deleted: !deps.dryRun });
    }
    if (!deps.dryRun && prune.length > 0) {
      await createManifest(archive, deps.clock ? { clock: deps.clock } : {}).event('retention', {
        segments: prune.length,
        first: prune[0]?.key,
        last: prune.at(-1)?.key,
        oldestKeptDump: oldestKept.toISOString(),
      });
      deps.logger.info('retention pruned binlog segments older than the oldest kept dump', { segments: prune.length, oldestKeptDump: oldestKept.toISOString() });
    }
  } catch (error) {
    if (deps.signal?.aborted) throw error;
    report.errors.push(`segments on ${config.archiver.storage}: ${describeError(error)}`);
    deps.logger.error('retention could not prune binlog segments', { storage: config.archiver.storage, error: describeError(error) });
  } finally {
    await archive?.close?.();
  }
  return report;
}

async function deleteDump(storage: Storage, dump: DumpSummary, deps: RetentionDeps): Promise<void> {
  const manifest = await readDumpManifest(storage, dump.prefix, deps.signal);
  for (const file of manifest.files) {
    throwIfAborted(deps.signal);
    // a dump.json can only name files inside its own dump
    if (file.key.startsWith('/') || file.key.split('/').includes('..')) {
      throw new ManifestError(`${dump.prefix}/${DUMP_MANIFEST_NAME} lists ${JSON.stringify(file.key)}, outside its dump; nothing of it was deleted`, {
        hint: 'This dump.json was not written by mysql-archiver as it is; check it by hand before deleting anything.',
      });
    }
  }
  for (const file of manifest.files) {
    throwIfAborted(deps.signal);
    await deleteIfPresent(storage, `${dump.prefix}/${file.key}`);
  }
  const dumpJson = `${dump.prefix}/${DUMP_MANIFEST_NAME}`;
  await deleteIfPresent(storage, dumpJson);
  await deleteIfPresent(storage, recordKeyFor(dumpJson));
}

async function deleteSegment(storage: Storage, segment: SegmentEntry): Promise<void> {
  await deleteIfPresent(storage, segment.key);
  await deleteIfPresent(storage, recordKeyFor(segment.key));
}

async function deleteIfPresent(storage: Storage, key: string): Promise<void> {
  try {
    await storage.delete(key);
  } catch (error) {
    if (!(error instanceof StorageNotFoundError)) throw error;
  }
}

/** The configured storage, with `retention.credentials` instead of its own for S3. */
export async function openForDeletion(config: Config, name: string, env: NodeJS.ProcessEnv): Promise<Storage> {
  const base = config.storages[name] as StorageConfig;
  const credentials = config.retention?.credentials;
  const effective: StorageConfig = base.type === 's3' && credentials ? { ...base, credentials } : base;
  return openConfiguredStorage(name, effective, { env });
}
