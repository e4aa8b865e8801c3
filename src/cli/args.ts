import { InvalidArgumentError } from 'commander';
import { parseDuration, SizeParseError } from '../config/sizes.js';
import { wallClockIn } from '../time/wall-clock.js';

export { wallClockIn };

/**
 * Argument parsers for commander (`.argParser`). They throw InvalidArgumentError, which commander
 * prints as one usage line (exit 2).
 */

/** Where a restore stops: a moment, a binlog position, or a GTID. */
export type RestorePoint =
  /** `wallClock` is set when no zone was written: the use case reads it in the configured zone */
  | { readonly kind: 'time'; readonly at: Date; readonly wallClock?: string }
  | { readonly kind: 'position'; readonly file: string; readonly position: number }
  | { readonly kind: 'gtid'; readonly gtid: string };

export const RESTORE_POINT_HELP =
  'TIME is ISO 8601 (2026-11-25T14:03:00Z, 2026-11-25T15:03:00+01:00; "2026-11-25 14:03" without a zone is read in restore.timezone, default UTC), ' +
  'a relative "15m ago", a binlog position (mysql-bin.000042:1337) or a GTID (0-1-865)';

/** `now` is injected so that "15m ago" is testable. */
export function parseRestorePoint(value: string, now: () => Date = () => new Date()): RestorePoint {
  const text = value.trim();
  const position = /^([A-Za-z0-9_.-]+\.\d{6,}):(\d+)$/.exec(text);
  if (position) return { kind: 'position', file: position[1] as string, position: Number(position[2]) };
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    throw new InvalidArgumentError(`add a time of day, e.g. ${text}T00:00:00Z.`);
  }
  if (/^\d+-\d+-\d+(,\d+-\d+-\d+)*$/.test(text) || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\d+(-\d+)?$/i.test(text)) {
    return { kind: 'gtid', gtid: text };
  }
  const ago = /^(.+?)\s+ago$/i.exec(text);
  if (ago) {
    try {
      return { kind: 'time', at: new Date(now().getTime() - parseDuration(ago[1] as string)) };
    } catch (error) {
      if (!(error instanceof SizeParseError)) throw error;
    }
  }
  const parsed = parseTime(text);
  if (parsed) return { kind: 'time', at: parsed.at, ...(parsed.wallClock ? { wallClock: parsed.wallClock } : {}) };
  throw new InvalidArgumentError(`expected a time, position or GTID: ${RESTORE_POINT_HELP}.`);
}

/** `--at-position FILE:POS` */
export function parseRestorePosition(value: string): RestorePoint {
  const p = parseRestorePoint(value);
  if (p.kind !== 'position') throw new InvalidArgumentError('expected a binlog position FILE:POS, e.g. mysql-bin.000042:1337.');
  return p;
}

/** `--at-gtid DOMAIN-SERVER-SEQ` */
export function parseRestoreGtid(value: string): RestorePoint {
  const p = parseRestorePoint(value);
  if (p.kind !== 'gtid') throw new InvalidArgumentError('expected a GTID, e.g. 0-1-865.');
  return p;
}

function parseTime(text: string): { at: Date; wallClock?: string } | undefined {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(text);
  if (!m) return undefined;
  const zone = m[3] ? (m[3].toUpperCase() === 'Z' ? 'Z' : m[3].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')) : 'Z';
  const at = new Date(`${m[1]}T${m[2]}${zone}`);
  if (Number.isNaN(at.getTime())) return undefined;
  return m[3] ? { at } : { at, wallClock: `${m[1]}T${m[2]}` };
}

/** The restore instant of a time point, reading zone-less times in `timeZone`. */
export function restoreInstant(point: Extract<RestorePoint, { kind: 'time' }>, timeZone: string): Date {
  return point.wallClock ? wallClockIn(point.wallClock, timeZone) : point.at;
}

export interface TableName {
  readonly database: string;
  readonly table: string;
}

/** `shop.orders` or `` `my.db`.`my table` `` */
export function parseTableName(value: string): TableName {
  const quoted = /^`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`$/.exec(value);
  if (quoted) return { database: (quoted[1] as string).replace(/``/g, '`'), table: (quoted[2] as string).replace(/``/g, '`') };
  const plain = /^([^.`\s]+)\.([^.`\s]+)$/.exec(value);
  if (plain) return { database: plain[1] as string, table: plain[2] as string };
  throw new InvalidArgumentError('expected DATABASE.TABLE, e.g. shop.orders (quote names containing dots with backticks).');
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `db2.internal:3306`, `[::1]:3307` */
export function parseHostPort(value: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 10.0.0.5:3306.');
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Milliseconds from "30d", "12h", "1h30m". */
export function parseDurationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new InvalidArgumentError('expected a duration such as 6h, 2d or 1h30m.');
  }
}

/** A dump tier name as written in a schedule file. */
export function parseTierName(value: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(value)) throw new InvalidArgumentError('expected a tier name such as daily.');
  return value;
}
