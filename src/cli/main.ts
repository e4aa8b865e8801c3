#!/usr/bin/env node
import { ExitCode } from '../errors.js';
import { readPackageVersion, runCli } from './program.js';
import type { CliContext, InterruptSignal } from './run-command.js';

/**
 * Process entry point and the only place that calls process.exit. The first Ctrl-C asks the
 * running command to stop (it cleans up, then exits 130); a second one exits at once.
 */
let interrupts = 0;

// The AWS SDK warns on every run under Node 20 that its releases after early January 2027 need
// Node 22. The SDK versions are pinned in the lockfile, so the warning tells an operator nothing
// actionable at 3 a.m.; the move to Node 22 is tracked in README (Node versions).
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const ctx: CliContext = {
  io: {
    // a getter: touching process.stdin opens it, and only a --replace confirmation reads it
    get stdin() {
      return process.stdin;
    },
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  },
  version: readPackageVersion(),
  exitCode: ExitCode.ok,
  onInterrupt(handler) {
    const listeners = (['SIGINT', 'SIGTERM'] as const).map((signal: InterruptSignal) => {
      const listener = () => {
        interrupts++;
        if (interrupts > 1) process.exit(ExitCode.interrupted);
        handler(signal);
      };
      process.on(signal, listener);
      return [signal, listener] as const;
    });
    return () => {
      for (const [signal, listener] of listeners) process.off(signal, listener);
    };
  },
};

const code = await runCli(process.argv.slice(2), ctx);
// let stdout/stderr drain (pipes can be asynchronous) before leaving
await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
process.exit(code);
