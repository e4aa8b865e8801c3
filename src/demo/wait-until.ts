import { setTimeout as delay } from 'node:timers/promises';
import { throwIfAborted } from '../errors.js';

export interface WaitUntilOptions {
  timeoutMs: number;
  intervalMs: number;
  /** named in the timeout error: "mariadbd on port 3306 to accept connections" */
  what: string;
  signal?: AbortSignal;
}

/**
 * Polls `fn` until it returns a truthy value without throwing. Readiness is a real condition
 * (a connection that succeeds), never a fixed sleep. An abort stops the wait at once.
 */
export async function waitUntil<T>(fn: () => T | Promise<T>, opts: WaitUntilOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  for (;;) {
    throwIfAborted(opts.signal);
    attempts++;
    try {
      const value = await fn();
      if (value) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now())), undefined, opts.signal ? { signal: opts.signal } : {});
  }
  const last = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`timed out after ${opts.timeoutMs} ms (${attempts} attempts) waiting for ${opts.what}${last}`, { cause: lastError });
}
