/**
 * A small, deterministic workload for the demo: a `demo` database with a few related tables, some
 * thousand rows inserted, then updates and deletes (so the binlog holds every row event type),
 * then `FLUSH BINARY LOGS` so the file holding all of it is closed and can be archived.
 * Uses MariaDB's sequence engine (`seq_1_to_N`) to make rows without a round trip per row.
 */

/** What the workload needs from a server: run statements as an administrator. */
export interface WorkloadTarget {
  query<T = unknown>(sql: string, params?: unknown[]): Promise<T>;
}

export interface WorkloadResult {
  readonly database: string;
  readonly tables: readonly { name: string; rows: number }[];
  /** binlog files closed by the final FLUSH BINARY LOGS (oldest first) */
  readonly closedBinlogs: readonly { name: string; size: number }[];
  /** the file the server writes to now */
  readonly currentBinlog: string;
}

export const DEMO_DATABASE = 'demo';

const STATEMENTS = [
  `CREATE DATABASE ${DEMO_DATABASE} CHARACTER SET utf8mb4`,
  `CREATE TABLE ${DEMO_DATABASE}.customers (
     id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, created_at DATETIME(6) NOT NULL)`,
  `CREATE TABLE ${DEMO_DATABASE}.products (
     id INT PRIMARY KEY, title VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL, stock INT NOT NULL)`,
  `CREATE TABLE ${DEMO_DATABASE}.orders (
     id BIGINT PRIMARY KEY, customer_id INT NOT NULL, product_id INT NOT NULL, quantity INT NOT NULL,
     status ENUM('new','paid','shipped','cancelled') NOT NULL, note JSON NULL, ordered_at DATETIME(6) NOT NULL,
     KEY (customer_id), KEY (product_id))`,
  `INSERT INTO ${DEMO_DATABASE}.customers
     SELECT seq, CONCAT('customer ', seq), CONCAT('customer', seq, '@example.com'), '2026-01-01 00:00:00' + INTERVAL seq MINUTE
     FROM ${DEMO_DATABASE}.seq_1_to_500`,
  `INSERT INTO ${DEMO_DATABASE}.products
     SELECT seq, CONCAT('product ', seq, ' – ünïcödé'), ROUND(1 + (seq * 7919 % 10000) / 100, 2), 1000 + seq FROM ${DEMO_DATABASE}.seq_1_to_200`,
  `INSERT INTO ${DEMO_DATABASE}.orders
     SELECT seq, 1 + seq % 500, 1 + seq % 200, 1 + seq % 5, 'new',
            IF(seq % 10 = 0, JSON_OBJECT('gift', TRUE, 'seq', seq), NULL), '2026-02-01 00:00:00.000001' + INTERVAL seq SECOND
     FROM ${DEMO_DATABASE}.seq_1_to_3000`,
  `UPDATE ${DEMO_DATABASE}.orders SET status = 'paid' WHERE id % 3 = 0`,
  `UPDATE ${DEMO_DATABASE}.products SET stock = stock - 1 WHERE id <= 50`,
  `DELETE FROM ${DEMO_DATABASE}.orders WHERE id % 97 = 0`,
];

export async function generateWorkload(target: WorkloadTarget): Promise<WorkloadResult> {
  for (const sql of STATEMENTS) await target.query(sql);
  const tables: { name: string; rows: number }[] = [];
  for (const name of ['customers', 'products', 'orders']) {
    const rows = await target.query<{ n: string | number }[]>(`SELECT COUNT(*) AS n FROM ${DEMO_DATABASE}.${name}`);
    tables.push({ name, rows: Number(rows[0]?.n ?? 0) });
  }
  const before = await binaryLogs(target);
  await target.query('FLUSH BINARY LOGS');
  const after = await binaryLogs(target);
  const current = after[after.length - 1];
  if (!current) throw new Error('the server lists no binary logs after FLUSH BINARY LOGS');
  // every file that existed before the flush is now closed; sizes are final only after it
  const closed = after.filter((log) => before.some((b) => b.name === log.name));
  return { database: DEMO_DATABASE, tables, closedBinlogs: closed, currentBinlog: current.name };
}

async function binaryLogs(target: WorkloadTarget): Promise<{ name: string; size: number }[]> {
  const rows = await target.query<{ Log_name: string; File_size: string | number }[]>('SHOW BINARY LOGS');
  return rows.map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
}
