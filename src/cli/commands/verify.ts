import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export type VerifyOptions = Record<string, never>;

export function registerVerifyCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('verify')
    .description('restore drill: restore the latest dump into a throwaway server, replay binlogs, compare checksums')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver verify

A backup that has never been restored is not trusted: the result shows in \`status\`.`,
    )
    .action((_opts: object, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.verify({}, deps)),
    );
}
