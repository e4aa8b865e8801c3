// @ts-check
/**
 * Our replay alone, as the restore runs it (built dist/): the archived segments from a position to a
 * moment, verified, filtered (all events) and applied with mariadb-binlog | mariadb. Settings in
 * BENCH_REPLAY (JSON), the target password in BENCH_PASSWORD.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listSegments } from '../../dist/binlog/archive-catalog.js';
import { createLocalStorage } from '../../dist/storage/local/local-storage.js';
import { selectSegments } from '../../dist/restore/archive/replay-segments.js';
import { filterEvents } from '../../dist/restore/archive/event-filter.js';
import { applyBinlog } from '../../dist/restore/archive/apply-binlog.js';
import { prefetchedSegments } from '../../dist/restore/archive/segment-prefetch.js';

/** @type {{ archiveDir: string, file: string, position: number, at: string, host: string, port: number, out: string }} */
const s = JSON.parse(process.env['BENCH_REPLAY'] ?? '{}');
const archive = createLocalStorage({ path: s.archiveDir });
const stop = /** @type {const} */ ({ kind: 'time', at: new Date(s.at) });
const selection = selectSegments(await listSegments(archive), { file: s.file, position: s.position }, stop);
const work = await mkdtemp(join(tmpdir(), 'bench-replay-'));
/** @type {any} */
let r;
await applyBinlog(
  { feed: async (out) => { r = await filterEvents(prefetchedSegments(archive, selection.segments, work), out, { start: { file: s.file, position: s.position }, stop, mergeTransactions: true }); } },
  { login: { host: s.host, port: s.port, user: 'root', password: process.env['BENCH_PASSWORD'] ?? '' } },
);
await rm(work, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ events: r.events, bytes: selection.bytes }) + '\n');
