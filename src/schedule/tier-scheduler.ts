/**
 * Runs each dump tier at its cron times inside the daemon, with the clock and timers passed in so
 * tests drive years of schedules in seconds.
 *
 * - Catch-up: at start, a tier whose latest scheduled time passed after its last successful dump
 *   (read from the manifest in storage, never from memory) runs once, however many times were
 *   missed. A tier that never ran anywhere waits for its first scheduled time.
 * - No overlap: a tier that is still running (or waiting for another tier to finish) skips a
 *   scheduled time and says so. Runs of different tiers go one at a time, so two dumps never
 *   load the server together.
 * - A target that failed is retried on its own with backoff until it lands or the next scheduled
 *   run covers it; the other targets are not run again.
 * - Timers wake at most daily and re-read the clock, so long waits and clock changes are safe.
 */
import type { Schedule } from '../config/schedules.js';
import { describeError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { cronCalendar, type CronCalendar } from './cron-calendar.js';

export interface SchedulerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type RunReason = 'scheduled' | 'catch-up' | 'retry';

export interface TierRunResult {
  readonly ok: readonly string[];
  readonly failed: readonly string[];
}

export interface TierSchedulerOptions {
  readonly schedules: readonly Schedule[];
  readonly clock: () => Date;
  readonly timers?: SchedulerTimers;
  readonly logger: Logger;
  /** when each target last got a complete dump of the tier (undefined: never; null or a throw: unknown) */
  lastRuns(schedule: Schedule): Promise<Map<string, Date | undefined | null>>;
  /** one run of the tier to these targets */
  runTier(schedule: Schedule, targets: readonly string[], reason: RunReason, scheduledFor: Date): Promise<TierRunResult>;
  /** waits before retrying failed targets (the last one repeats); default 5 min, 15 min, 30 min, 1 h */
  readonly retryDelaysMs?: readonly number[];
  /** called when a tier's state changes (status file) */
  onChange?(): void;
}

export interface TierState {
  readonly tier: string;
  readonly cron: string;
  readonly timezone: string;
  readonly targets: readonly string[];
  nextRunAt: string | undefined;
  running: boolean;
  lastRun?: { scheduledFor: string; reason: RunReason; startedAt: string; finishedAt?: string; ok: string[]; failed: string[]; error?: string };
  lastSuccess: Record<string, string | undefined>;
  retry?: { at: string; targets: string[]; attempt: number };
  skipped: number;
}

const MAX_TIMER_MS = 86_400_000;
const DEFAULT_RETRY_MS = [300_000, 900_000, 1_800_000, 3_600_000];

interface Tier {
  schedule: Schedule;
  calendar: CronCalendar;
  state: TierState;
  timer?: unknown;
  retryTimer?: unknown;
  /** queued or running */
  busy: boolean;
}

export class TierScheduler {
  readonly #o: TierSchedulerOptions;
  readonly #timers: SchedulerTimers;
  readonly #tiers: Tier[];
  /** runs of all tiers go through here one at a time */
  #queue: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(options: TierSchedulerOptions) {
    this.#o = options;
    this.#timers = options.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
    this.#tiers = options.schedules.map((schedule) => ({
      schedule,
      calendar: cronCalendar(schedule.cron, schedule.timezone),
      busy: false,
      state: {
        tier: schedule.tier,
        cron: schedule.cron,
        timezone: schedule.timezone,
        targets: schedule.targets,
        nextRunAt: undefined,
        running: false,
        lastSuccess: Object.fromEntries(schedule.targets.map((t) => [t, undefined])),
        skipped: 0,
      },
    }));
  }

  /** Reads the last runs, starts catch-up runs where a scheduled time was missed, arms the timers. */
  async start(): Promise<void> {
    const now = this.#o.clock();
    for (const tier of this.#tiers) {
      const due = await this.#missedTargets(tier, now);
      if (due.targets.length > 0 && due.scheduledFor) {
        this.#o.logger.info('catching up a missed dump run', { tier: tier.schedule.tier, missed: due.scheduledFor.toISOString(), targets: due.targets });
        this.#enqueue(tier, due.targets, 'catch-up', due.scheduledFor);
      }
      this.#arm(tier, tier.calendar.next(now));
    }
    this.#o.onChange?.();
  }

  /** Stops the timers and waits for runs in progress (their own signal stops them sooner). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const tier of this.#tiers) {
      if (tier.timer !== undefined) this.#timers.clearTimeout(tier.timer);
      if (tier.retryTimer !== undefined) this.#timers.clearTimeout(tier.retryTimer);
    }
    await Promise.allSettled([...this.#inFlight]);
  }

  states(): TierState[] {
    return this.#tiers.map((t) => structuredClone(t.state));
  }

  /** Resolves when no run is queued or running (tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #missedTargets(tier: Tier, now: Date): Promise<{ targets: string[]; scheduledFor?: Date }> {
    const latest = tier.calendar.previous(now);
    let last: Map<string, Date | undefined | null>;
    try {
      last = await this.#o.lastRuns(tier.schedule);
    } catch (error) {
      // unknown is treated as missed: an extra dump costs less than a missing one
      this.#o.logger.warn('could not read the last dump runs; running the tier to be safe', { tier: tier.schedule.tier, error: describeError(error) });
      return latest ? { targets: [...tier.schedule.targets], scheduledFor: latest } : { targets: [] };
    }
    for (const [target, at] of last) if (at) tier.state.lastSuccess[target] = at.toISOString();
    const everRan = [...last.values()].some((d) => d instanceof Date);
    if (!latest) return { targets: [] };
    const targets = tier.schedule.targets.filter((t) => {
      const at = last.get(t);
      // unknown is treated as missed: an extra dump costs less than a missing one
      if (at === null) return true;
      return everRan && (at === undefined || at.getTime() < latest.getTime());
    });
    return { targets, scheduledFor: latest };
  }

  #arm(tier: Tier, at: Date | undefined): void {
    if (this.#stopped) return;
    if (tier.timer !== undefined) this.#timers.clearTimeout(tier.timer);
    tier.timer = undefined;
    tier.state.nextRunAt = at?.toISOString();
    if (!at) return;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, at.getTime() - this.#o.clock().getTime()));
    tier.timer = this.#timers.setTimeout(() => this.#wake(tier, at), wait);
  }

  #wake(tier: Tier, at: Date): void {
    tier.timer = undefined;
    if (this.#stopped) return;
    const now = this.#o.clock();
    if (now.getTime() < at.getTime()) {
      this.#arm(tier, at);
      return;
    }
    // asleep past several scheduled times (suspend, clock jump): one run for the latest of them
    const latest = tier.calendar.previous(now) ?? at;
    const scheduledFor = latest.getTime() > at.getTime() ? latest : at;
    if (tier.busy) {
      tier.state.skipped++;
      this.#o.logger.warn('skipping a scheduled dump: the previous run of this tier is still going', { tier: tier.schedule.tier, scheduledFor: scheduledFor.toISOString() });
    } else {
      this.#enqueue(tier, tier.schedule.targets, 'scheduled', scheduledFor);
    }
    this.#arm(tier, tier.calendar.next(now));
    this.#o.onChange?.();
  }

  #enqueue(tier: Tier, targets: readonly string[], reason: RunReason, scheduledFor: Date): void {
    tier.busy = true;
    if (reason !== 'retry' && tier.retryTimer !== undefined) {
      // a full run covers the targets waiting for a retry
      this.#timers.clearTimeout(tier.retryTimer);
      tier.retryTimer = undefined;
      delete tier.state.retry;
    }
    const run = (this.#queue = this.#queue.then(() => this.#run(tier, targets, reason, scheduledFor)));
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
  }

  async #run(tier: Tier, targets: readonly string[], reason: RunReason, scheduledFor: Date): Promise<void> {
    if (this.#stopped) {
      tier.busy = false;
      return;
    }
    const startedAt = this.#o.clock();
    tier.state.running = true;
    tier.state.lastRun = { scheduledFor: scheduledFor.toISOString(), reason, startedAt: startedAt.toISOString(), ok: [], failed: [] };
    this.#o.onChange?.();
    let result: TierRunResult;
    try {
      result = await this.#o.runTier(tier.schedule, targets, reason, scheduledFor);
    } catch (error) {
      result = { ok: [], failed: [...targets] };
      tier.state.lastRun.error = describeError(error);
      this.#o.logger.error('dump run failed', { tier: tier.schedule.tier, error: describeError(error) });
    }
    const finishedAt = this.#o.clock();
    tier.state.running = false;
    tier.busy = false;
    tier.state.lastRun = { ...tier.state.lastRun, finishedAt: finishedAt.toISOString(), ok: [...result.ok], failed: [...result.failed] };
    for (const t of result.ok) tier.state.lastSuccess[t] = startedAt.toISOString();
    if (result.failed.length > 0) this.#scheduleRetry(tier, result.failed, scheduledFor);
    else delete tier.state.retry;
    this.#o.onChange?.();
  }

  #scheduleRetry(tier: Tier, failed: readonly string[], scheduledFor: Date): void {
    if (this.#stopped) return;
    const attempt = (tier.state.retry?.attempt ?? 0) + 1;
    const delays = this.#o.retryDelaysMs ?? DEFAULT_RETRY_MS;
    const delay = delays[Math.min(attempt - 1, delays.length - 1)] as number;
    const at = new Date(this.#o.clock().getTime() + delay);
    const next = tier.state.nextRunAt ? Date.parse(tier.state.nextRunAt) : Infinity;
    if (at.getTime() >= next) {
      delete tier.state.retry;
      this.#o.logger.warn('failed targets wait for the next scheduled run', { tier: tier.schedule.tier, targets: failed, next: tier.state.nextRunAt });
      return;
    }
    tier.state.retry = { at: at.toISOString(), targets: [...failed], attempt };
    this.#o.logger.warn('dump targets failed; retrying them', { tier: tier.schedule.tier, targets: failed, at: at.toISOString(), attempt });
    const fire = () => {
      tier.retryTimer = undefined;
      if (this.#stopped) return;
      if (this.#o.clock().getTime() < at.getTime()) {
        tier.retryTimer = this.#timers.setTimeout(fire, Math.min(MAX_TIMER_MS, at.getTime() - this.#o.clock().getTime()));
        return;
      }
      if (tier.busy) return;
      this.#enqueue(tier, failed, 'retry', scheduledFor);
    };
    tier.retryTimer = this.#timers.setTimeout(fire, delay);
  }
}
