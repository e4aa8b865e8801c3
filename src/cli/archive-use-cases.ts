import { checkReplaceConfirmable, replaceStep } from './replace-step.js';
import { configuredOpener } from '../restore/archive/dump-candidates.js';
import type { StopPoint } from '../restore/archive/event-filter.js';
import { restoreTableFromArchive } from '../restore/archive/restore-table.js';
import { targetLogin } from '../restore/target-login.js';
import { restoreInstant, type RestorePoint } from './args.js';
import type { RestorePitrOptions, RestoreTableOptions } from './commands/restore.js';
import type { VerifyOptions } from './commands/verify.js';
import { restorePitr } from '../restore/archive/restore-pitr.js';
import { runDrill } from '../restore/drill.js';
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
  checkReplaceConfirmable(options, deps);
  const started = Date.now();
  const result = await restoreTableFromArchive({
    table,
    stop: stopPointOf(options.at, timeZone),
    ...(options.into ? { into: { db: options.into.database, name: options.into.table } } : {}),
    ...(options.toFile ? { toFile: options.toFile } : {}),
    ...(options.where ? { where: options.where } : {}),
    dryRun: options.dryRun,
    timeZone,
    schedules: deps.schedules,
    open: configuredOpener(deps.config, deps.io.env),
    archiveStorage: deps.config.archiver.storage,
    target: await targetLogin(deps.config, deps.io.env),
    logger: deps.logger,
    signal: deps.signal,
    onProgress: out,
    onPlan: printPlan(out, 'plan:'),
  });
  if (result.dryRun) {
    printPlan(out, 'plan (dry run: nothing is changed):')(result.plan.lines);
    return 0;
  }
  out(`restored ${result.rows} row(s) of ${table.db}.${table.name} into ${result.delivered} in ${((Date.now() - started) / 1000).toFixed(1)} s${result.reached ? ` (replayed to ${result.reached.file}:${result.reached.position})` : ''}`);
  for (const s of result.skippedDumps) out(`note: skipped ${s}`);
  if (result.delivered?.startsWith('table ')) {
    const restored = result.delivered.slice('table '.length);
    if (options.replace && result.restoredTable) {
      await replaceStep(options, deps, result.restoredTable, result.rows ?? 0, new Date(started));
    } else {
      out(`check it, then put it back with the same command plus --replace (rows copied in one replicated transaction), or on a server without replicas: RENAME TABLE ${table.db}.${table.name} TO ${table.db}.${table.name}__old, ${restored} TO ${table.db}.${table.name}`);
    }
  }
  return 0;
}

/** `restore pitr --at ... --target HOST:PORT`: plan, progress, summary. */
export async function restorePitrCommand(options: RestorePitrOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const timeZone = deps.config.restore.timezone;
  const login = await targetLogin(deps.config, deps.io.env);
  const started = Date.now();
  const result = await restorePitr({
    stop: stopPointOf(options.at, timeZone),
    schedules: deps.schedules,
    open: configuredOpener(deps.config, deps.io.env),
    archiveStorage: deps.config.archiver.storage,
    target: { user: login.user, host: options.target.host, port: options.target.port, ...(login.password !== undefined ? { password: login.password } : {}), ...(login.tls ? { tls: login.tls } : {}) },
    ...(options.database ? { database: options.database } : {}),
    dryRun: options.dryRun,
    timeZone,
    logger: deps.logger,
    signal: deps.signal,
    onProgress: out,
    onPlan: printPlan(out, 'plan:'),
  });
  if (options.dryRun) {
    printPlan(out, 'plan (dry run: nothing is changed):')(result.lines);
    return 0;
  }
  out(`restored ${result.load?.tables.length ?? 0} table(s) and replayed ${result.filtered?.events ?? 0} event(s) into ${options.target.host}:${options.target.port} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const s of result.skippedDumps) out(`note: skipped ${s}`);
  return 0;
}

/** The plan is printed before the restore acts, so the operator sees what will happen as it starts. */
function printPlan(out: (line: string) => void, title: string): (lines: readonly string[]) => void {
  return (lines) => {
    out(title);
    for (const line of lines) out(`  ${line}`);
  };
}

/** `verify`: the restore drill, loud on failure. */
export async function verifyCommand(_options: VerifyOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const r = await runDrill(deps.config, deps.schedules, { logger: deps.logger, env: deps.io.env, signal: deps.signal, onProgress: out });
  if (r.ok) {
    out(`drill passed: dump ${r.base?.dumpId} restored${r.comparedWith ? `, binlog replayed to dump ${r.comparedWith.dumpId} and all ${r.tables} table(s) equal to its checksums` : `, ${r.events ?? 0} archived event(s) replayed`} in ${(r.durationMs / 1000).toFixed(1)} s`);
    return 0;
  }
  deps.io.stderr.write(`RESTORE DRILL FAILED: ${r.error}\n`);
  for (const m of r.mismatches) deps.io.stderr.write(`  ${m}\n`);
  return 1;
}
