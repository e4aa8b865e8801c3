import { relative } from 'node:path';
import type { DemoState } from './demo-state.js';
import { formatSeconds, type StepTiming } from './run-steps.js';

/** The end-of-run summary: what ran, where things are, what was archived, timings, next steps. */
export function formatSummary(state: DemoState, timings: readonly StepTiming[], opts: { keep: boolean; totalMs: number }): string[] {
  const { layout } = state;
  const rel = (path: string) => relative(layout.workDir, path) || '.';
  const lines: string[] = ['', 'summary'];
  const db = state.db;
  const s3 = state.s3;
  lines.push('  what ran');
  if (db) lines.push(`    MariaDB ${state.serverVersion ?? ''} on ${db.host}:${db.port} (throwaway: binlog ROW, FULL row metadata, CRC32)`);
  if (s3) lines.push(`    local S3 (s3rver) at ${s3.endpoint}, bucket ${s3.bucket}`);
  lines.push(`    check: ${state.checkLines.filter((l) => l.startsWith('ok')).length} ok, ${state.checkLines.filter((l) => /^(FAIL|warn)/.test(l)).length} warning(s) or failure(s)`);
  if (state.workload) {
    const rows = state.workload.tables.map((t) => `${t.name} ${t.rows}`).join(', ');
    lines.push(`    workload: database ${state.workload.database} (${rows} rows)`);
  }
  lines.push(`    archiver: ${state.archived.length} binlog segment(s) through the spool to s3-local; manifest verified deep (${state.verifiedRecords ?? 0} record(s))`);

  lines.push(`  where things are${opts.keep ? '' : ' (removed now; run with --keep to look around)'}`);
  lines.push(`    work dir     ${layout.workDir}`);
  lines.push(`    config       ${rel(layout.configFile)}, ${rel(layout.schedulesDir)}/`);
  lines.push(`    spool        ${rel(layout.spoolDir)}    state ${rel(layout.stateDir)}`);
  lines.push(`    local S3     ${rel(layout.s3Dir)}    local disk ${rel(layout.localDiskDir)}`);
  if (db) lines.push(`    MariaDB      ${rel(db.dir)} (error log ${rel(db.errorLogPath)})`);
  if (state.manifestLocation) lines.push(`    manifest     ${state.manifestLocation}`);

  lines.push(`  objects (${state.archived.length})`);
  const width = Math.max(0, ...state.archived.map((o) => o.key.length));
  for (const o of state.archived) {
    lines.push(`    ${o.storage}:${o.key.padEnd(width)}  ${String(o.size).padStart(10)} bytes  sha256 ${o.sha256}  (${o.source})`);
  }

  const steps = timings.map((t) => `${t.name.replace(/ \(.*\)$/, '')} ${formatSeconds(t.ms)}`).join('; ');
  lines.push(`  timings      total ${formatSeconds(opts.totalMs)}: ${steps}`);

  lines.push('  next steps');
  if (opts.keep) {
    lines.push(`    - look around: ls -R ${layout.workDir}`);
    lines.push(`    - start the demo server's objects again: everything s3rver stored is plain files under ${layout.s3Dir}`);
  } else {
    lines.push('    - run again with --keep (and --work-dir DIR) to keep the config, spool, manifest and objects');
  }
  lines.push('    - point it at your own server: copy examples/config.yaml to /etc/mysql-archiver/config.yaml, edit it,');
  lines.push('      then: mysql-archiver --config /etc/mysql-archiver/config.yaml check');
  lines.push('    - run every test: bash scripts/test.sh');
  return lines;
}
