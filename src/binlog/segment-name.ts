/**
 * Object names of archived segments:
 *
 *   segments/<source>/<serverFile>/<startPos, 12 digits>-<endPos, 12 digits>.binlog
 *   segments/server-1/mysql-bin.000042/000000000004-000001048576.binlog
 *
 * `source` names the server whose binlog this is (its server_uuid on MySQL, `server-<server_id>`
 * on MariaDB, which has no uuid). Within one source, plain string order is binlog order as long as
 * the server's file numbers keep their width (six digits: up to mysql-bin.999999); past that,
 * sort with compareSegmentNames, which compares the numeric extension as a number.
 * Twelve digits hold positions up to 1 TB, far beyond any binlog file.
 */
export const SEGMENT_PREFIX = 'segments/';
const SUFFIX = '.binlog';
const POS_DIGITS = 12;
const MAX_POS = 10 ** POS_DIGITS - 1;
const SAFE_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface SegmentNameParts {
  source: string;
  serverFile: string;
  startPos: number;
  endPos: number;
}

export function segmentObjectName(parts: SegmentNameParts): string {
  checkPart('source', parts.source);
  checkPart('server file', parts.serverFile);
  if (!Number.isSafeInteger(parts.startPos) || !Number.isSafeInteger(parts.endPos)) {
    throw new RangeError(`segment positions must be integers: ${parts.startPos}-${parts.endPos}`);
  }
  if (parts.startPos < 4 || parts.endPos <= parts.startPos || parts.endPos > MAX_POS) {
    throw new RangeError(`invalid segment range ${parts.startPos}-${parts.endPos}`);
  }
  return `${SEGMENT_PREFIX}${parts.source}/${parts.serverFile}/${pad(parts.startPos)}-${pad(parts.endPos)}${SUFFIX}`;
}

/** The parts of a name made by segmentObjectName, or undefined for any other key. */
export function parseSegmentObjectName(name: string): SegmentNameParts | undefined {
  const m = /^segments\/([^/]+)\/([^/]+)\/(\d{12})-(\d{12})\.binlog$/.exec(name);
  if (!m || !SAFE_PART.test(m[1]!) || !SAFE_PART.test(m[2]!)) return undefined;
  const startPos = Number(m[3]);
  const endPos = Number(m[4]);
  if (startPos < 4 || endPos <= startPos) return undefined;
  return { source: m[1]!, serverFile: m[2]!, startPos, endPos };
}

/** `source` for a server identified by server_uuid (MySQL) or only by server_id (MariaDB). */
export function segmentSource(server: { serverUuid?: string; serverId: number }): string {
  return server.serverUuid ? server.serverUuid.toLowerCase() : `server-${server.serverId}`;
}

/** Orders binlog file names by base name, then by the number after the last dot. */
export function compareBinlogFiles(a: string, b: string): number {
  const pa = splitFile(a);
  const pb = splitFile(b);
  if (pa.base !== pb.base) return pa.base < pb.base ? -1 : 1;
  if (pa.seq !== pb.seq) return pa.seq < pb.seq ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Binlog order: source, then server file (numerically), then start position. */
export function compareSegmentNames(a: SegmentNameParts, b: SegmentNameParts): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return compareBinlogFiles(a.serverFile, b.serverFile) || a.startPos - b.startPos || a.endPos - b.endPos;
}

function splitFile(name: string): { base: string; seq: bigint } {
  const m = /^(.*)\.(\d+)$/.exec(name);
  return m ? { base: m[1]!, seq: BigInt(m[2]!) } : { base: name, seq: -1n };
}

function pad(n: number): string {
  return String(n).padStart(POS_DIGITS, '0');
}

function checkPart(what: string, value: string): void {
  if (!SAFE_PART.test(value) || value.length > 200) {
    throw new RangeError(`invalid ${what} for a segment name: ${JSON.stringify(value)}`);
  }
}
