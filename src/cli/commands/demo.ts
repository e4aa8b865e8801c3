import type { Command } from 'commander';
import { runCommand, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export type DemoOptions = Record<string, never>;

export function registerDemoCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('demo')
    .description('run the whole job on this machine: throwaway MariaDB, local S3, dump and a table restore')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver demo

Needs nothing outside this machine and ignores --config: it builds its own throwaway setup.`,
    )
    .action((_opts: object, cmd: Command) =>
      runCommand(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.demo({}, deps)),
    );
}
