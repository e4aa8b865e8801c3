import { Option, type Command } from 'commander';
import { parseTierName } from '../args.js';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface DumpOptions {
  readonly tier: string;
}

export function registerDumpCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('dump')
    .description("take one full dump now for a tier, to that tier's targets")
    .addOption(new Option('--tier <name>', 'tier as named in schedules/*.yaml').argParser(parseTierName).makeOptionMandatory())
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver dump --tier daily
  $ mysql-archiver --config /etc/mysql-archiver/config.yaml dump --tier monthly`,
    )
    .action((opts: { tier: string }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) => useCases.dump({ tier: opts.tier }, deps)),
    );
}
