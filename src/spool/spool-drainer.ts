import { setTimeout as delay } from 'node:timers/promises';
import { ManifestError, RetryExhaustedError, StorageError, StorageNotFoundError, VerificationError, describeError, isAbortError } from '../errors.js';
import { hashFile } from '../fs/hash-file.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import { fileSource } from '../storage/file-source.js';
import { isRetryable } from '../storage/retrying-storage.js';
import type { Storage } from '../storage/storage.js';
import type { Spool, SpoolItem } from './spool.js';

/**
 * Empties the spool into one storage: oldest first, `concurrency` uploads in flight, each one
 * verified by the storage (size and sha256 against the descriptor), then recorded in the manifest,
 * then removed. A failing target only delays: the item stays and is tried again with a growing
 * pause (up to `maxRetryDelayMs`), forever; other items go on. A crash anywhere repeats at most
 * the last steps, which are idempotent: an item whose record already exists with the same size and
 * sha256, and whose object is there, is only removed; otherwise the same bytes are put again and
 * the same record appended (a no-op). An existing record with other bytes is never overwritten:
 * the item stays, and the conflict is logged as an error on every attempt.
 */
export interface SpoolDrainerOptions {
  spool: Spool;
  storage: Storage;
  manifest: Manifest;
  concurrency: number;
  logger: Logger;
  signal?: AbortSignal;
  /** first pause after a failed upload; doubles per failure of that item. Default 1 s */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** how often the loop looks at the spool without a notify(). Default 5 s */
  pollMs?: number;
  onUploaded?: (item: SpoolItem) => void;
  clock?: () => number;
}

export interface DrainRound {
  uploaded: number;
  failed: number;
  /** items left in the spool */
  remaining: number;
}

export interface SpoolDrainer {
  /** one pass over the items due now; resolves when they are uploaded or have failed */
  drainOnce(): Promise<DrainRound>;
  /** the background loop for the daemon */
  start(): void;
  /** wakes the loop: an item was added (a wake-up during a pass starts another pass right after it) */
  notify(): void;
  /** stops the loop; uploads in flight are abandoned (their items stay) */
  stop(): Promise<void>;
  /** resolves once the spool is empty (rejects on timeout) */
  waitIdle(timeoutMs?: number): Promise<void>;
}

export function createSpoolDrainer(options: SpoolDrainerOptions): SpoolDrainer {
  const clock = options.clock ?? Date.now;
  const { spool, storage, manifest, logger } = options;
  const failures = new Map<string, { count: number; notBefore: number }>();
  const inFlight = new Set<string>();
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal;
  let wake: (() => void) | undefined;
  let woken = false;
  let loop: Promise<void> | undefined;

  /** true when the object is already archived and recorded with these bytes (an earlier run crashed before remove) */
  const alreadyArchived = async (item: SpoolItem): Promise<boolean> => {
    const existing = await manifest.recordFor(item.key, { signal });
    if (!existing) return false;
    if (existing.size !== item.size || existing.sha256 !== item.sha256) {
      throw new ManifestError(
        `${storage.name}: ${item.key} is already recorded with other bytes (${String(existing.size)} bytes, sha256 ${String(existing.sha256)}; this item: ${item.size} bytes, sha256 ${item.sha256}); not overwriting it`,
        { hint: `Two writers may share this prefix, or the producer reused a key. The item stays in the spool (${spool.dir}); compare both copies before removing either.` },
      );
    }
    const info = await storage.head(item.key, { signal }).catch((error) => {
      if (error instanceof StorageNotFoundError) return undefined;
      throw error;
    });
    return info !== undefined && info.size === item.size && (info.sha256 === undefined || info.sha256 === item.sha256);
  };

  /** after a verification failure: is it our copy that is damaged (then no retry can help)? */
  const localDamage = async (item: SpoolItem): Promise<string | undefined> => {
    try {
      const actual = await hashFile(item.dataPath);
      if (actual.size !== item.size || actual.sha256 !== item.sha256) return `its data file now has ${actual.size} bytes, sha256 ${actual.sha256}; the descriptor says ${item.size} bytes, sha256 ${item.sha256}`;
      return undefined;
    } catch (error) {
      return `its data file cannot be read: ${describeError(error)}`;
    }
  };

  const uploadOne = async (item: SpoolItem): Promise<boolean> => {
    inFlight.add(item.id);
    try {
      if (!(await alreadyArchived(item))) {
        const put = await storage.put(item.key, fileSource(item.dataPath), {
          signal,
          sizeHint: item.size,
          expected: { size: item.size, sha256: item.sha256 },
        });
        const { kind, ...fields } = item.record;
        await manifest.recordObject(kind, put, fields);
      } else {
        logger.info('already archived and recorded (an earlier run stopped before removing it)', { key: item.key });
      }
      await spool.remove(item);
      failures.delete(item.id);
      logger.info('uploaded', { key: item.key, bytes: item.size, storage: storage.name });
      options.onUploaded?.(item);
      return true;
    } catch (error) {
      if (signal.aborted && isAbortError(error)) return false;
      if (error instanceof VerificationError) {
        const damage = await localDamage(item);
        if (damage) {
          failures.delete(item.id);
          await spool.quarantine(item, damage);
          return false;
        }
      }
      const previous = failures.get(item.id)?.count ?? 0;
      const pause = Math.min((options.retryDelayMs ?? 1000) * 2 ** previous, options.maxRetryDelayMs ?? 300_000);
      failures.set(item.id, { count: previous + 1, notBefore: clock() + pause });
      // a target that is down is expected to come back; a conflict or a permanent error needs a person
      const needsPerson = error instanceof ManifestError || (error instanceof StorageError && !error.retryable && !(error instanceof RetryExhaustedError && isRetryable(error.cause)));
      const log = needsPerson ? logger.error.bind(logger) : logger.warn.bind(logger);
      log(`upload of ${item.key} to ${storage.name} failed; it stays in the spool and is retried in ${Math.round(pause / 1000)} s`, {
        error: describeError(error),
        attempt: previous + 1,
        ...(error instanceof ManifestError && error.hint ? { hint: error.hint } : {}),
      });
      return false;
    } finally {
      inFlight.delete(item.id);
    }
  };

  const drainOnce = async (): Promise<DrainRound> => {
    const due = (await spool.list()).filter((i) => !inFlight.has(i.id) && (failures.get(i.id)?.notBefore ?? 0) <= clock());
    let uploaded = 0;
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < due.length && !signal.aborted) {
        const item = due[next++]!;
        if (await uploadOne(item)) uploaded++;
        else failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
    return { uploaded, failed, remaining: (await spool.list()).length };
  };

  const nextDueIn = (): number => {
    const now = clock();
    let soonest = options.pollMs ?? 5000;
    for (const f of failures.values()) soonest = Math.min(soonest, Math.max(0, f.notBefore - now));
    return soonest;
  };

  const sleepUntilWoken = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      if (woken || signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        wake = undefined;
        resolve();
      }
      wake = done;
      signal.addEventListener('abort', done, { once: true });
    });

  return {
    drainOnce,
    start() {
      loop ??= (async () => {
        while (!signal.aborted) {
          woken = false;
          try {
            await drainOnce();
          } catch (error) {
            logger.warn('spool drain pass failed', { error: describeError(error) });
          }
          await sleepUntilWoken(nextDueIn());
        }
      })();
    },
    notify() {
      woken = true;
      wake?.();
    },
    async stop() {
      stopper.abort();
      wake?.();
      await loop;
    },
    async waitIdle(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await spool.list()).length > 0) {
        if (Date.now() > deadline) throw new Error(`the spool still holds items after ${timeoutMs} ms`);
        await delay(50);
      }
    },
  };
}
