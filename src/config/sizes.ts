/**
 * Human sizes ("10GiB", "256MiB", "64MB") and durations ("30d", "12h", "1h30m") as written in
 * config and schedule files and on the command line. Binary units are 1024-based, SI units
 * 1000-based, so "256MiB" and "256MB" mean what an operator expects from each.
 */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

export class SizeParseError extends Error {}

/** Bytes from a number (already bytes) or a string such as "10GiB"; throws SizeParseError. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new SizeParseError(`invalid size ${value}: expected a whole number of bytes`);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match?.[2]?.toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (!match || factor === undefined) {
    throw new SizeParseError(`invalid size "${value}": write a number with a unit such as 512KiB, 256MiB, 10GiB or 64MB`);
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new SizeParseError(`invalid size "${value}": too large`);
  return bytes;
}

/** Milliseconds from a string such as "30d", "12h" or "1h30m"; a bare number is seconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new SizeParseError(`invalid duration ${value}: expected seconds >= 0`);
    return Math.round(value * 1000);
  }
  const text = value.trim().toLowerCase();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = part.lastIndex;
  }
  if (text === '' || consumed !== text.length) {
    throw new SizeParseError(`invalid duration "${value}": write a number with a unit such as 45s, 15m, 12h, 30d or 1h30m`);
  }
  return Math.round(total);
}

/** "268435456" → "256MiB": for messages and status output. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    i++;
  }
  if (i === 0 && bytes >= 1024) return formatApprox(bytes);
  return `${value}${units[i]}`;
}

function formatApprox(bytes: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(1)}${units[i]}`;
}

/** 93_600_000 → "1d2h": for messages and status output. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join('');
}
