/**
 * `restore table ... --replace`: the last step of a table restore, shared by both sources. It is
 * refused before anything starts when nobody can confirm it (no terminal, no --yes), and asks on
 * a terminal only once the restored copy exists, so the operator decides with the row count in
 * front of them.
 */
import { createInterface } from 'node:readline/promises';
import { UsageError } from '../errors.js';
import { replaceLiveTable } from '../restore/replace-live.js';
import { targetLogin } from '../restore/target-login.js';
import type { RestoreTableOptions } from './commands/restore.js';
import type { ConfiguredDeps } from './run-command.js';

const noTerminal = () =>
  new UsageError('--replace needs a confirmation and there is no terminal to ask on', {
    hint: 'Run it on a terminal to be asked, or add --yes to confirm in advance (scripts).',
  });

/** Throws (exit 2, nothing changed) when --replace could not be confirmed. */
export function checkReplaceConfirmable(options: RestoreTableOptions, deps: ConfiguredDeps): void {
  if (!options.replace || options.dryRun || options.yes) return;
  if (!deps.io.stdin?.isTTY) throw noTerminal();
}

/** Asks (unless --yes), then replaces the live rows with the restored copy's; prints what happened. */
export async function replaceStep(options: RestoreTableOptions, deps: ConfiguredDeps, restored: { db: string; name: string }, rows: number, when: Date): Promise<void> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const live = { db: options.table.database, name: options.table.table };
  const liveName = `${live.db}.${live.name}`;
  const suffix = when.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  if (!options.yes) {
    const stdin = deps.io.stdin;
    if (!stdin) throw noTerminal();
    const rl = createInterface({ input: stdin, output: deps.io.stderr });
    let answer: string;
    try {
      answer = await rl.question(`replace every row of ${liveName} with the ${rows} restored row(s)? The live rows are kept in ${liveName}__before_replace_${suffix}. Type ${liveName} to confirm: `);
    } finally {
      rl.close();
    }
    if (answer.trim() !== liveName) {
      out(`not replaced: ${liveName} is untouched; the restored rows stay in ${restored.db}.${restored.name}`);
      return;
    }
  }
  out(`replace: ${liveName} <- ${restored.db}.${restored.name} (one transaction, row-based, replicated)`);
  const r = await replaceLiveTable(await targetLogin(deps.config, deps.io.env), live, restored, suffix);
  out(`replaced: ${liveName} now holds the ${r.rows} restored row(s); its previous rows are in ${r.backup.db}.${r.backup.name}`);
}
