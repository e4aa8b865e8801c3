/**
 * Plain-text tables and the number formats every bench prints, so results from different benches
 * read the same way. MB is 10^6 bytes (as in notes/baselines.md); memory is in MiB.
 */
export interface Column {
  header: string;
  /** default: right for everything but the first column */
  align?: 'left' | 'right';
}

export type Cell = string | number | undefined;

/** Columns padded to their widest cell, a dashed rule under the header; undefined cells print as '-'. */
export function formatTable(columns: readonly (Column | string)[], rows: readonly (readonly Cell[])[]): string {
  const cols = columns.map((c, i): Required<Column> => {
    const col = typeof c === 'string' ? { header: c } : c;
    return { header: col.header, align: col.align ?? (i === 0 ? 'left' : 'right') };
  });
  const text = rows.map((row) => cols.map((_, i) => cellText(row[i])));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...text.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (cols[i]?.align === 'left' ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), widths.map((w) => '-'.repeat(w)).join('  '), ...text.map(line)].join('\n');
}

function cellText(cell: Cell): string {
  if (cell === undefined) return '-';
  return typeof cell === 'number' ? String(cell) : cell;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** "1 GiB", "256 MiB", "1.5 MiB", "512 B" */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', GiB], ['MiB', MiB], ['KiB', 1024]] as const) {
    if (bytes >= factor) return `${trimZeros((bytes / factor).toFixed(2))} ${unit}`;
  }
  return `${bytes} B`;
}

/** MB/s with MB = 10^6 bytes */
export function formatRate(bytes: number, seconds: number): string {
  return seconds > 0 ? (bytes / 1e6 / seconds).toFixed(1) : '-';
}

export function formatMiB(bytes: number | undefined, digits = 1): string {
  return bytes === undefined ? '-' : (bytes / MiB).toFixed(digits);
}

export function formatSeconds(seconds: number | undefined): string {
  return seconds === undefined ? '-' : seconds.toFixed(2);
}

/** "0.85x"; a ratio of nothing (no anchor, zero divisor) prints as '-' */
export function formatRatio(value: number | undefined, anchor: number | undefined): string {
  if (value === undefined || anchor === undefined || anchor === 0) return '-';
  return `${(value / anchor).toFixed(2)}x`;
}

/** "+1.8", "-0.4" */
export function formatSignedMiB(bytes: number): string {
  const v = (bytes / MiB).toFixed(1);
  return bytes >= 0 ? `+${v}` : v;
}

function trimZeros(text: string): string {
  return text.replace(/\.?0+$/, '');
}
