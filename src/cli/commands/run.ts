import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export type RunOptions = Record<string, never>;

export function registerRunCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('run')
    .description('run the daemon: binlog archiver and scheduled dumps (systemd ExecStart)')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver run
  $ mysql-archiver --config /etc/mysql-archiver/config.yaml run

Stops cleanly on SIGTERM (systemctl stop): the current segment is sealed and the checkpoint saved.`,
    )
    .action((_opts: object, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.run({}, deps)),
    );
}
