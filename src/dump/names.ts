/** Identifier quoting and storage-key naming. */

/** `name` with backticks doubled, in backticks. */
export function quoteIdent(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`';
}

export function qualified(db: string, table: string): string {
  return `${quoteIdent(db)}.${quoteIdent(table)}`;
}

/** SQL string literal for a utf8 JS string (used for metadata queries, never for row data). */
export function quoteString(value: string): string {
  return "'" + value.replace(/[\0\n\r\\'\x1a]/g, escapeChar) + "'";
}

/**
 * A database or table name as one storage-key segment: [A-Za-z0-9_-] kept, every other byte of the
 * UTF-8 name percent-encoded (so `weird-name.with dots` → `weird-name%2Ewith%20dots`). Keys stay
 * portable across drivers and case-sensitive names stay distinct.
 */
export function keyName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out.length > 0 ? out : '%00';
}

const ESCAPES: Record<string, string> = { '\0': '\\0', '\n': '\\n', '\r': '\\r', '\\': '\\\\', "'": "\\'", '\x1a': '\\Z' };
export function escapeChar(c: string): string {
  return ESCAPES[c] ?? c;
}

/** A dump id sorts by time: `20260101T060000Z-ab12`. */
export function makeDumpId(at: Date, random: string): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z') + '-' + random;
}
