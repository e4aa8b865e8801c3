import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareSegmentNames, parseSegmentObjectName, type SegmentNameParts } from '../../src/binlog/segment-name.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { TRICKY_SQL, replayBinlogFiles, runChurn, runSqlFile } from '../support/mariadb-cli.js';
import { fingerprintDatabase } from '../support/table-fingerprint.js';
import { waitFor } from '../support/wait.js';
import { mariadbBinlog, reassembleToBuffer } from './binlog-inspect.js';

/**
 * The archiver's promise end to end: whatever the server wrote, with rotations and two SIGKILLs
 * of the archiver in the middle, is in the archive exactly once, byte for byte, and replaying the
 * archive into a fresh server gives the same database.
 */

const ROUNDS = 6;
let source: MariadbServer;
let work: string;
let child: ArchiverChild | undefined;

interface ArchiverChild {
  process: ChildProcess;
  received?: { file: string; position: number };
  sealed: string[];
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function startChild(): ArchiverChild {
  const settings = {
    host: source.host,
    port: source.port,
    user: source.archiver.user,
    serverId: 9401,
    stateDir: join(work, 'state'),
    outDir: join(work, 'out'),
    maxSeconds: 1,
    maxBytes: 512 * 1024,
  };
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/binlog/support/archiver-child.ts'], {
    env: { ...process.env, ARCHIVER_CHILD: JSON.stringify(settings), ARCHIVER_CHILD_PASSWORD: source.archiver.password },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const c: ArchiverChild = {
    process: proc,
    sealed: [],
    lines: [],
    exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))),
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    c.lines.push(event);
    if (event['received']) c.received = event['received'] as ArchiverChild['received'];
    if (typeof event['sealed'] === 'string') c.sealed.push(event['sealed']);
  });
  return c;
}

async function masterStatus(): Promise<{ file: string; position: number }> {
  const [row] = await source.query<{ File: string; Position: string | number }[]>('SHOW MASTER STATUS');
  return { file: row!.File, position: Number(row!.Position) };
}

async function killChild(c: ArchiverChild): Promise<void> {
  c.process.kill('SIGKILL');
  await c.exited;
}

/** every archived segment, in binlog order */
async function archivedSegments(): Promise<(SegmentNameParts & { path: string })[]> {
  const out: (SegmentNameParts & { path: string })[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.binlog')) {
        const parts = parseSegmentObjectName(path.slice(join(work, 'out').length + 1));
        if (!parts) throw new Error(`unexpected file ${path}`);
        out.push({ ...parts, path });
      }
    }
  };
  await walk(join(work, 'out'));
  return out.sort(compareSegmentNames);
}

beforeAll(async () => {
  source = await startMariadb({ serverId: 401 });
  work = await mkdtemp(join(tmpdir(), 'archiver-roundtrip-'));
}, 120_000);

afterAll(async () => {
  if (child && child.process.exitCode === null) await killChild(child);
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('binlog archiver round trip (tricky.sql + churn, two SIGKILLs)', () => {
  it('archives every byte exactly once and a replay of the archive equals the source', { timeout: 300_000 }, async () => {
    child = startChild();
    await runSqlFile(source, TRICKY_SQL);
    for (let round = 1; round <= ROUNDS; round++) {
      await runChurn(source);
      await source.query('FLUSH BINARY LOGS');
      if (round === 2 || round === 4) {
        // mid-stream: the child has read part of what exists, not all of it
        await waitFor(() => child!.received !== undefined, { what: 'the archiver to receive events', timeoutMs: 60_000 });
        await runChurn(source);
        await killChild(child!);
        child = startChild();
      }
    }
    await runChurn(source);
    // sealed by time (maxSeconds 1) even though the server keeps writing this file; the server may
    // still add a Binlog_checkpoint event on its own after a rotation, so the target is re-read
    let end = await masterStatus();
    let lastSeen: unknown;
    await waitFor(
      async () => {
        end = await masterStatus();
        const segs = await archivedSegments();
        const last = segs.at(-1);
        lastSeen = last;
        return last?.serverFile === end.file && last.endPos === end.position;
      },
      { what: `the archive to reach the server's position`, timeoutMs: 60_000, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last segment ${JSON.stringify(lastSeen)}; child said ${JSON.stringify(child?.lines.slice(-5))}`);
    });
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);

    const segments = await archivedSegments();
    const firstFile = (await source.query<{ Log_name: string }[]>('SHOW BINARY LOGS'))[0]!.Log_name;
    const files = [...new Set(segments.map((s) => s.serverFile))];
    expect(files[0]).toBe(firstFile);
    expect(files.at(-1)).toBe(end.file);
    expect(files.length).toBe(ROUNDS + 1);

    // contiguous and byte-identical: every closed file rebuilds exactly; the open one up to its end
    for (const file of files) {
      const segs = segments.filter((s) => s.serverFile === file);
      const rebuilt = await reassembleToBuffer(segs);
      const server = await readFile(join(source.binlogDir, file));
      if (file === end.file) {
        server[21] = server[21]! & ~1; // LOG_EVENT_BINLOG_IN_USE_F: set on disk, cleared on the wire
        expect(rebuilt.equals(server.subarray(0, end.position)), file).toBe(true);
      } else {
        expect(rebuilt.length, file).toBe(server.length);
        expect(rebuilt.equals(server), file).toBe(true);
      }
    }
    for (const seg of segments) {
      const out = await mariadbBinlog(seg.path);
      expect(out.code, `${seg.path}: ${out.stderr}`).toBe(0);
    }

    // a fresh server from the same initial state (empty; setup stayed out of the binlog) + the archive
    const replica = await startMariadb({ serverId: 402 });
    await replayBinlogFiles(replica, segments.map((s) => s.path));
    const [a, b] = [await source.connectRoot(), await replica.connectRoot()];
    try {
      // row events carry no AUTO_INCREMENT counter: INSERT ... SELECT reserves ids in bulk on the
      // source, so any replica (and mariadb-binlog | mariadb) ends with max(id)+1; dumps keep it
      const expected = await fingerprintDatabase(a, 'tricky', { ignoreAutoIncrement: true });
      expect(Object.keys(expected).length).toBeGreaterThanOrEqual(12);
      expect(expected['numbers']!.rows).toBeGreaterThan(15_000);
      const actual = await fingerprintDatabase(b, 'tricky', { ignoreAutoIncrement: true });
      expect(actual).toEqual(expected);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
