import type { Command } from 'commander';
import { parseDurationArg } from '../args.js';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface RdsCleanupOptions {
  /** only instances created longer ago than this (ms), so a restore in progress is left alone */
  readonly olderThanMs: number;
  readonly dryRun: boolean;
}

export function registerRdsCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  const rds = program
    .command('rds')
    .description('Amazon RDS helpers')
    .addHelpText('after', '\nExamples:\n  $ mysql-archiver rds cleanup --older-than 6h');
  rds
    .command('cleanup')
    .description('find and delete temporary restore instances left behind (by tag)')
    .option('--older-than <duration>', 'only instances older than this (e.g. 6h, 2d)', parseDurationArg, 6 * 3_600_000)
    .option('--dry-run', 'list what would be deleted and delete nothing', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver rds cleanup --dry-run
  $ mysql-archiver rds cleanup --older-than 2d`,
    )
    .action((opts: { olderThan: number; dryRun: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
        useCases.rdsCleanup({ olderThanMs: opts.olderThan, dryRun: opts.dryRun }, deps),
      ),
    );
}
