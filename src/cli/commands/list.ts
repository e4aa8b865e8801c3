import { Argument, type Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface ListOptions {
  readonly what: 'dumps' | 'segments';
  readonly json: boolean;
}

export function registerListCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('list')
    .description('list the catalog: dumps per tier and target, or archived binlog segments')
    .addArgument(new Argument('<what>', 'what to list').choices(['dumps', 'segments']))
    .option('--json', 'print JSON lines instead of a table', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver list dumps
  $ mysql-archiver list segments --json`,
    )
    .action((what: 'dumps' | 'segments', opts: { json: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.list({ what, json: opts.json }, deps)),
    );
}
