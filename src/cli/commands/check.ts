import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export type CheckOptions = Record<string, never>;

export function registerCheckCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('check')
    .description('preflight: validate config and schedules, server settings, privileges and storage reachability')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver check
  $ mysql-archiver --config /etc/mysql-archiver/config.yaml check

Exit code 0 when everything is ready, 2 when a setting must be fixed first (nothing is changed).`,
    )
    .action((_opts: object, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.check({}, deps)),
    );
}
