import { setTimeout as delay } from 'node:timers/promises';

export interface WaitForOptions {
  /** give up after this long (default 10 000 ms) */
  timeoutMs?: number;
  /** pause between attempts (default 50 ms) */
  intervalMs?: number;
  /** what is being waited for, named in the timeout error ("mariadbd on port 3306 to accept connections") */
  what: string;
}

/**
 * Polls `fn` until it returns a truthy value without throwing, and resolves with that value.
 * A throw or a falsy result means "not yet". An assertion-style callback must therefore end with
 * `return true`: a void callback returns undefined and would never count as done.
 * On timeout it throws an Error naming `what` and the last error (or the last falsy value).
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  let lastValue: unknown;
  let threw = false;
  for (;;) {
    attempts++;
    try {
      const value = await fn();
      if (value) return value;
      threw = false;
      lastValue = value;
    } catch (error) {
      threw = true;
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const last = threw
    ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
    : `last result: ${String(lastValue)}${lastValue === undefined ? ' (return true from assertion callbacks)' : ''}`;
  throw new Error(`timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${opts.what}; ${last}`, {
    cause: threw ? lastError : undefined,
  });
}
