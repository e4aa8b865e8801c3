import { configuredOpener } from '../restore/archive/dump-candidates.js';
import type { StopPoint } from '../restore/archive/event-filter.js';
import { restoreTableFromArchive } from '../restore/archive/restore-table.js';
import { targetLogin } from '../restore/target-login.js';
import { restoreInstant, type RestorePoint } from './args.js';
import type { RestoreTableOptions } from './commands/restore.js';
import type { CommandResult, ConfiguredDeps } from './run-command.js';

export function stopPointOf(point: RestorePoint, timeZone: string): StopPoint {
  if (point.kind === 'time') return { kind: 'time', at: restoreInstant(point, timeZone) };
  if (point.kind === 'position') return { kind: 'position', file: point.file, position: point.position };
  return { kind: 'gtid', gtid: point.gtid };
}

/** `restore table DB.TABLE --at ...` from our dumps and binlog archive: plan, progress, summary. */
export async function restoreTableFromArchiveCommand(options: RestoreTableOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const timeZone = deps.config.restore.timezone;
  const table = { db: options.table.database, name: options.table.table };
  const started = Date.now();
  const result = await restoreTableFromArchive({
    table,
    stop: stopPointOf(options.at, timeZone),
    ...(options.into ? { into: { db: options.into.database, name: options.into.table } } : {}),
    ...(options.toFile ? { toFile: options.toFile } : {}),
    dryRun: options.dryRun,
    timeZone,
    schedules: deps.schedules,
    open: configuredOpener(deps.config, deps.io.env),
    archiveStorage: deps.config.archiver.storage,
    target: await targetLogin(deps.config, deps.io.env),
    logger: deps.logger,
    signal: deps.signal,
    onProgress: out,
  });
  if (result.dryRun) {
    out('plan (dry run: nothing is changed):');
    for (const line of result.plan.lines) out(`  ${line}`);
    return 0;
  }
  out('plan:');
  for (const line of result.plan.lines) out(`  ${line}`);
  out(`restored ${result.rows} row(s) of ${table.db}.${table.name} into ${result.delivered} in ${((Date.now() - started) / 1000).toFixed(1)} s${result.reached ? ` (replayed to ${result.reached.file}:${result.reached.position})` : ''}`);
  for (const s of result.skippedDumps) out(`note: skipped ${s}`);
  if (result.delivered?.startsWith('table ')) {
    const restored = result.delivered.slice('table '.length);
    out(`check it, then swap it in yourself, e.g.: RENAME TABLE ${table.db}.${table.name} TO ${table.db}.${table.name}__old, ${restored} TO ${table.db}.${table.name}`);
  }
  return 0;
}
