import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface RetentionOptions {
  readonly dryRun: boolean;
}

export function registerRetentionCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('retention')
    .description("delete dumps and segments that no tier's retention needs any more")
    .option('--dry-run', 'print what would be deleted and delete nothing', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver retention --dry-run
  $ mysql-archiver retention

Never deletes the newest valid dump, anything needed to restore a moment inside the binlog
retention window, or objects this tool did not write.`,
    )
    .action((opts: { dryRun: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.retention({ dryRun: opts.dryRun }, deps)),
    );
}
