import type { Command } from 'commander';
import { runCommand, type CliContext, type GlobalOptions } from '../run-command.js';
import type { UseCases } from '../use-cases.js';

export interface DemoOptions {
  /** a new or empty directory for everything the demo creates (default: a new one under the temp dir) */
  workDir?: string;
  /** keep the work dir after the run */
  keep: boolean;
}

export function registerDemoCommand(program: Command, ctx: CliContext, useCases: UseCases): void {
  program
    .command('demo')
    .description('run the main job on this machine: a throwaway MariaDB, a local S3, check, binlogs archived and verified')
    .option('--work-dir <dir>', 'new or empty directory for everything the demo creates (default: a new temp dir)')
    .option('--keep', 'keep the work dir (config, spool, manifest, objects) after the run', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mysql-archiver demo
  $ mysql-archiver demo --work-dir /tmp/archiver-demo --keep

Needs nothing outside this machine (only mariadbd installed) and ignores --config: it builds its own
throwaway setup and tears it down at the end, also on failure or Ctrl-C.`,
    )
    .action((opts: { workDir?: string; keep: boolean }, cmd: Command) =>
      runCommand(ctx, cmd.optsWithGlobals<GlobalOptions>(), (deps) =>
        useCases.demo({ keep: opts.keep === true, ...(opts.workDir ? { workDir: opts.workDir } : {}) }, deps),
      ),
    );
}
