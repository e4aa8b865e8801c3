/**
 * RDS calls for temporary instances: throttling retries, waiters with visible progress, and a
 * delete that keeps trying until the instance is really gone.
 *
 * Waiting uses the SDK's own waiters (waitUntilDBInstanceAvailable / Deleted: exponential backoff
 * between minDelay and maxDelay, failure states per the RDS model) through a thin client wrapper
 * that reports every state it sees, so the operator watches `creating → backing-up → available`.
 * An error no retry can cure (access denied, bad credentials) stops a waiter at once instead of
 * polling for hours.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  waitUntilDBInstanceAvailable,
  waitUntilDBInstanceDeleted,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { OperationAbortedError, RdsError, RdsInstanceFailedError, throwIfAborted } from '../../errors.js';
import type { Logger } from '../../ops/logger.js';

/** Anything with the RDS client's `send` (the real client, or a wrapper). */
export type RdsSender = Pick<RDSClient, 'send'> & { config?: unknown };

export interface RdsWaitOptions {
  /** seconds between polls at first (default 30, as the SDK) */
  minDelaySeconds?: number;
  /** longest pause between polls, seconds (default 120) */
  maxDelaySeconds?: number;
  /** give up waiting for `available` after this many seconds (default 4 h) */
  availableTimeoutSeconds?: number;
  /** give up waiting for the deletion after this many seconds (default 1 h) */
  deletedTimeoutSeconds?: number;
}

export interface RdsStateEvent {
  readonly instance: string;
  readonly state: string;
  readonly elapsedMs: number;
}

const THROTTLE_NAMES = new Set([
  'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottledException', 'RequestThrottled', 'RequestLimitExceeded',
  'TooManyRequestsException', 'SlowDown', 'PriorRequestNotComplete',
]);
const FATAL_NAMES = new Set([
  'AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnrecognizedClientException', 'InvalidClientTokenId',
  'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'AuthFailure', 'CredentialsProviderError', 'InvalidSignatureException',
]);

interface SdkErrorLike {
  name?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

export function errorName(error: unknown): string {
  return (error as SdkErrorLike | undefined)?.name ?? '';
}

export function httpStatus(error: unknown): number | undefined {
  return (error as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

export function isThrottle(error: unknown): boolean {
  const e = error as SdkErrorLike | undefined;
  return THROTTLE_NAMES.has(errorName(error)) || e?.$retryable?.throttling === true || httpStatus(error) === 429;
}

/** Errors no retry cures: credentials, permissions. */
export function isFatal(error: unknown): boolean {
  return FATAL_NAMES.has(errorName(error)) || httpStatus(error) === 403;
}

/** The request may or may not have been carried out (network error, 5xx). */
export function isAmbiguous(error: unknown): boolean {
  const status = httpStatus(error);
  return status === undefined || status >= 500;
}

/** A one-line description of an SDK error, without request ids or bodies. */
export function describeRdsError(error: unknown): string {
  const name = errorName(error);
  const message = error instanceof Error ? error.message : String(error);
  return name && !message.startsWith(name) ? `${name}: ${message}` : message;
}

export interface RdsCallContext {
  readonly rds: RdsSender;
  readonly logger: Logger;
  readonly wait: Required<RdsWaitOptions>;
  /** how many throttled attempts a single call accepts (default 8) */
  readonly maxAttempts?: number;
}

export function waitDefaults(w: RdsWaitOptions | undefined): Required<RdsWaitOptions> {
  return {
    minDelaySeconds: w?.minDelaySeconds ?? 30,
    maxDelaySeconds: w?.maxDelaySeconds ?? 120,
    availableTimeoutSeconds: w?.availableTimeoutSeconds ?? 4 * 3600,
    deletedTimeoutSeconds: w?.deletedTimeoutSeconds ?? 3600,
  };
}

/** Backoff between minDelay and maxDelay, with jitter: attempt 1 → ~min, then doubling. */
function backoffMs(wait: Required<RdsWaitOptions>, attempt: number): number {
  const min = wait.minDelaySeconds * 1000;
  const max = Math.max(min, wait.maxDelaySeconds * 1000);
  const ceiling = Math.min(max, min * 2 ** Math.max(0, attempt - 1));
  return min + Math.random() * (ceiling - min);
}

/**
 * Sends one command; throttling is retried with backoff (each attempt logged). Other errors are
 * thrown as they are. `signal` aborts the pauses, never a request in flight.
 */
export async function callRds<T>(ctx: RdsCallContext, what: string, send: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const maxAttempts = ctx.maxAttempts ?? 8;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal);
    try {
      return await send();
    } catch (error) {
      if (!isThrottle(error) || attempt >= maxAttempts) throw error;
      const pause = backoffMs(ctx.wait, attempt);
      ctx.logger.warn('rds throttled the request; retrying', { call: what, attempt, retryInMs: Math.round(pause) });
      await sleep(pause, signal);
    }
  }
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw new OperationAbortedError();
    throw error;
  }
}

/** DescribeDBInstances for one instance; undefined when it does not exist. */
export async function describeInstance(ctx: RdsCallContext, id: string, signal?: AbortSignal): Promise<DBInstance | undefined> {
  try {
    const out = await callRds(ctx, 'DescribeDBInstances', () => ctx.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })), signal);
    return out.DBInstances?.[0];
  } catch (error) {
    if (errorName(error) === 'DBInstanceNotFoundFault') return undefined;
    throw error;
  }
}

type Waiter = typeof waitUntilDBInstanceAvailable;

/**
 * Runs an SDK waiter while reporting the states it observes. Resolves with the last instance seen
 * (undefined once gone). Throws RdsInstanceFailedError for a failure state, RdsError on timeout or
 * a fatal error, OperationAbortedError when `signal` fires.
 */
async function runWaiter(
  ctx: RdsCallContext,
  waiter: Waiter,
  goal: 'available' | 'deleted',
  id: string,
  maxWaitSeconds: number,
  onState: ((event: RdsStateEvent) => void | Promise<void>) | undefined,
  signal: AbortSignal | undefined,
): Promise<DBInstance | undefined> {
  const started = Date.now();
  let last: DBInstance | undefined;
  let lastState: string | undefined;
  let fatal: unknown;
  const stop = new AbortController();
  const report = (state: string) => {
    const elapsedMs = Date.now() - started;
    if (state !== lastState) {
      ctx.logger.info('temporary instance state', { instance: id, state, elapsed: formatDuration(elapsedMs) });
      lastState = state;
    } else {
      ctx.logger.debug('temporary instance state unchanged', { instance: id, state, elapsed: formatDuration(elapsedMs) });
    }
    void Promise.resolve(onState?.({ instance: id, state, elapsedMs })).catch(() => undefined);
  };
  // the waiter only needs send(); this one watches every answer
  const observing = {
    config: (ctx.rds as { config?: unknown }).config ?? {},
    send: async (command: DescribeDBInstancesCommand) => {
      try {
        const out = await ctx.rds.send(command);
        last = out.DBInstances?.[0];
        report(last?.DBInstanceStatus ?? (goal === 'deleted' ? 'deleted' : 'unknown'));
        return out;
      } catch (error) {
        if (errorName(error) === 'DBInstanceNotFoundFault') {
          last = undefined;
          report(goal === 'deleted' ? 'deleted' : 'not-found');
        } else if (isThrottle(error)) {
          ctx.logger.warn('rds throttled a status poll; the waiter backs off', { instance: id });
        } else if (isFatal(error)) {
          fatal = error;
          stop.abort();
        } else {
          ctx.logger.warn('status poll failed; retrying', { instance: id, error: describeRdsError(error) });
        }
        throw error;
      }
    },
  };
  const abortSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  try {
    await waiter(
      {
        client: observing as unknown as RDSClient,
        minDelay: ctx.wait.minDelaySeconds,
        maxDelay: Math.max(ctx.wait.minDelaySeconds, ctx.wait.maxDelaySeconds),
        maxWaitTime: maxWaitSeconds,
        abortSignal,
      },
      { DBInstanceIdentifier: id },
    );
    return goal === 'deleted' ? undefined : last;
  } catch (error) {
    if (fatal !== undefined) {
      throw new RdsError(`cannot watch ${id}: ${describeRdsError(fatal)}`, {
        cause: fatal,
        hint: 'The AWS credentials lack rds:DescribeDBInstances (or are invalid/expired); fix the IAM policy or credentials.',
      });
    }
    if (signal?.aborted) throw new OperationAbortedError(`aborted while waiting for ${id} (${lastState ?? 'unknown state'})`);
    if (errorName(error) === 'TimeoutError') {
      throw new RdsError(`${id} is not ${goal} after ${formatDuration(maxWaitSeconds * 1000)} (last state: ${lastState ?? 'unknown'})`, {
        hint: `Check the instance in the RDS console; raise the wait limit for large instances.`,
      });
    }
    const state = last?.DBInstanceStatus ?? lastState ?? 'unknown';
    throw new RdsInstanceFailedError(id, state, `${id} went to state "${state}" while waiting for it to be ${goal}`, {
      hint:
        goal === 'available'
          ? 'RDS could not restore the instance (see its events in the RDS console: storage, parameter group, subnet group); the temporary instance is deleted.'
          : 'The instance left the deleting state; check it in the RDS console and run `mysql-archiver rds cleanup`.',
    });
  }
}

export function waitAvailable(
  ctx: RdsCallContext,
  id: string,
  onState?: (event: RdsStateEvent) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<DBInstance | undefined> {
  return runWaiter(ctx, waitUntilDBInstanceAvailable, 'available', id, ctx.wait.availableTimeoutSeconds, onState, signal);
}

/**
 * Deletes an instance (no final snapshot, automated backups too) and waits until it is gone.
 * States that refuse a delete for now (creating, modifying, backing-up...) are waited out and the
 * delete is sent again; an instance already gone counts as deleted. Never takes the caller's abort
 * signal: cleanup must run after Ctrl-C too.
 */
export async function deleteInstanceAndWait(
  ctx: RdsCallContext,
  id: string,
  onState?: (event: RdsStateEvent) => void | Promise<void>,
): Promise<void> {
  const deadline = Date.now() + ctx.wait.deletedTimeoutSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      await callRds(ctx, 'DeleteDBInstance', () =>
        ctx.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true, DeleteAutomatedBackups: true })),
      );
      ctx.logger.info('deleting temporary instance', { instance: id });
      break;
    } catch (error) {
      const name = errorName(error);
      if (name === 'DBInstanceNotFoundFault') return;
      if (name !== 'InvalidDBInstanceStateFault' && !(isAmbiguous(error) && !isFatal(error))) throw error;
      const current = await describeInstance(ctx, id).catch(() => undefined);
      if (current === undefined && name === 'InvalidDBInstanceStateFault') return;
      if (current?.DBInstanceStatus === 'deleting') break;
      if (Date.now() >= deadline) throw error;
      const pause = backoffMs(ctx.wait, attempt);
      ctx.logger.info('the instance cannot be deleted in its current state yet; retrying', {
        instance: id,
        state: current?.DBInstanceStatus ?? 'unknown',
        retryInMs: Math.round(pause),
      });
      await delay(pause);
    }
  }
  const remaining = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
  await runWaiter(ctx, waitUntilDBInstanceDeleted, 'deleted', id, remaining, onState, undefined);
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

