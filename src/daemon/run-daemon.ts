import { mkdir, realpath } from 'node:fs/promises';
import { BinlogArchiver, type ArchiverStatus } from '../binlog/archiver.js';
import { describeGap } from '../binlog/continuity.js';
import { assertServerReady, checkServer } from '../binlog/preflight.js';
import { gapObjectKey, segmentRecord } from '../binlog/segment-record.js';
import type { Config } from '../config/schema.js';
import { connectSource } from '../db/connect.js';
import { sourceOptionsFromConfig } from '../db/source-from-config.js';
import type { SourceOptions } from '../db/source-options.js';
import { acquireInstanceLock } from '../fs/instance-lock.js';
import { describeError } from '../errors.js';
import { createManifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import { writeStatusFile } from '../ops/status-file.js';
import { openSpool } from '../spool/spool.js';
import { createSpoolDrainer } from '../spool/spool-drainer.js';
import { openStorage } from '../storage/registry.js';
import type { Schedule } from '../config/schedules.js';
import { createDumpService } from '../schedule/dump-service.js';
import type { SchedulerTimers, TierState } from '../schedule/tier-scheduler.js';

export interface DaemonDeps {
  logger: Logger;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  clock?: () => number;
  /** test seams: faster reconnects and heartbeats */
  archiverTuning?: { heartbeatMs?: number; backoff?: { minMs: number; maxMs: number }; pollMs?: number };
  statusEveryMs?: number;
  /** dump tiers to run on their schedules (none: binlog archiving only) */
  schedules?: readonly Schedule[];
  /** test seams for the schedules (their own clock, so simulated days leave the archiver's alone) */
  scheduleClock?: () => Date;
  scheduleTimers?: SchedulerTimers;
  scheduleRetryDelaysMs?: readonly number[];
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  updatedAt: string;
  /** set by a clean stop: the daemon is not running even though the file is fresh */
  stoppedAt?: string;
  archiver: ArchiverStatus;
  spool: { items: number; bytes: number; oldestEnqueuedAt?: number | undefined; full: boolean };
  lastShipped?: { key: string; size: number; at: number };
  /** the dump tiers: next run, last run, last success per target, retries */
  schedules?: TierState[];
}

/**
 * `mysql-archiver run`: the service. Refuses to start on a server that would be archived wrongly
 * (exit 2, nothing written), then runs the binlog archiver, whose sealed segments go through the
 * durable spool to the archive storage with a manifest record each. A storage that is down only
 * makes the spool grow; the archiver keeps reading. Stops cleanly when the signal aborts.
 */
export async function runDaemon(config: Config, deps: DaemonDeps): Promise<void> {
  const clock = deps.clock ?? Date.now;
  const source = await sourceOptionsFromConfig(config.source, deps.env);
  const conn = await connectSource(source);
  try {
    const report = await checkServer(conn, { serverId: config.source.serverId, role: 'archiver' });
    for (const warning of assertServerReady(report)) deps.logger.warn(`${warning.setting}: ${warning.problem}`, { fix: warning.fix });
  } finally {
    await conn.end().catch(() => undefined);
  }

  const { archiver: a } = config;
  // one daemon per state and spool directory (instance-lock.ts); refused with exit 2 before anything is written
  const locks = [await acquireInstanceLock(a.stateDir)];
  try {
    // by real path: a spool reached through a symlink may be the state directory itself
    await mkdir(a.spoolDir, { recursive: true });
    if ((await realpath(a.spoolDir)) !== (await realpath(a.stateDir))) locks.push(await acquireInstanceLock(a.spoolDir));
    await runLocked(config, deps, source, clock);
  } finally {
    for (const lock of locks.reverse()) await lock.release();
  }
}

async function runLocked(config: Config, deps: DaemonDeps, source: SourceOptions, clock: () => number): Promise<void> {
  const { archiver: a } = config;
  await mkdir(a.stateDir, { recursive: true });
  const storage = await openStorage(a.storage, config.storages[a.storage]!, { env: deps.env });
  const manifest = createManifest(storage, { clock: () => new Date(clock()) });
  let spoolFull = false;
  const spool = await openSpool({
    dir: a.spoolDir,
    maxBytes: a.spoolMaxBytes,
    logger: deps.logger,
    onAlarm: () => {
      spoolFull = true;
    },
  });
  let lastShipped: DaemonStatus['lastShipped'];
  const drainer = createSpoolDrainer({
    spool,
    storage,
    manifest,
    concurrency: a.uploadConcurrency,
    logger: deps.logger,
    signal: deps.signal,
    onUploaded: (item: { key: string; size: number }) => {
      lastShipped = { key: item.key, size: item.size, at: clock() };
    },
  });
  drainer.start();

  const archiver = new BinlogArchiver({
    source,
    stateDir: a.stateDir,
    maxSeconds: a.segment.maxSeconds,
    maxBytes: a.segment.maxBytes,
    logger: deps.logger,
    signal: deps.signal,
    clock,
    ...deps.archiverTuning,
    async sink(segment, checkpoint) {
      await spool.add(segment.path, {
        key: segment.name,
        size: segment.size,
        sha256: segment.sha256,
        record: { ...segmentRecord(segment, checkpoint.epoch, checkpoint.serverUuid) },
      });
      spoolFull = false;
      drainer.notify();
    },
    async onGap(gap) {
      const detectedAt = new Date(clock());
      await spool.addBuffer(Buffer.from(`${JSON.stringify({ ...gap, detectedAt: detectedAt.toISOString(), text: describeGap(gap) }, null, 1)}\n`), {
        key: gapObjectKey(gap, detectedAt),
        record: { kind: 'binlog-gap', source: gap.source, reason: gap.reason, from: gap.from, to: gap.to, detail: gap.detail, needsFullDump: true },
      });
      drainer.notify();
    },
  });

  const dumps =
    deps.schedules && deps.schedules.length > 0
      ? createDumpService(config, deps.schedules, {
          logger: deps.logger,
          signal: deps.signal,
          env: deps.env,
          clock: deps.scheduleClock ?? (() => new Date(clock())),
          ...(deps.scheduleTimers ? { timers: deps.scheduleTimers } : {}),
          ...(deps.scheduleRetryDelaysMs ? { retryDelaysMs: deps.scheduleRetryDelaysMs } : {}),
          onChange: () => void writeStatus().catch(() => undefined),
        })
      : undefined;

  const startedAt = new Date(clock()).toISOString();
  let stoppedAt: string | undefined;
  const writeStatus = async () => {
    const stats = await spool.stats();
    const doc: DaemonStatus = {
      pid: process.pid,
      startedAt,
      updatedAt: new Date(clock()).toISOString(),
      archiver: archiver.status,
      spool: { ...stats, full: spoolFull },
      ...(lastShipped ? { lastShipped } : {}),
      ...(stoppedAt ? { stoppedAt } : {}),
      ...(dumps ? { schedules: dumps.states() } : {}),
    };
    await writeStatusFile(a.stateDir, doc);
  };
  const statusTimer = setInterval(() => {
    writeStatus().catch((error) => deps.logger.debug('could not write the status file', { error: describeError(error) }));
  }, deps.statusEveryMs ?? 5_000);
  try {
    await writeStatus();
    // the dumps run beside the archiver; a failing dump never stops binlog archiving
    await dumps?.start().catch((error) => deps.logger.error('could not start the dump schedules', { error: describeError(error) }));
    await archiver.run();
  } finally {
    clearInterval(statusTimer);
    await dumps?.stop();
    await drainer.stop();
    stoppedAt = new Date(clock()).toISOString();
    await writeStatus().catch(() => undefined);
    await storage.close?.().catch(() => undefined);
  }
}
