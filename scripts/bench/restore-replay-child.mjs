// @ts-check
/**
 * Our replay alone, as the restore runs it (built dist/): the archived segments from a position to a
 * moment, verified, filtered (all events) and applied with mariadb-binlog | mariadb. Settings in
 * BENCH_REPLAY (JSON), the target password in BENCH_PASSWORD.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { listSegments, verifiedSegmentBytes } from '../../dist/binlog/archive-catalog.js';
import { createLocalStorage } from '../../dist/storage/local/local-storage.js';
import { selectSegments } from '../../dist/restore/archive/replay-segments.js';
import { filterEvents } from '../../dist/restore/archive/event-filter.js';
import { applyBinlogFile } from '../../dist/restore/archive/apply-binlog.js';

/** @type {{ archiveDir: string, file: string, position: number, at: string, host: string, port: number, out: string }} */
const s = JSON.parse(process.env['BENCH_REPLAY'] ?? '{}');
const archive = createLocalStorage({ path: s.archiveDir });
const stop = /** @type {const} */ ({ kind: 'time', at: new Date(s.at) });
const selection = selectSegments(await listSegments(archive), { file: s.file, position: s.position }, stop);
const out = createWriteStream(s.out);
const r = await filterEvents(
  selection.segments.map((e) => ({ serverFile: e.serverFile, startPos: e.startPos, endPos: e.endPos, open: () => verifiedSegmentBytes(archive, e) })),
  out,
  { start: { file: s.file, position: s.position }, stop },
);
out.end();
await finished(out);
await applyBinlogFile(s.out, { login: { host: s.host, port: s.port, user: 'root', password: process.env['BENCH_PASSWORD'] ?? '' } });
process.stdout.write(JSON.stringify({ events: r.events, bytes: selection.bytes }) + '\n');
