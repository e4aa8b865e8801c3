/**
 * The scheduled dumps as the daemon runs them: the tier scheduler wired to real dumps, the
 * manifest's last runs and retention after every run.
 */
import type { Schedule } from '../config/schedules.js';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { openStorage } from '../storage/registry.js';
import { lastDumpRuns } from './last-runs.js';
import { runRetention } from './retention.js';
import { runTierDump } from './run-tier-dump.js';
import { TierScheduler, type SchedulerTimers } from './tier-scheduler.js';
import { runDrill, type DrillResult } from '../restore/drill.js';

export interface DumpServiceDeps {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  readonly clock?: () => Date;
  readonly timers?: SchedulerTimers;
  readonly retryDelaysMs?: readonly number[];
  readonly onChange?: () => void;
  readonly onDrill?: (result: DrillResult) => void;
}

export function createDumpService(config: Config, schedules: readonly Schedule[], deps: DumpServiceDeps): TierScheduler {
  const clock = deps.clock ?? (() => new Date());
  return new TierScheduler({
    schedules,
    clock,
    logger: deps.logger,
    ...(deps.timers ? { timers: deps.timers } : {}),
    ...(deps.retryDelaysMs ? { retryDelaysMs: deps.retryDelaysMs } : {}),
    ...(deps.onChange ? { onChange: deps.onChange } : {}),
    lastRuns: (schedule) => lastDumpRuns(schedule, (name) => openStorage(name, config.storages[name]!, { env: deps.env }), deps.logger, deps.signal),
    async runTier(schedule, targets, reason, scheduledFor) {
      deps.logger.info('dump run starting', { tier: schedule.tier, targets, reason, scheduledFor: scheduledFor.toISOString() });
      const outcomes = await runTierDump(config, { ...schedule, targets }, { logger: deps.logger, signal: deps.signal, env: deps.env, clock });
      const ok = outcomes.filter((o) => o.ok).map((o) => o.target);
      const failed = outcomes.filter((o) => !o.ok).map((o) => o.target);
      deps.logger.info('dump run finished', { tier: schedule.tier, ok, failed });
      if (ok.length > 0) {
        try {
          const report = await runRetention(config, schedules, { logger: deps.logger, env: deps.env, signal: deps.signal, clock, dryRun: false });
          const deleted = report.dumps.filter((d) => d.deleted).length;
          if (deleted > 0 || report.segments.length > 0) deps.logger.info('retention done', { dumpsDeleted: deleted, segmentsDeleted: report.segments.length });
        } catch (error) {
          if (deps.signal.aborted) throw error;
          deps.logger.error('retention failed; nothing more was deleted', { error: describeError(error) });
        }
      }
      if (schedule.verify && ok.length > 0) {
        // the tier asks for proof that its dumps restore
        const drill = await runDrill(config, schedules, { logger: deps.logger, env: deps.env, signal: deps.signal, clock });
        deps.onDrill?.(drill);
      }
      return { ok, failed };
    },
  });
}
