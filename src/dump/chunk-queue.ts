/**
 * The order in which a load's sessions take data files: biggest tables first, and a session takes
 * a file of a table no other session is loading while there is one. Two sessions loading one
 * table insert into the same index at two places (each file is a key range), so InnoDB splits its
 * pages in the middle instead of appending; only when every table left is being loaded do they
 * share one, so a big table is still not loaded by one session alone (files are independent
 * transactions, and the checksum does not depend on row order).
 */
export class ChunkQueue<T extends { sqlBytes: number; files: readonly string[] }> {
  readonly #queue: { table: T; key: string }[];
  readonly #loading = new Map<T, number>();

  constructor(tables: readonly T[]) {
    this.#queue = [...tables].sort((a, b) => b.sqlBytes - a.sqlBytes).flatMap((table) => table.files.map((key) => ({ table, key })));
  }

  /** The next file, its table counted as loading until `loaded` is called for it; undefined when none is left. */
  take(): { table: T; key: string } | undefined {
    const free = this.#queue.findIndex((q) => !this.#loading.get(q.table));
    const item = this.#queue.splice(free < 0 ? 0 : free, 1)[0];
    if (item) this.#loading.set(item.table, (this.#loading.get(item.table) ?? 0) + 1);
    return item;
  }

  /** A file of `table` taken before is in (or failed). */
  loaded(table: T): void {
    this.#loading.set(table, (this.#loading.get(table) ?? 1) - 1);
  }
}
