/**
 * Test helpers that look inside archived segments with code independent of the writer: walk the
 * events of a segment file and run the real `mariadb-binlog` on it.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { fileSegmentSource, reassemble } from '../../src/binlog/reassemble.js';

export interface ScannedEvent {
  /** offset in the segment file */
  offset: number;
  type: number;
  size: number;
  logPos: number;
  flags: number;
  raw: Buffer;
}

/** every event of a binlog(-like) file, the magic skipped */
export async function scanEvents(path: string): Promise<ScannedEvent[]> {
  const buf = await readFile(path);
  if (buf.readUInt32BE(0) !== 0xfe62696e) throw new Error(`${path} has no binlog magic`);
  const events: ScannedEvent[] = [];
  for (let off = 4; off < buf.length; ) {
    const size = buf.readUInt32LE(off + 9);
    if (size < 19 || off + size > buf.length) throw new Error(`${path}: bad event size ${size} at ${off}`);
    events.push({ offset: off, type: buf[off + 4]!, size, logPos: buf.readUInt32LE(off + 13), flags: buf.readUInt16LE(off + 17), raw: buf.subarray(off, off + size) });
    off += size;
  }
  return events;
}

/** the statement of a Query event (CRC32 assumed) */
export function queryText(raw: Buffer): string {
  const dbLen = raw[19 + 8]!;
  const statusLen = raw.readUInt16LE(19 + 11);
  return raw.toString('latin1', 19 + 13 + statusLen + dbLen + 1, raw.length - 4);
}

export interface BinlogToolResult {
  code: number | null;
  stderr: string;
  /** `### INSERT INTO`, `### UPDATE`, `### DELETE FROM` lines of the decoded rows */
  inserts: number;
  updates: number;
  deletes: number;
  /** lines of the output matching `grep` */
  matches: string[];
}

/** `mariadb-binlog --verify-binlog-checksum -v --base64-output=decode-rows FILE`, output streamed, not kept */
export function mariadbBinlog(path: string, grep?: RegExp): Promise<BinlogToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('mariadb-binlog', ['--no-defaults', '--verify-binlog-checksum', '-v', '--base64-output=decode-rows', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result: BinlogToolResult = { code: null, stderr: '', inserts: 0, updates: 0, deletes: 0, matches: [] };
    child.stderr.setEncoding('utf8').on('data', (d: string) => (result.stderr += d));
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (line.startsWith('### INSERT INTO')) result.inserts++;
      else if (line.startsWith('### UPDATE')) result.updates++;
      else if (line.startsWith('### DELETE FROM')) result.deletes++;
      if (grep?.test(line)) result.matches.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      result.code = code;
      resolve(result);
    });
  });
}

/** The server file rebuilt from its segment files (reassemble), in memory: for small test files only. */
export async function reassembleToBuffer(segs: readonly { path: string; startPos: number; endPos: number; serverFile?: string }[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await reassemble(segs.map(fileSegmentSource), sink);
  return Buffer.concat(chunks);
}
