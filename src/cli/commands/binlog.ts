import type { Command } from 'commander';
import { runConfigured, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface BinlogFetchOptions {
  readonly file: string;
  readonly source?: string;
  /** default: ./FILE */
  readonly output?: string;
}

export function registerBinlogCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  const binlog = program.command('binlog').description('work with the archived binlog');
  binlog
    .command('fetch')
    .description('rebuild a server binlog file from its archived segments (each verified by sha256)')
    .argument('<file>', 'server binlog file name, e.g. mysql-bin.000042')
    .option('--source <source>', 'the server history, when more than one archived a file of that name (see list segments)')
    .option('-o, --output <path>', 'where to write it (default: ./<file>); - for stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver binlog fetch mysql-bin.000042
  $ mysql-archiver binlog fetch mysql-bin.000042 -o - | mariadb-binlog -v -`,
    )
    .action((file: string, opts: { source?: string; output?: string }, cmd: Command) =>
      runConfigured(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
        useCases.binlogFetch({ file, ...(opts.source ? { source: opts.source } : {}), ...(opts.output ? { output: opts.output } : {}) }, deps),
      ),
    );
}
