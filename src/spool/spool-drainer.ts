import { createReadStream } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { describeError, isAbortError } from '../errors.js';
import type { Manifest } from '../manifest/manifest.js';
import type { Logger } from '../ops/logger.js';
import type { Storage } from '../storage/storage.js';
import type { Spool, SpoolItem } from './spool.js';

/**
 * Empties the spool into one storage: oldest first, `concurrency` uploads in flight, each one
 * verified by the storage (size and sha256 against the descriptor), then recorded in the manifest,
 * then removed. A failing target only delays: the item stays and is tried again with a growing
 * pause (up to `maxRetryDelayMs`), forever; other items go on. A crash anywhere repeats at most
 * the last steps, which are idempotent (same key, same bytes; same manifest record).
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
  /** wakes the loop: an item was added */
  notify(): void;
  /** stops the loop; uploads in flight are abandoned (their items stay) */
  stop(): Promise<void>;
  /** resolves once the spool is empty (rejects on timeout) */
  waitIdle(timeoutMs?: number): Promise<void>;
}

export function createSpoolDrainer(options: SpoolDrainerOptions): SpoolDrainer {
  const clock = options.clock ?? Date.now;
  const failures = new Map<string, { count: number; notBefore: number }>();
  const inFlight = new Set<string>();
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;

  const uploadOne = async (item: SpoolItem): Promise<boolean> => {
    inFlight.add(item.id);
    try {
      const put = await options.storage.put(item.key, () => createReadStream(item.dataPath), {
        signal,
        sizeHint: item.size,
        expected: { size: item.size, sha256: item.sha256 },
      });
      const { kind, ...fields } = item.record;
      await options.manifest.recordObject(kind, put, fields);
      await options.spool.remove(item);
      failures.delete(item.id);
      options.logger.info('uploaded', { key: item.key, bytes: item.size, storage: options.storage.name });
      options.onUploaded?.(item);
      return true;
    } catch (error) {
      if (signal.aborted && isAbortError(error)) return false;
      const previous = failures.get(item.id)?.count ?? 0;
      const pause = Math.min((options.retryDelayMs ?? 1000) * 2 ** previous, options.maxRetryDelayMs ?? 300_000);
      failures.set(item.id, { count: previous + 1, notBefore: clock() + pause });
      options.logger.warn(`upload of ${item.key} to ${options.storage.name} failed; it stays in the spool and is retried in ${Math.round(pause / 1000)} s`, {
        error: describeError(error),
        attempt: previous + 1,
      });
      return false;
    } finally {
      inFlight.delete(item.id);
    }
  };

  const drainOnce = async (): Promise<DrainRound> => {
    const due = (await options.spool.list()).filter((i) => !inFlight.has(i.id) && (failures.get(i.id)?.notBefore ?? 0) <= clock());
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
    return { uploaded, failed, remaining: (await options.spool.list()).length };
  };

  const nextDueIn = (): number => {
    const now = clock();
    let soonest = options.pollMs ?? 5000;
    for (const f of failures.values()) soonest = Math.min(soonest, Math.max(0, f.notBefore - now));
    return soonest;
  };

  return {
    drainOnce,
    start() {
      loop ??= (async () => {
        while (!signal.aborted) {
          try {
            await drainOnce();
          } catch (error) {
            options.logger.warn('spool drain pass failed', { error: describeError(error) });
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, nextDueIn());
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
            signal.addEventListener('abort', wake, { once: true });
          });
          wake = undefined;
        }
      })();
    },
    notify() {
      wake?.();
    },
    async stop() {
      stopper.abort();
      wake?.();
      await loop;
    },
    async waitIdle(timeoutMs = 60_000) {
      const deadline = clock() + timeoutMs;
      while ((await options.spool.list()).length > 0) {
        if (clock() > deadline) throw new Error(`the spool still holds items after ${timeoutMs} ms`);
        await delay(50);
      }
    },
  };
}
