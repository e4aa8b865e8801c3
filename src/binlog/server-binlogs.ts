import type { QueryRunner } from './preflight.js';
import type { BinlogPosition } from './segment-writer.js';

/** What the archiver asks the source about its binlogs, on the control connection. */
export interface ServerBinlogs {
  serverId: number;
  /** MySQL only; MariaDB has none */
  serverUuid?: string;
  /** SHOW BINARY LOGS, oldest first */
  files: { name: string; size: number }[];
  /** SHOW MASTER STATUS: the end of what the server wrote */
  current: BinlogPosition;
}

type Row = Record<string, unknown>;

export async function readServerBinlogs(conn: QueryRunner): Promise<ServerBinlogs> {
  const [idRows] = await conn.query('SELECT @@server_id AS id');
  const serverId = Number((idRows as Row[])[0]?.['id']);
  let serverUuid: string | undefined;
  try {
    const [uuidRows] = await conn.query('SELECT @@server_uuid AS u');
    const u = (uuidRows as Row[])[0]?.['u'];
    if (typeof u === 'string' && u) serverUuid = u;
  } catch {
    // MariaDB: no such variable, the server is known by server_id
  }
  const [logRows] = await conn.query('SHOW BINARY LOGS');
  const files = (logRows as Row[]).map((r) => ({ name: String(r['Log_name']), size: Number(r['File_size']) }));
  const [statusRows] = await conn.query('SHOW MASTER STATUS');
  const status = (statusRows as Row[])[0];
  const current = status
    ? { file: String(status['File']), position: Number(status['Position']) }
    : { file: files.at(-1)?.name ?? '', position: files.at(-1)?.size ?? 0 };
  return { serverId, ...(serverUuid ? { serverUuid } : {}), files, current };
}

/** Bytes the server wrote after `from`, by SHOW BINARY LOGS sizes (0 when `from` is not among them). */
export function bytesBehind(server: Pick<ServerBinlogs, 'files' | 'current'>, from: BinlogPosition): number {
  const index = server.files.findIndex((f) => f.name === from.file);
  if (index < 0) return 0;
  let total = 0;
  for (let i = index; i < server.files.length; i++) {
    const f = server.files[i]!;
    const size = f.name === server.current.file ? server.current.position : f.size;
    total += i === index ? Math.max(0, size - from.position) : size;
  }
  return total;
}
