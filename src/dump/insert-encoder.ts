/**
 * One table's rows, as the connection receives them (row-packets.ts), in; its INSERT statements out
 * as a Readable (one Buffer per batch of statements, in row order), with the table's checksum.
 *
 * The rows go through RowBatches (row-workers.ts): worker threads sum and encode them
 * (sql-encode.ts) while this thread keeps reading the connection. `row()` returns false when the
 * reader (the chunk sink) or the workers are behind; `whenReady` says when to send rows again.
 */
import { Readable } from 'node:stream';
import { CHECKSUM_ALGORITHM, type RowChecksum } from './checksum.js';
import { insertHead, UTF8_CHARSETS } from './columns.js';
import type { RowPacketSink } from './row-packets.js';
import { releaseStatements, RowBatches } from './row-workers.js';
import { WAY_HEX, WAY_PLAIN, WAY_QUOTED, WAY_SKIP, WAY_TEXT, WAY_TEXT_HEX, type InsertPlan } from './sql-encode.js';
import type { DumpColumn } from './types.js';

const HEX_OPEN = Buffer.from("X'", 'latin1');

/** How each selected column is written: the rules of `literal()` (columns.ts). */
export function insertPlan(table: string, columns: readonly DumpColumn[], statementBytes: number): InsertPlan {
  const ways = new Uint8Array(columns.length);
  const hexOpens: Uint8Array[] = [];
  columns.forEach((c, i) => {
    let open = HEX_OPEN;
    if (c.generated) ways[i] = WAY_SKIP;
    else if (c.kind === 'num' || c.kind === 'float') ways[i] = WAY_PLAIN;
    else if (c.kind === 'temporal') ways[i] = WAY_QUOTED;
    else if (c.kind === 'bit' || c.kind === 'binary') ways[i] = WAY_HEX;
    else {
      if (c.charset !== null && /^[a-z0-9_]+$/.test(c.charset)) open = Buffer.from(`_${c.charset} X'`, 'latin1');
      ways[i] = c.charset === null || UTF8_CHARSETS.has(c.charset) ? WAY_TEXT : WAY_TEXT_HEX;
    }
    hexOpens.push(open);
  });
  return { head: Buffer.from(insertHead(table, columns), 'latin1'), ways, hexOpens, limit: statementBytes };
}

export class InsertEncoder extends Readable implements RowPacketSink {
  readonly #batches: RowBatches;
  /** the reader asked for more since a push last filled the buffer */
  #wanted = true;
  #resume: { go(): void; fail(error: unknown): void } | undefined;

  constructor(table: string, columns: readonly DumpColumn[], statementBytes: number) {
    super({ highWaterMark: 1 << 20 });
    this.#batches = new RowBatches(columns.length, CHECKSUM_ALGORITHM, insertPlan(table, columns, statementBytes), (sql) => {
      if (sql.length > 0 && !this.push(sql)) this.#wanted = false;
    });
  }

  row(b: Buffer, start: number, end: number): boolean {
    return this.#batches.add(b, start, end) && this.#wanted;
  }

  /** Statements this encoder gave out are written: their memory serves later batches. */
  release(sql: Buffer): void {
    releaseStatements(sql);
  }

  whenReady(go: () => void, fail: (error: unknown) => void): void {
    this.#resume = { go, fail };
    this.#maybeResume();
  }

  /** The rows are through: the last statements go out, then the end; resolves with the table's checksum. */
  async finish(): Promise<RowChecksum> {
    const sum = await this.#batches.finish();
    this.push(null);
    return sum;
  }

  override _read(): void {
    this.#wanted = true;
    this.#maybeResume();
  }

  #maybeResume(): void {
    const resume = this.#resume;
    if (!resume || !this.#wanted) return;
    this.#resume = undefined;
    this.#batches.drained().then(
      () => resume.go(),
      (error: unknown) => resume.fail(error),
    );
  }
}
