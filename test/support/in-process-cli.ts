import { type Readable, Writable } from 'node:stream';
import { runCli } from '../../src/cli/program.js';
import type { CliContext } from '../../src/cli/run-command.js';

/** The real CLI in this process with its output captured, as an operator would see it. */
export async function cliInProcess(argv: string[], env: NodeJS.ProcessEnv, stdin?: Readable & { isTTY?: boolean }): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = {
    io: {
      stdout: new Writable({ write: (c: Buffer, _e, cb) => ((stdout += c.toString()), cb()) }),
      stderr: new Writable({ write: (c: Buffer, _e, cb) => ((stderr += c.toString()), cb()) }),
      env,
      ...(stdin ? { stdin } : {}),
    },
    version: 'test',
    onInterrupt: () => () => undefined,
    exitCode: 0,
  };
  const code = await runCli(argv, ctx);
  return { code, stdout, stderr };
}
