import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_CONFIG_PATH } from '../config/load-config.js';
import { LOG_LEVELS } from '../ops/logger.js';
import { registerBinlogCommand } from './commands/binlog.js';
import { registerCheckCommand } from './commands/check.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerDumpCommand } from './commands/dump.js';
import { registerListCommand } from './commands/list.js';
import { registerRdsCommand } from './commands/rds.js';
import { registerRestoreCommand } from './commands/restore.js';
import { registerRetentionCommand } from './commands/retention.js';
import { registerRunCommand } from './commands/run.js';
import { registerSpoolCommand } from './commands/spool.js';
import { registerStatusCommand } from './commands/status.js';
import { registerVerifyCommand } from './commands/verify.js';
import { commanderExitCode, exitCodeFor, reportError, type CliContext } from './run-command.js';
import { defaultUseCases, type UseCases } from './use-cases.js';

const EXAMPLES = `
Examples:
  $ mysql-archiver run                                    # the daemon (systemd ExecStart)
  $ mysql-archiver check                                  # preflight before starting
  $ mysql-archiver status --json                          # lag, spool, gaps, last dumps, last drill
  $ mysql-archiver dump --tier daily                      # one dump now
  $ mysql-archiver list dumps                             # the catalog (or: list segments)
  $ mysql-archiver restore table shop.orders --at "2026-11-25 14:03:00" --dry-run
  $ mysql-archiver restore pitr --at 2026-11-25T14:03:00Z --target 10.0.0.5:3306
  $ mysql-archiver verify                                 # restore drill
  $ mysql-archiver retention --dry-run                    # what retention would delete
  $ mysql-archiver rds cleanup --older-than 6h            # leftover RDS restore instances
  $ mysql-archiver demo                                   # everything, on this machine, no setup
  $ mysql-archiver spool status                           # segments waiting for upload
  $ mysql-archiver binlog fetch mysql-bin.000042          # a server binlog rebuilt from the archive

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration (nothing changed), 130 interrupted.
Secrets come from environment variables or files named in the config, never from arguments.`;

export function readPackageVersion(): string {
  // src/cli and dist/cli are both two levels below the package root
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Builds the command tree. Commander never exits the process: errors surface as CommanderError. */
export function buildProgram(ctx: CliContext, useCases: UseCases = defaultUseCases): Command {
  const program = new Command('mysql-archiver')
    .description('Keeps MySQL, MariaDB and Amazon RDS data safe: byte-exact binlog archive, tiered dumps, one-command restores')
    .version(ctx.version, '-V, --version', 'print the version')
    .addOption(new Option('-c, --config <path>', 'configuration file').default(DEFAULT_CONFIG_PATH))
    .addOption(new Option('--log-level <level>', 'log level (overrides log.level in the config)').choices(LOG_LEVELS))
    .helpCommand('help [command]', 'show help for a command')
    .addHelpText('after', EXAMPLES)
    .showSuggestionAfterError(true);
  const output = {
    writeOut: (s: string) => ctx.io.stdout.write(s),
    writeErr: (s: string) => ctx.io.stderr.write(s),
    // keep usage errors to one line: commander puts its suggestion on a second one
    outputError: (s: string, write: (s: string) => void) => write(s.replace(/\n\(Did you mean (.+)\?\)/, ' (did you mean $1?)')),
  };
  program.exitOverride().configureOutput(output);
  registerRunCommand(program, ctx, useCases);
  registerCheckCommand(program, ctx, useCases);
  registerStatusCommand(program, ctx, useCases);
  registerDumpCommand(program, ctx, useCases);
  registerListCommand(program, ctx, useCases);
  registerRestoreCommand(program, ctx, useCases);
  registerVerifyCommand(program, ctx, useCases);
  registerRetentionCommand(program, ctx, useCases);
  registerRdsCommand(program, ctx, useCases);
  registerDemoCommand(program, ctx, useCases);
  registerSpoolCommand(program, ctx, useCases);
  registerBinlogCommand(program, ctx, useCases);
  // subcommands inherit output and exit handling only when configured on each of them
  const configure = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput(output);
      sub.showSuggestionAfterError(true);
      configure(sub);
    }
  };
  configure(program);
  return program;
}

/** Parses `argv` (without node and script), runs the command, returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext, useCases: UseCases = defaultUseCases): Promise<number> {
  const program = buildProgram(ctx, useCases);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return commanderExitCode(error);
    reportError(error, ctx.io.stderr, { debug: false });
    return exitCodeFor(error);
  }
}
