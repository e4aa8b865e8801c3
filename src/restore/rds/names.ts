/**
 * Names and tags of temporary restore instances. The instance name says what it is and which
 * moment it holds (`prod-db-restore-20261125140300`); the tags let `rds cleanup` find leftovers
 * without guessing from names.
 */
import type { TableRef } from '../table-copy/index.js';

export const TOOL_TAG = { Key: 'tool', Value: 'mysql-archiver' } as const;
export const PURPOSE_TAG = { Key: 'purpose', Value: 'table-restore' } as const;
export const TAG_REQUESTED_BY = 'requested-by';
export const TAG_EXPIRES_AT = 'expires-at';
export const TAG_SOURCE = 'source-instance';
export const TAG_RESTORE_TIME = 'restore-time';
export const TAG_RUN_ID = 'restore-id';
export const TAG_TABLE = 'restore-table';

const RDS_ID_MAX = 63;
const MYSQL_ID_MAX = 64;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** 20261125140300 (UTC) */
export function compactUtc(at: Date): string {
  return `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}`;
}

/**
 * `<source>-restore-<yyyymmddhhmmss>` (the restore point, UTC), within RDS identifier rules:
 * 1-63 letters, digits and hyphens, a letter first, no double or trailing hyphen.
 */
export function tempInstanceName(sourceInstance: string, at: Date): string {
  const suffix = `-restore-${compactUtc(at)}`;
  let base = sourceInstance.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-{2,}/g, '-');
  if (!/^[a-z]/.test(base)) base = `db-${base}`;
  base = base.slice(0, RDS_ID_MAX - suffix.length).replace(/-+$/, '');
  return `${base}${suffix}`;
}

/** `TABLE__restored_<yyyymmdd_hhmmss>` (the restore point, UTC), within MySQL's 64-character limit. */
export function restoredTableName(table: string, at: Date): string {
  const c = compactUtc(at);
  const suffix = `__restored_${c.slice(0, 8)}_${c.slice(8)}`;
  return `${table.slice(0, MYSQL_ID_MAX - suffix.length)}${suffix}`;
}

/** RDS tag values allow letters, digits, spaces and `_ . : / = + - @`, up to 256 characters. */
export function tagValue(value: string): string {
  return value.replace(/[^\p{L}\p{N}\s_.:/=+\-@]/gu, '_').slice(0, 256);
}

export interface RestoreTagInput {
  readonly requestedBy: string;
  readonly expiresAt: Date;
  readonly sourceInstance: string;
  readonly restoreTime: Date;
  readonly runId: string;
  readonly table: TableRef;
  /** the operator's own tags (cost centre...); ours win on a clash */
  readonly extra?: Readonly<Record<string, string>>;
}

export function restoreTags(input: RestoreTagInput): { Key: string; Value: string }[] {
  const tags = new Map<string, string>();
  for (const [k, v] of Object.entries(input.extra ?? {})) tags.set(k, tagValue(v));
  tags.set(TOOL_TAG.Key, TOOL_TAG.Value);
  tags.set(PURPOSE_TAG.Key, PURPOSE_TAG.Value);
  tags.set(TAG_REQUESTED_BY, tagValue(input.requestedBy || 'unknown'));
  tags.set(TAG_EXPIRES_AT, input.expiresAt.toISOString());
  tags.set(TAG_SOURCE, tagValue(input.sourceInstance));
  tags.set(TAG_RESTORE_TIME, input.restoreTime.toISOString());
  tags.set(TAG_RUN_ID, input.runId);
  tags.set(TAG_TABLE, tagValue(`${input.table.db}.${input.table.name}`));
  return [...tags].map(([Key, Value]) => ({ Key, Value }));
}

export function tagMap(tags: readonly { Key?: string | undefined; Value?: string | undefined }[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key) out[t.Key] = t.Value ?? '';
  return out;
}

export function isRestoreInstance(tags: Record<string, string>): boolean {
  return tags[TOOL_TAG.Key] === TOOL_TAG.Value && tags[PURPOSE_TAG.Key] === PURPOSE_TAG.Value;
}
