// @ts-check
/**
 * Our dump or load as the service runs it (the built dist/), in a process of its own so its peak RSS
 * is measured from outside like mariadb-dump's and mydumper's. Settings in BENCH_DUMP (JSON); the
 * server is reached as root on its socket, so no password exists to leak into argv or env.
 * mode 'dump': runDump of `databases` into a local storage at `outDir`; prints a JSON summary line.
 * mode 'load': loadDump of the one dump under `outDir` into `renameTo`, verified; prints a summary line.
 */
import { createLocalStorage } from '../../dist/storage/local/local-storage.js';
import { listDumps, loadDump, runDump } from '../../dist/dump/index.js';

/** @type {{ mode: 'dump' | 'load', socket: string, outDir: string, tmpDir: string, databases?: string[], concurrency?: number, compression?: 'gzip' | 'zstd', renameTo?: string, verify?: boolean, skipBinlog?: boolean }} */
const s = JSON.parse(process.env['BENCH_DUMP'] ?? '{}');
const storage = createLocalStorage({ path: s.outDir });
const source = { host: 'localhost', port: 0, socketPath: s.socket, user: 'root' };

if (s.mode === 'dump') {
  const m = await runDump({ source, storage, tier: 'bench', databases: s.databases, concurrency: s.concurrency, compression: s.compression, tmpDir: s.tmpDir });
  const summary = {
    rows: m.tables.reduce((n, t) => n + t.rows, 0),
    sqlBytes: m.tables.reduce((n, t) => n + t.sqlBytes, 0),
    fileBytes: m.files.reduce((n, f) => n + f.size, 0),
    files: m.files.length,
    connections: m.snapshot.connections,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} else {
  const [dump] = await listDumps(storage, 'bench');
  if (!dump) throw new Error(`no dump under ${s.outDir}`);
  const r = await loadDump({ storage, dumpPrefix: dump.prefix, target: source, renameDatabase: s.renameTo, concurrency: s.concurrency, verify: s.verify, skipBinlog: s.skipBinlog });
  const summary = { rows: r.tables.reduce((n, t) => n + (t.rows < 0 ? t.expectedRows : t.rows), 0), verified: r.tables.every((t) => t.ok === true), bytesRead: r.bytesRead };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
