import { Option, type Command } from 'commander';
import {
  parseHostPort,
  parseRestoreGtid,
  parseRestorePoint,
  parseRestorePosition,
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
  /** put the restored rows into the live table (after confirmation; the live rows are kept in a copy) */
  readonly replace?: boolean;
  /** --replace without asking (scripts); without it --replace asks on a terminal and refuses elsewhere */
  readonly yes?: boolean;
}

export interface RestorePitrOptions {
  readonly at: RestorePoint;
  readonly target: HostPort;
  /** one database instead of all */
  readonly database?: string;
  readonly dryRun: boolean;
}

/** `--at`, `--at-position` or `--at-gtid`: exactly one. */
function addRestorePointOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--at <time>', 'the moment to restore to (a time, FILE:POS or GTID)').argParser((v) => parseRestorePoint(v)).conflicts(['atPosition', 'atGtid']))
    .addOption(new Option('--at-position <file:pos>', 'stop at this binlog position').argParser(parseRestorePosition).conflicts('atGtid'))
    .addOption(new Option('--at-gtid <gtid>', 'stop after this GTID').argParser(parseRestoreGtid));
}

function restorePointOf(opts: { at?: RestorePoint; atPosition?: RestorePoint; atGtid?: RestorePoint }, cmd: Command): RestorePoint {
  const point = opts.at ?? opts.atPosition ?? opts.atGtid;
  if (!point) cmd.error("error: say when: --at TIME, --at-position FILE:POS or --at-gtid GTID (e.g. --at '15m ago')", { exitCode: 2, code: 'restore.at' });
  return point as RestorePoint;
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

  addRestorePointOptions(restore
    .command('table')
    .description('restore one table as it was at TIME into a new table (the live table is never touched unless --replace is confirmed)')
    .argument('<db.table>', 'the table to restore, e.g. shop.orders', parseTableName))
    .addOption(new Option('--from <source>', 'archive (our dumps and binlogs) or rds (a point-in-time RDS restore)').choices(['archive', 'rds']).default('archive'))
    .addOption(new Option('--into <db.table>', 'write into this new table instead of TABLE__restored_<when>').argParser(parseTableName).conflicts('toFile'))
    .addOption(new Option('--to-file <path>', 'write SQL to this file instead of a table'))
    .option('--where <condition>', 'only rows matching this SQL condition')
    .option('--dry-run', 'print the plan (dump, segments, bytes to read, estimate) and change nothing', false)
    .option('--keep-instance', 'with --from rds: keep the temporary instance for a look around (delete it later with rds cleanup)', false)
    .addOption(new Option('--replace', 'then put the restored rows into the live table, after you confirm (the live rows are kept in TABLE__before_replace_<when>)').conflicts(['toFile', 'where']))
    .option('--yes', 'confirm --replace without asking (for scripts)', false)
    .addHelpText(
      'after',
      `
${RESTORE_POINT_HELP}.

Examples:
  $ mysql-archiver restore table shop.orders --at "2026-11-25 14:03:00" --dry-run
  $ mysql-archiver restore table shop.orders --at "15m ago" --into shop.orders_before_delete
  $ mysql-archiver restore table shop.orders --at-position mysql-bin.000042:1337 --to-file /tmp/orders.sql
  $ mysql-archiver restore table shop.orders --at-gtid 0-1-865 --replace
  $ mysql-archiver restore table shop.orders --at 2026-11-25T14:03:00Z --from rds --where "customer_id = 42"`,
    )
    .action(
      (
        table: TableName,
        opts: { at?: RestorePoint; atPosition?: RestorePoint; atGtid?: RestorePoint; from: 'archive' | 'rds'; into?: TableName; toFile?: string; where?: string; dryRun: boolean; keepInstance: boolean; replace?: boolean; yes: boolean },
        cmd: Command,
      ) => {
        const at = restorePointOf(opts, cmd);
        return runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
          useCases.restoreTable(
            {
              table,
              at,
              ...(opts.replace ? { replace: true, yes: opts.yes } : {}),
              from: opts.from,
              ...(opts.into ? { into: opts.into } : {}),
              ...(opts.toFile ? { toFile: opts.toFile } : {}),
              ...(opts.where ? { where: opts.where } : {}),
              dryRun: opts.dryRun,
              keepInstance: opts.keepInstance,
            },
            deps,
          ),
        );
      },
    );

  addRestorePointOptions(restore
    .command('pitr')
    .description('restore all databases to TIME into a fresh server (disaster recovery)'))
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
    .action((opts: { at?: RestorePoint; atPosition?: RestorePoint; atGtid?: RestorePoint; target: HostPort; database?: string; dryRun: boolean }, cmd: Command) => {
      const at = restorePointOf(opts, cmd);
      return runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
        useCases.restorePitr({ at, target: opts.target, ...(opts.database ? { database: opts.database } : {}), dryRun: opts.dryRun }, deps),
      );
    });
}
