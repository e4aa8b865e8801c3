/**
 * `restore table DB.TABLE --at TIME --from rds`: an Amazon RDS point-in-time restore of the source
 * instance into a temporary instance, the table's rows copied out of it, and the instance deleted.
 *
 * Order matters: everything that can be checked without creating anything is checked first (the
 * restore window, the temporary name, the destination table or file, the target login), and each
 * of those failures is a usage error (exit 2) with nothing created. From the moment the restore is
 * requested, the temporary instance is deleted on success, on any failure and on abort, unless
 * `keepInstance`; when the deletion itself fails the error names the instance and says that
 * `mysql-archiver rds cleanup` removes it.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeDBInstanceAutomatedBackupsCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { Connection } from 'mysql2/promise';
import { connectSource } from '../../db/connect.js';
import type { SourceOptions, SourceTlsOptions } from '../../db/source-options.js';
import {
  ArchiverError,
  ConfigError,
  OperationAbortedError,
  RdsCleanupError,
  RdsError,
  RdsInstanceExistsError,
  RdsRestoreWindowError,
  SourceConnectionError,
  UsageError,
  describeError,
  isAbortError,
  throwIfAborted,
} from '../../errors.js';
import { createSilentLogger, type Logger } from '../../ops/logger.js';
import { registerSecret } from '../../ops/redact.js';
import { checkCopyTarget, copyTable, describeTarget, type CopyProgress, type CopyTarget, type TableRef } from '../table-copy/index.js';
import { formatInZone } from '../../time/wall-clock.js';
import { restoreTags, restoredTableName, tagMap, tempInstanceName, TAG_RUN_ID } from './names.js';
import {
  callRds,
  deleteInstanceAndWait,
  describeInstance,
  describeRdsError,
  errorName,
  formatDuration,
  isAmbiguous,
  isFatal,
  waitAvailable,
  waitDefaults,
  type RdsCallContext,
  type RdsStateEvent,
  type RdsWaitOptions,
} from './rds-ops.js';

/** The `rds` section of the configuration. */
export interface RdsRestoreConfig {
  /** AWS region of the source instance (the client is built with it) */
  readonly region?: string;
  /** DBInstanceIdentifier of the instance to restore from */
  readonly sourceInstance: string;
  /** class of the temporary instance; default: the source's class */
  readonly instanceClass?: string;
  readonly subnetGroup?: string;
  readonly securityGroups?: readonly string[];
  readonly parameterGroup?: string;
  /** PEM CA bundle (the RDS global bundle): connect to the temporary instance over verified TLS */
  readonly caBundle?: string;
  /** default false: the temporary instance gets no public address */
  readonly publiclyAccessible?: boolean;
  /** extra tags for the temporary instance (cost allocation...); the tool's own tags win */
  readonly tags?: Readonly<Record<string, string>>;
}

/** A database login: where, who, and the already resolved password (from env or file, never argv). */
export type DbLogin = Omit<SourceOptions, 'serverId'>;

export interface RdsRestoreConnect {
  /** where restored rows go (required unless `toFile`): a user that may CREATE and INSERT there */
  readonly target?: DbLogin;
  /** the login on the temporary instance: the source's own user (a restore keeps its users) */
  readonly instance: { readonly user: string; readonly password?: string; readonly connectTimeoutMs?: number; readonly tls?: SourceTlsOptions };
}

export type RdsRestoreProgress =
  | ({ readonly phase: 'wait' | 'delete' } & RdsStateEvent)
  | ({ readonly phase: 'copy'; readonly instance: string } & CopyProgress);

export interface RestoreTableFromRdsOptions {
  readonly rds: RDSClient | Pick<RDSClient, 'send'>;
  readonly config: RdsRestoreConfig;
  readonly table: TableRef;
  /** the moment to restore */
  readonly at: Date;
  /** a new table for the rows; default `TABLE__restored_<yyyymmdd_hhmmss>` in the table's database */
  readonly into?: TableRef;
  /** write a SQL file instead of a table */
  readonly toFile?: string;
  /** only rows matching this SQL condition */
  readonly where?: string;
  /** leave the temporary instance running (for a look around); the result names it */
  readonly keepInstance?: boolean;
  readonly dryRun?: boolean;
  /** who asked (a tag on the instance), e.g. the OS user */
  readonly requestedBy: string;
  readonly clock?: () => Date;
  readonly logger?: Logger;
  /** Ctrl-C / SIGTERM: stops the wait or the copy; the instance is still deleted */
  readonly signal?: AbortSignal;
  readonly wait?: RdsWaitOptions;
  readonly connect: RdsRestoreConnect;
  /** `expires-at` tag = now + this (default 24 h); `rds cleanup` uses it in its listing */
  readonly expiresAfterMs?: number;
  /** the time zone for the plan's local time (default: this machine's) */
  readonly timeZone?: string;
  /** progress for a terminal (states while waiting, rows while copying); awaited */
  readonly onProgress?: (progress: RdsRestoreProgress) => void | Promise<void>;
}

export interface RdsRestorePlan {
  readonly sourceInstance: string;
  readonly sourceClass: string | undefined;
  readonly engine: string | undefined;
  readonly allocatedStorageGiB: number | undefined;
  readonly restoreTime: Date;
  readonly restoreTimeUtc: string;
  readonly restoreTimeLocal: string;
  readonly window: { readonly earliest: Date; readonly latest: Date };
  readonly tempInstance: string;
  readonly instanceClass: string;
  readonly publiclyAccessible: boolean;
  readonly tls: boolean;
  readonly table: string;
  readonly target: string;
  readonly where: string | undefined;
  readonly tags: readonly { Key: string; Value: string }[];
  readonly expectedDuration: string;
  readonly keepInstance: boolean;
}

export type RdsRestoreResult =
  | { readonly dryRun: true; readonly plan: RdsRestorePlan; readonly lines: readonly string[] }
  | {
      readonly dryRun: false;
      readonly plan: RdsRestorePlan;
      readonly lines: readonly string[];
      readonly instance: string;
      readonly rows: number;
      readonly target: string;
      /** the new table, when delivered into one */
      readonly restoredTable?: TableRef;
      /** false only with keepInstance */
      readonly instanceDeleted: boolean;
      /** the endpoint of a kept instance */
      readonly endpoint?: { readonly host: string; readonly port: number };
      readonly durations: { readonly waitMs: number; readonly copyMs: number; readonly deleteMs: number; readonly totalMs: number };
    };

const DAY_MS = 86_400_000;

export async function restoreTableFromRds(opts: RestoreTableFromRdsOptions): Promise<RdsRestoreResult> {
  const started = Date.now();
  const clock = opts.clock ?? (() => new Date());
  const logger = opts.logger ?? createSilentLogger();
  const { config, table, at, signal } = opts;
  for (const secret of [opts.connect.instance.password, opts.connect.target?.password]) if (secret) registerSecret(secret);
  const ctx: RdsCallContext = { rds: opts.rds, logger, wait: waitDefaults(opts.wait) };

  // ---- arguments
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError('the restore time is not a valid date', { hint: 'Pass --at as ISO 8601, e.g. 2026-11-25T14:03:00Z.' });
  if (opts.into && opts.toFile) throw new UsageError('--into and --to-file cannot be used together', { hint: 'Choose a new table (--into) or a SQL file (--to-file).' });
  if (!config.sourceInstance) throw new ConfigError('rds.sourceInstance is not set', { hint: 'Set rds.sourceInstance to the DBInstanceIdentifier of the source.' });
  const restoredName = opts.into ?? { db: table.db, name: restoredTableName(table.name, at) };
  if (restoredName.db === table.db && restoredName.name === table.name) {
    throw new UsageError(`--into ${table.db}.${table.name} is the live table; a restore never overwrites it`, {
      hint: 'Give a new table name with --into DB.NEW_TABLE and swap the rows yourself once checked.',
    });
  }
  if (!opts.toFile && !opts.connect.target) {
    throw new ConfigError('no target database login for the restored rows', { hint: 'Configure the target login, or write a SQL file with --to-file.' });
  }
  const tempId = tempInstanceName(config.sourceInstance, at);
  throwIfAborted(signal);

  // ---- read-only checks: nothing is created before all of them pass
  const window = await restoreWindow(ctx, config.sourceInstance, signal);
  if (at < window.earliest || at > window.latest) {
    throw new RdsRestoreWindowError(
      `${at.toISOString()} is outside the restorable window of ${config.sourceInstance}: ${window.earliest.toISOString()} to ${window.latest.toISOString()} (UTC)`,
      {
        hint:
          at > window.latest
            ? `Choose a time at or before ${window.latest.toISOString()}; RDS can restore up to its latest restorable time, usually about 5 minutes ago. For later changes use --from archive.`
            : `Choose a time at or after ${window.earliest.toISOString()}; older moments are past the backup retention period (use --from archive, or raise BackupRetentionPeriod for the future).`,
      },
    );
  }
  const source = await describeInstance(ctx, config.sourceInstance, signal);
  if (!source) {
    throw new ConfigError(`the source instance ${config.sourceInstance} does not exist in this region`, {
      hint: 'Check rds.sourceInstance and rds.region (and the AWS account of the credentials).',
    });
  }
  const existing = await describeInstance(ctx, tempId, signal);
  if (existing) {
    const tags = tagMap(existing.TagList);
    throw new RdsInstanceExistsError(tempId, `an RDS instance named ${tempId} already exists (state: ${existing.DBInstanceStatus ?? 'unknown'})`, {
      hint:
        tags['tool'] === 'mysql-archiver'
          ? `Another restore of the same moment is running, or one was left behind: wait for it, or remove leftovers with \`mysql-archiver rds cleanup\`. Or choose a different --at (even one second apart).`
          : `That name belongs to an instance this tool did not create; choose a different --at (even one second apart), or rename that instance.`,
    });
  }
  const copyTarget: CopyTarget = opts.toFile ? { kind: 'file', path: opts.toFile, table: restoredName } : { kind: 'table', conn: undefined as never, table: restoredName };
  if (copyTarget.kind === 'file') {
    await checkCopyTarget(copyTarget);
  } else {
    const conn = await connectDb(opts.connect.target as DbLogin, 'target');
    try {
      await checkCopyTarget({ ...copyTarget, conn });
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  const now = clock();
  const runId = randomUUID();
  const tags = restoreTags({
    requestedBy: opts.requestedBy,
    expiresAt: new Date(now.getTime() + (opts.expiresAfterMs ?? DAY_MS)),
    sourceInstance: config.sourceInstance,
    restoreTime: at,
    runId,
    table,
    ...(config.tags ? { extra: config.tags } : {}),
  });
  const plan: RdsRestorePlan = {
    sourceInstance: config.sourceInstance,
    sourceClass: source.DBInstanceClass,
    engine: source.Engine ? `${source.Engine} ${source.EngineVersion ?? ''}`.trim() : undefined,
    allocatedStorageGiB: source.AllocatedStorage,
    restoreTime: at,
    restoreTimeUtc: at.toISOString(),
    restoreTimeLocal: formatInZone(at, opts.timeZone),
    window,
    tempInstance: tempId,
    instanceClass: config.instanceClass ?? source.DBInstanceClass ?? 'db.t3.medium',
    publiclyAccessible: config.publiclyAccessible ?? false,
    tls: config.caBundle !== undefined || opts.connect.instance.tls !== undefined,
    table: `${table.db}.${table.name}`,
    target: describeTarget(copyTarget),
    where: opts.where,
    tags,
    expectedDuration: estimateDuration(source),
    keepInstance: opts.keepInstance ?? false,
  };
  const lines = planLines(plan);
  logger.info('rds table restore plan', { plan: lines });
  if (opts.dryRun) return { dryRun: true, plan, lines };
  throwIfAborted(signal);

  // ---- from here on the temporary instance exists (or may): it is deleted whatever happens
  let created = false;
  let failure: unknown;
  let endpoint: { host: string; port: number } | undefined;
  let rows = 0;
  let waitMs = 0;
  let copyMs = 0;
  try {
    try {
      await callRds(ctx, 'RestoreDBInstanceToPointInTime', () =>
        opts.rds.send(
          new RestoreDBInstanceToPointInTimeCommand({
            SourceDBInstanceIdentifier: config.sourceInstance,
            TargetDBInstanceIdentifier: tempId,
            RestoreTime: at,
            DBInstanceClass: plan.instanceClass,
            ...(config.subnetGroup ? { DBSubnetGroupName: config.subnetGroup } : {}),
            ...(config.securityGroups?.length ? { VpcSecurityGroupIds: [...config.securityGroups] } : {}),
            ...(config.parameterGroup ? { DBParameterGroupName: config.parameterGroup } : {}),
            PubliclyAccessible: plan.publiclyAccessible,
            MultiAZ: false,
            DeletionProtection: false,
            AutoMinorVersionUpgrade: false,
            CopyTagsToSnapshot: false,
            Tags: tags,
          }),
        ),
      );
      created = true;
    } catch (error) {
      // a timeout or 5xx may hide a restore that did start: ours carries our run id
      if (isAmbiguous(error)) created = await carriesRunId(ctx, tempId, runId);
      throw mapRestoreError(error, tempId, config.sourceInstance);
    }
    logger.info('temporary instance requested', { instance: tempId, restoreTime: at.toISOString(), instanceClass: plan.instanceClass });

    const waitStarted = Date.now();
    const ready = await waitAvailable(ctx, tempId, (e) => opts.onProgress?.({ phase: 'wait', ...e }), signal);
    waitMs = Date.now() - waitStarted;
    endpoint = endpointOf(ready) ?? endpointOf(await describeInstance(ctx, tempId, signal));
    if (!endpoint) throw new RdsError(`${tempId} is available but has no endpoint`, { hint: 'Check the instance in the RDS console.' });
    logger.info('temporary instance available', { instance: tempId, endpoint: `${endpoint.host}:${endpoint.port}`, waited: formatDuration(waitMs) });
    throwIfAborted(signal);

    const copyStarted = Date.now();
    const tls = opts.connect.instance.tls ?? (config.caBundle ? { caFile: config.caBundle } : undefined);
    const sourceConn = await connectDb(
      {
        host: endpoint.host,
        port: endpoint.port,
        user: opts.connect.instance.user,
        ...(opts.connect.instance.password !== undefined ? { password: opts.connect.instance.password } : {}),
        ...(opts.connect.instance.connectTimeoutMs ? { connectTimeoutMs: opts.connect.instance.connectTimeoutMs } : {}),
        ...(tls ? { tls } : {}),
      },
      'temporary instance',
      signal,
    );
    let targetConn: Connection | undefined;
    try {
      if (copyTarget.kind === 'table') targetConn = await connectDb(opts.connect.target as DbLogin, 'target', signal);
      const result = await copyTable({
        source: sourceConn,
        table,
        ...(opts.where ? { where: opts.where } : {}),
        target: copyTarget.kind === 'table' ? { ...copyTarget, conn: targetConn as Connection } : copyTarget,
        ...(signal ? { signal } : {}),
        logger,
        onProgress: (p) => opts.onProgress?.({ phase: 'copy', instance: tempId, ...p }),
      });
      rows = result.rows;
    } finally {
      await sourceConn.end().catch(() => sourceConn.destroy());
      await targetConn?.end().catch(() => targetConn?.destroy());
    }
    copyMs = Date.now() - copyStarted;
  } catch (error) {
    failure = error;
  }

  // ---- cleanup
  let deleteMs = 0;
  let deleted = false;
  if (created && opts.keepInstance && failure === undefined) {
    logger.warn('kept the temporary instance as asked; it keeps costing money until deleted', {
      instance: tempId,
      hint: 'mysql-archiver rds cleanup --older-than 0s removes it',
    });
  } else if (created) {
    const deleteStarted = Date.now();
    try {
      if (opts.keepInstance) logger.warn('the restore failed: deleting the temporary instance despite keepInstance', { instance: tempId });
      await deleteInstanceAndWait(ctx, tempId, (e) => opts.onProgress?.({ phase: 'delete', ...e }));
      deleted = true;
      deleteMs = Date.now() - deleteStarted;
      logger.info('temporary instance deleted', { instance: tempId, took: formatDuration(deleteMs) });
    } catch (cleanupError) {
      const first = failure === undefined ? '' : `the restore failed (${describeError(failure)}) and `;
      const error = new RdsCleanupError([tempId], `${first}the temporary RDS instance ${tempId} could not be deleted: ${describeRdsError(cleanupError)}; it is still running and costs money`, {
        cause: cleanupError,
        restoreError: failure,
        hint: `Run \`mysql-archiver rds cleanup\` (it finds ${tempId} by its tags tool=mysql-archiver, purpose=table-restore), or delete it in the RDS console${isFatal(cleanupError) ? '; the credentials also need rds:DeleteDBInstance' : ''}.`,
      });
      logger.error('TEMPORARY RDS INSTANCE LEFT RUNNING', { instance: tempId, error: describeRdsError(cleanupError), fix: 'mysql-archiver rds cleanup' });
      throw error;
    }
  }
  if (failure !== undefined) {
    if (signal?.aborted || isAbortError(failure)) {
      throw new OperationAbortedError(`restore aborted${created ? `; the temporary instance ${tempId} was deleted` : ''}`);
    }
    throw failure;
  }
  const totalMs = Date.now() - started;
  logger.info('rds table restore done', { table: `${table.db}.${table.name}`, target: plan.target, rows, instance: tempId, took: formatDuration(totalMs) });
  return {
    dryRun: false,
    plan,
    lines,
    instance: tempId,
    rows,
    target: plan.target,
    ...(copyTarget.kind === 'table' ? { restoredTable: copyTarget.table } : {}),
    instanceDeleted: deleted,
    ...(!deleted && endpoint ? { endpoint } : {}),
    durations: { waitMs, copyMs, deleteMs, totalMs },
  };
}

async function restoreWindow(ctx: RdsCallContext, sourceInstance: string, signal?: AbortSignal): Promise<{ earliest: Date; latest: Date }> {
  let out;
  try {
    out = await callRds(ctx, 'DescribeDBInstanceAutomatedBackups', () =>
      ctx.rds.send(new DescribeDBInstanceAutomatedBackupsCommand({ DBInstanceIdentifier: sourceInstance })),
    signal);
  } catch (error) {
    if (errorName(error) === 'DBInstanceAutomatedBackupNotFoundFault' || errorName(error) === 'DBInstanceNotFoundFault') {
      throw new RdsRestoreWindowError(`${sourceInstance} has no automated backups, so it has no point-in-time restore window`, {
        hint: 'Check rds.sourceInstance and rds.region; enable automated backups (BackupRetentionPeriod > 0) for point-in-time restores, or use --from archive.',
      });
    }
    throw new RdsError(`cannot read the restore window of ${sourceInstance}: ${describeRdsError(error)}`, {
      cause: error,
      hint: isFatal(error)
        ? 'The AWS credentials (default provider chain) need rds:DescribeDBInstanceAutomatedBackups, rds:DescribeDBInstances, rds:RestoreDBInstanceToPointInTime, rds:AddTagsToResource and rds:DeleteDBInstance.'
        : 'Check the network path to the RDS API and try again.',
    });
  }
  const windows = (out.DBInstanceAutomatedBackups ?? [])
    .filter((b) => (b.Status ?? 'active') === 'active')
    .map((b) => b.RestoreWindow)
    .filter((w): w is { EarliestTime: Date; LatestTime: Date } => w?.EarliestTime instanceof Date && w.LatestTime instanceof Date);
  if (windows.length === 0) {
    throw new RdsRestoreWindowError(`${sourceInstance} has no active automated backups, so it has no point-in-time restore window`, {
      hint: 'Enable automated backups (BackupRetentionPeriod > 0) on the source instance, or use --from archive.',
    });
  }
  const earliest = new Date(Math.min(...windows.map((w) => w.EarliestTime.getTime())));
  const latest = new Date(Math.max(...windows.map((w) => w.LatestTime.getTime())));
  return { earliest, latest };
}

async function carriesRunId(ctx: RdsCallContext, id: string, runId: string): Promise<boolean> {
  try {
    const inst = await describeInstance(ctx, id);
    return inst !== undefined && tagMap(inst.TagList)[TAG_RUN_ID] === runId;
  } catch {
    // cannot tell: be safe and try to delete only what carries our id; the cleanup command catches the rest
    return false;
  }
}

function mapRestoreError(error: unknown, tempId: string, sourceInstance: string): unknown {
  if (error instanceof ArchiverError || isAbortError(error)) return error;
  const name = errorName(error);
  if (name === 'InvalidRestoreFault') {
    return new RdsRestoreWindowError(`RDS refused the restore time: ${describeRdsError(error)}`, {
      cause: error,
      hint: 'The restorable window moved; run with --dry-run to see the current window and choose a time inside it.',
    });
  }
  if (name === 'DBInstanceAlreadyExistsFault') {
    return new RdsInstanceExistsError(tempId, `an RDS instance named ${tempId} already exists`, {
      cause: error,
      hint: 'Another restore of the same moment started at the same time; wait for it, or choose a different --at.',
    });
  }
  return new RdsError(`RDS refused to restore ${sourceInstance} into ${tempId}: ${describeRdsError(error)}`, {
    cause: error,
    hint: isFatal(error)
      ? 'The AWS credentials need rds:RestoreDBInstanceToPointInTime and rds:AddTagsToResource on the source and the new instance.'
      : 'Check rds.instanceClass, rds.subnetGroup, rds.securityGroups and rds.parameterGroup against the source instance, and the account quotas.',
  });
}

function endpointOf(inst: DBInstance | undefined): { host: string; port: number } | undefined {
  const host = inst?.Endpoint?.Address;
  const port = inst?.Endpoint?.Port;
  return host && port ? { host, port } : undefined;
}

async function connectDb(login: DbLogin, role: 'target' | 'temporary instance', signal?: AbortSignal): Promise<Connection> {
  // an instance that just became available may refuse a few connections while its DNS settles
  const attempts = role === 'temporary instance' ? 5 : 1;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal);
    try {
      return await connectSource({ ...login, serverId: 0 });
    } catch (error) {
      const refused = error instanceof SourceConnectionError && /refused|timed out|cannot resolve/.test(error.message);
      if (!refused || attempt >= attempts) {
        if (error instanceof SourceConnectionError) {
          throw new SourceConnectionError(`${role}: ${error.message}`, {
            cause: error.cause,
            hint:
              role === 'temporary instance'
                ? `${error.hint ?? ''} The temporary instance keeps the source's users and passwords as they were at the restore time; its security group must let this machine in (rds.securityGroups).`.trim()
                : error.hint,
          });
        }
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

/** A rough range: RDS restores take 10-30 min plus log replay; larger volumes take longer. */
function estimateDuration(source: DBInstance): string {
  const gib = source.AllocatedStorage ?? 20;
  const low = 15 + Math.round(gib / 200);
  const high = 45 + Math.round(gib / 50);
  return `about ${low}-${high} min (restore ${low - 5}-${high - 15} min, copy, delete 5-10 min)`;
}

function planLines(plan: RdsRestorePlan): string[] {
  return [
    `source instance:    ${plan.sourceInstance}${plan.sourceClass ? ` (${plan.sourceClass}${plan.engine ? `, ${plan.engine}` : ''})` : ''}`,
    `restore time:       ${plan.restoreTimeUtc} UTC (${plan.restoreTimeLocal} local)`,
    `restorable window:  ${plan.window.earliest.toISOString()} to ${plan.window.latest.toISOString()}`,
    `temporary instance: ${plan.tempInstance} (${plan.instanceClass}, ${plan.publiclyAccessible ? 'PUBLIC' : 'private'}, ${plan.tls ? 'TLS' : 'no TLS'})`,
    `table:              ${plan.table}${plan.where ? ` WHERE ${plan.where}` : ''}`,
    `into:               ${plan.target} (new; the live table is not touched)`,
    `expected duration:  ${plan.expectedDuration}`,
    `afterwards:         ${plan.keepInstance ? 'the temporary instance is KEPT (delete it with `mysql-archiver rds cleanup`)' : 'the temporary instance is deleted (also on failure or Ctrl-C)'}`,
  ];
}
