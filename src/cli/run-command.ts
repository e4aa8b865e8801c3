import type { Readable, Writable } from 'node:stream';
import { CommanderError } from 'commander';
import { loadConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { loadSchedules, type Schedule } from '../config/schedules.js';
import { ArchiverError, ExitCode, isAbortError } from '../errors.js';
import { createLogger, type LogLevel, type Logger } from '../ops/logger.js';
import { knownSecrets, redactText } from '../ops/redact.js';

/**
 * The one place that turns outcomes into exit codes and prints errors. Commands stay thin: they
 * parse flags, then call `runCommand` with a body that calls a use case.
 */

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export interface CliIo {
  /** for confirmations (absent or not a TTY: nothing is asked) */
  readonly stdin?: Readable & { isTTY?: boolean };
  readonly stdout: Writable;
  readonly stderr: Writable & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export interface CliContext {
  readonly io: CliIo;
  readonly version: string;
  /** subscribes to Ctrl-C / termination; returns the unsubscribe function */
  readonly onInterrupt: (handler: (signal: InterruptSignal) => void) => () => void;
  /** set by the command that ran */
  exitCode: number;
}

export interface GlobalOptions {
  config: string;
  logLevel?: LogLevel;
}

/** What every use case gets: a logger, a cancellation signal and the output streams. */
export interface BaseDeps {
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly io: CliIo;
}

export interface ConfiguredDeps extends BaseDeps {
  readonly config: Config;
  readonly schedules: readonly Schedule[];
}

/** A use case returns its exit code, or nothing for success. */
export type CommandResult = number | void;

interface RunState {
  debug: boolean;
}

/** Runs a command body that needs the configuration (loaded, validated, schedules included). */
export function runConfigured(
  ctx: CliContext,
  globals: GlobalOptions,
  body: (deps: ConfiguredDeps) => Promise<CommandResult>,
): Promise<void> {
  return runCommand(ctx, globals, async (base, state) => {
    const config = await loadConfig(globals.config, { env: ctx.io.env });
    const level = globals.logLevel ?? config.log.level;
    state.debug = level === 'debug';
    const logger = createLogger({ level, format: config.log.format, stream: ctx.io.stderr, secrets: knownSecrets });
    const schedules = await loadSchedules(config.schedulesDir, config);
    return body({ ...base, logger, config, schedules });
  });
}

/** Runs a command body; maps its outcome to `ctx.exitCode` and prints any error. Never throws. */
export async function runCommand(
  ctx: CliContext,
  globals: GlobalOptions,
  body: (deps: BaseDeps, state: RunState) => Promise<CommandResult>,
): Promise<void> {
  const state: RunState = { debug: globals.logLevel === 'debug' };
  const controller = new AbortController();
  let interruptedBy: InterruptSignal | undefined;
  const unsubscribe = ctx.onInterrupt((signal) => {
    if (interruptedBy) return;
    interruptedBy = signal;
    if (signal === 'SIGINT') ctx.io.stderr.write('stopping and cleaning up (press Ctrl-C again to quit at once)\n');
    controller.abort();
  });
  const logger = createLogger({ level: globals.logLevel ?? 'info', stream: ctx.io.stderr, secrets: knownSecrets });
  try {
    const result = await body({ logger, signal: controller.signal, io: ctx.io }, state);
    ctx.exitCode = interruptedBy === 'SIGINT' ? ExitCode.interrupted : (result ?? ExitCode.ok);
  } catch (error) {
    if (interruptedBy && isAbortError(error)) {
      ctx.io.stderr.write('interrupted\n');
      ctx.exitCode = ExitCode.interrupted;
    } else {
      ctx.exitCode = reportError(error, ctx.io.stderr, { debug: state.debug });
    }
  } finally {
    unsubscribe();
  }
}

/** Prints `error: …` (and `hint: …`) scrubbed of secrets; returns the exit code for the error. */
export function reportError(error: unknown, stderr: Writable, options: { debug: boolean }): number {
  const secrets = knownSecrets();
  const lines: string[] = [];
  if (error instanceof ArchiverError) {
    lines.push(`error: ${error.message}`);
    if (error.hint) lines.push(`hint: ${error.hint}`);
    if (options.debug) {
      if (error.stack) lines.push(error.stack);
      if (error.cause !== undefined) lines.push(`cause: ${describeCause(error.cause)}`);
    }
  } else {
    const message = error instanceof Error ? error.message : String(error);
    lines.push(`error: ${message}`);
    if (options.debug && error instanceof Error && error.stack) lines.push(error.stack);
    else lines.push('hint: This is unexpected. Run again with --log-level debug for details and report it with that output.');
  }
  stderr.write(`${redactText(lines.join('\n'), secrets)}\n`);
  return exitCodeFor(error);
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof ArchiverError) return error.exitCode;
  if (error instanceof CommanderError) return commanderExitCode(error);
  if (isAbortError(error)) return ExitCode.interrupted;
  return ExitCode.failure;
}

/**
 * Commander throws (through exitOverride) for help, version and usage errors; it has already
 * printed its one line. Help and version are successes; a missing subcommand and every other
 * parse error are usage errors.
 */
export function commanderExitCode(error: CommanderError): number {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok;
  if (error.code === 'commander.help') return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  return ExitCode.usage;
}
