import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface SpoolStatusOptions {
  readonly json: boolean;
}

export function registerSpoolCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  const spool = program
    .command('spool')
    .description('inspect the local spool of sealed segments waiting for upload')
    .addHelpText('after', '\nExamples:\n  $ mysql-archiver spool status');
  spool
    .command('status')
    .description('segments waiting, bytes used against spoolMaxBytes, oldest waiting segment')
    .option('--json', 'print one JSON document', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver spool status
  $ mysql-archiver spool status --json`,
    )
    .action((opts: { json: boolean }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.spoolStatus({ json: opts.json }, deps)),
    );
}
