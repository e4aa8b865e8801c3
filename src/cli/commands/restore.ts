import { Option, type Command } from 'commander';
import {
  parseHostPort,
  parseRestorePoint,
  parseTableName,
  RESTORE_POINT_HELP,
  type HostPort,
  type RestorePoint,
  type TableName,
} from '../args.js';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface RestoreTableOptions {
  readonly table: TableName;
  readonly at: RestorePoint;
  readonly from: 'archive' | 'rds';
  /** where the rows go; default: a new table `TABLE__restored_<when>` next to the live one */
  readonly into?: TableName;
  readonly toFile?: string;
  /** rows to extract (SQL condition), e.g. "customer_id = 42" */
  readonly where?: string;
  readonly dryRun: boolean;
  /** --from rds: keep the temporary instance (it is still deleted when the restore fails) */
  readonly keepInstance?: boolean;
}

export interface RestorePitrOptions {
  readonly at: RestorePoint;
  readonly target: HostPort;
  /** one database instead of all */
  readonly database?: string;
  readonly dryRun: boolean;
}

export function registerRestoreCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  const restore = program
    .command('restore')
    .description('restore one table, or whole databases, to a moment in time')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver restore table shop.orders --at "2026-11-25 14:03:00" --dry-run
  $ mysql-archiver restore pitr --at 2026-11-25T14:03:00Z --target 10.0.0.5:3306`,
    );

  restore
    .command('table')
    .description('restore one table as it was at TIME into a new table (the live table is never touched)')
    .argument('<db.table>', 'the table to restore, e.g. shop.orders', parseTableName)
    .addOption(new Option('--at <time>', 'the moment to restore to').argParser((v) => parseRestorePoint(v)).makeOptionMandatory())
    .addOption(new Option('--from <source>', 'archive (our dumps and binlogs) or rds (a point-in-time RDS restore)').choices(['archive', 'rds']).default('archive'))
    .addOption(new Option('--into <db.table>', 'write into this new table instead of TABLE__restored_<when>').argParser(parseTableName).conflicts('toFile'))
    .addOption(new Option('--to-file <path>', 'write SQL to this file instead of a table'))
    .option('--where <condition>', 'only rows matching this SQL condition')
    .option('--dry-run', 'print the plan (dump, segments, bytes to read, estimate) and change nothing', false)
    .option('--keep-instance', 'with --from rds: keep the temporary instance for a look around (delete it later with rds cleanup)', false)
    .addHelpText(
      'after',
      `
${RESTORE_POINT_HELP}.

Examples:
  $ mysql-archiver restore table shop.orders --at "2026-11-25 14:03:00" --dry-run
  $ mysql-archiver restore table shop.orders --at "15m ago" --into shop.orders_before_delete
  $ mysql-archiver restore table shop.orders --at mysql-bin.000042:1337 --to-file /tmp/orders.sql
  $ mysql-archiver restore table shop.orders --at 2026-11-25T14:03:00Z --from rds --where "customer_id = 42"`,
    )
    .action(
      (
        table: TableName,
        opts: { at: RestorePoint; from: 'archive' | 'rds'; into?: TableName; toFile?: string; where?: string; dryRun: boolean; keepInstance: boolean },
        cmd: Command,
      ) =>
        runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
          useCases.restoreTable(
            {
              table,
              at: opts.at,
              from: opts.from,
              ...(opts.into ? { into: opts.into } : {}),
              ...(opts.toFile ? { toFile: opts.toFile } : {}),
              ...(opts.where ? { where: opts.where } : {}),
              dryRun: opts.dryRun,
              keepInstance: opts.keepInstance,
            },
            deps,
          ),
        ),
    );

  restore
    .command('pitr')
    .description('restore all databases to TIME into a fresh server (disaster recovery)')
    .addOption(new Option('--at <time>', 'the moment to restore to').argParser((v) => parseRestorePoint(v)).makeOptionMandatory())
    .addOption(new Option('--target <host:port>', 'the fresh server to restore into').argParser(parseHostPort).makeOptionMandatory())
    .option('--database <name>', 'restore only this database (default: all in the dump)')
    .option('--dry-run', 'print the plan and change nothing', false)
    .addHelpText(
      'after',
      `
${RESTORE_POINT_HELP}.

The login is restore.target's user and password (config); the target must not hold the databases.

Examples:
  $ mysql-archiver restore pitr --at 2026-11-25T14:03:00Z --target 10.0.0.5:3306 --dry-run
  $ mysql-archiver restore pitr --at mysql-bin.000042:1337 --target 127.0.0.1:3307`,
    )
    .action((opts: { at: RestorePoint; target: HostPort; database?: string; dryRun: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
        useCases.restorePitr({ at: opts.at, target: opts.target, ...(opts.database ? { database: opts.database } : {}), dryRun: opts.dryRun }, deps),
      ),
    );
}
