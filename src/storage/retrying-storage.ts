import { StorageNotFoundError, RetryExhaustedError, StorageError, isAbortError, throwIfAborted } from '../errors.js';
import type { ByteSource, ObjectInfo, OpOptions, PutOptions, PutResult, Storage } from './storage.js';

export interface RetryOptions {
  /** total attempts, the first included */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** a server's Retry-After is honoured up to this long; beyond it the attempt counts as failed */
  maxRetryAfterMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  storage: string;
  operation: string;
  attempt: number;
  delayMs: number;
  error: unknown;
}

export const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Only storage errors a driver marked retryable are worth another attempt; anything else is a bug or permanent. */
export function isRetryable(error: unknown): boolean {
  return error instanceof StorageError && error.retryable && !isAbortError(error);
}

/**
 * Decorates a storage with retries: exponential backoff with full jitter, at least the server's
 * Retry-After, never for permanent errors or aborted calls. Each put attempt calls the source
 * factory again, so the bytes are re-read from the start. When every attempt fails, the error
 * lists all of them.
 */
export function withRetry(inner: Storage, options: RetryOptions = {}): Storage {
  const sleep = options.sleep ?? defaultSleep;
  const policy = retryPolicy(inner.name, options);

  async function attempt<T>(operation: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const failures: Failure[] = [];
    for (;;) {
      throwIfAborted(signal);
      try {
        return await fn();
      } catch (error) {
        await sleep(policy.afterFailure(operation, error, failures, signal), signal);
      }
    }
  }

  /**
   * A listing that fails part-way is restarted and resumes after the last key it yielded: keys
   * come in ascending order, so nothing is yielded twice or skipped.
   */
  async function* list(prefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    const failures: Failure[] = [];
    let last: string | undefined;
    for (;;) {
      throwIfAborted(opts?.signal);
      try {
        for await (const info of inner.list(prefix, opts)) {
          if (last !== undefined && info.key <= last) continue;
          last = info.key;
          yield info;
        }
        return;
      } catch (error) {
        await sleep(policy.afterFailure(`list ${prefix}`, error, failures, opts?.signal), opts?.signal);
      }
    }
  }

  return {
    name: inner.name,
    capabilities: inner.capabilities,
    put: (key: string, source: ByteSource, opts?: PutOptions): Promise<PutResult> =>
      attempt(`put ${key}`, opts?.signal, () => inner.put(key, source, opts)),
    get: (key: string, opts?: OpOptions) => attempt(`get ${key}`, opts?.signal, () => inner.get(key, opts)),
    head: (key: string, opts?: OpOptions) => attempt(`head ${key}`, opts?.signal, () => inner.head(key, opts)),
    delete: (key: string, opts?: OpOptions) => attempt(`delete ${key}`, opts?.signal, () => inner.delete(key, opts)),
    list,
    ...(inner.close ? { close: () => inner.close!() } : {}),
  } satisfies Storage;
}

type Failure = { error: unknown; atMs: number };

/** Decides, after each failure, whether to give up (throws) or how long to wait before the next attempt. */
function retryPolicy(storage: string, options: RetryOptions) {
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 300_000;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  return {
    afterFailure(operation: string, error: unknown, failures: Failure[], signal: AbortSignal | undefined): number {
      failures.push({ error, atMs: now() });
      const n = failures.length;
      const retryAfter = error instanceof StorageError ? error.retryAfterMs : undefined;
      const giveUp =
        !isRetryable(error) || signal?.aborted === true || n >= maxAttempts || (retryAfter ?? 0) > maxRetryAfterMs;
      if (giveUp) {
        // a permanent answer is the answer, whatever failed before it: callers test for its type
        // (an object not found after a dropped connection is still "not found", not "exhausted")
        if (n === 1 || error instanceof StorageNotFoundError) throw error;
        throw new RetryExhaustedError(`${storage}: ${operation}`, failures);
      }
      const backoff = Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1)));
      const delayMs = Math.max(backoff, retryAfter ?? 0);
      options.onRetry?.({ storage, operation, attempt: n, delayMs, error });
      return delayMs;
    },
  };
}
