import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface StatusOptions {
  readonly json: boolean;
}

export function registerStatusCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('status')
    .description('show archive lag, spool, gaps, last dump per tier, next runs and the last restore drill')
    .option('--json', 'print one JSON document (for scripts and monitoring)', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver status
  $ mysql-archiver status --json | jq .archiver.lagSeconds`,
    )
    .action((opts: { json: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.status({ json: opts.json }, deps)),
    );
}
