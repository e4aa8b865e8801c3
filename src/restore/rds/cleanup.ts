/**
 * `mysql-archiver rds cleanup`: finds temporary restore instances left behind (by their tags
 * tool=mysql-archiver and purpose=table-restore, never by name) and deletes them without a final
 * snapshot. Instances younger than `olderThanMs` are left alone, so a restore in progress survives.
 */
import { DescribeDBInstancesCommand, type DBInstance, type RDSClient } from '@aws-sdk/client-rds';
import { RdsCleanupError, throwIfAborted } from '../../errors.js';
import { createSilentLogger, type Logger } from '../../ops/logger.js';
import { isRestoreInstance, tagMap, TAG_EXPIRES_AT, TAG_REQUESTED_BY, TAG_SOURCE } from './names.js';
import { callRds, deleteInstanceAndWait, describeRdsError, waitDefaults, type RdsCallContext, type RdsWaitOptions } from './rds-ops.js';

export interface RdsCleanupOptions {
  readonly rds: RDSClient | Pick<RDSClient, 'send'>;
  /** only instances created longer ago than this; default: all of them */
  readonly olderThanMs?: number;
  readonly dryRun: boolean;
  readonly clock?: () => Date;
  readonly logger?: Logger;
  readonly wait?: RdsWaitOptions;
  /** stops the listing; deletions already sent are still waited for */
  readonly signal?: AbortSignal;
}

export interface LeftoverInstance {
  readonly instance: string;
  readonly state: string;
  readonly createdAt: Date | undefined;
  readonly expiresAt: string | undefined;
  readonly requestedBy: string | undefined;
  readonly sourceInstance: string | undefined;
}

export interface RdsCleanupResult {
  /** tagged instances old enough to delete */
  readonly found: readonly LeftoverInstance[];
  /** tagged instances left alone, with the reason */
  readonly skipped: readonly { readonly instance: string; readonly reason: string }[];
  readonly deleted: readonly string[];
  readonly dryRun: boolean;
}

export async function rdsCleanup(opts: RdsCleanupOptions): Promise<RdsCleanupResult> {
  const logger = opts.logger ?? createSilentLogger();
  const clock = opts.clock ?? (() => new Date());
  const ctx: RdsCallContext = { rds: opts.rds, logger, wait: waitDefaults(opts.wait) };
  const all: DBInstance[] = [];
  let marker: string | undefined;
  do {
    throwIfAborted(opts.signal);
    const page = await callRds(ctx, 'DescribeDBInstances', () =>
      opts.rds.send(new DescribeDBInstancesCommand({ MaxRecords: 100, ...(marker ? { Marker: marker } : {}) })),
    opts.signal);
    all.push(...(page.DBInstances ?? []));
    marker = page.Marker;
  } while (marker);

  const cutoff = opts.olderThanMs === undefined ? undefined : clock().getTime() - opts.olderThanMs;
  const found: LeftoverInstance[] = [];
  const skipped: { instance: string; reason: string }[] = [];
  for (const inst of all) {
    const tags = tagMap(inst.TagList);
    if (!isRestoreInstance(tags) || !inst.DBInstanceIdentifier) continue;
    const info: LeftoverInstance = {
      instance: inst.DBInstanceIdentifier,
      state: inst.DBInstanceStatus ?? 'unknown',
      createdAt: inst.InstanceCreateTime,
      expiresAt: tags[TAG_EXPIRES_AT],
      requestedBy: tags[TAG_REQUESTED_BY],
      sourceInstance: tags[TAG_SOURCE],
    };
    if (cutoff !== undefined && inst.InstanceCreateTime && inst.InstanceCreateTime.getTime() > cutoff) {
      skipped.push({ instance: info.instance, reason: `created ${inst.InstanceCreateTime.toISOString()}, younger than the --older-than limit (a restore may still be using it)` });
      continue;
    }
    found.push(info);
  }
  for (const s of skipped) logger.info('leaving a recent restore instance alone', s);
  for (const f of found) logger.info(opts.dryRun ? 'would delete leftover restore instance' : 'deleting leftover restore instance', { ...f });
  if (opts.dryRun || found.length === 0) return { found, skipped, deleted: [], dryRun: opts.dryRun };

  const results = await Promise.allSettled(found.map((f) => deleteInstanceAndWait(ctx, f.instance)));
  const deleted: string[] = [];
  const failed: { instance: string; error: unknown }[] = [];
  results.forEach((r, i) => {
    const instance = (found[i] as LeftoverInstance).instance;
    if (r.status === 'fulfilled') deleted.push(instance);
    else failed.push({ instance, error: r.reason });
  });
  for (const d of deleted) logger.info('leftover restore instance deleted', { instance: d });
  if (failed.length > 0) {
    for (const f of failed) logger.error('could not delete leftover restore instance', { instance: f.instance, error: describeRdsError(f.error) });
    throw new RdsCleanupError(
      failed.map((f) => f.instance),
      `could not delete ${failed.length} temporary RDS instance(s): ${failed.map((f) => `${f.instance} (${describeRdsError(f.error)})`).join(', ')}`,
      {
        cause: failed[0]?.error,
        hint: 'They are still running and cost money: check that the credentials allow rds:DeleteDBInstance, then run `mysql-archiver rds cleanup` again, or delete them in the RDS console.',
      },
    );
  }
  return { found, skipped, deleted, dryRun: false };
}
