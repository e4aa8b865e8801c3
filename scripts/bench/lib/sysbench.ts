import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Runs sysbench against a throwaway server's socket as root (unix_socket), database sbtest. */
export function sysbench(db: { socket: string }, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('sysbench', ['--db-driver=mysql', `--mysql-socket=${db.socket}`, '--mysql-user=root', '--mysql-db=sbtest', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`sysbench ${args.at(-1)} exited ${code}`))));
  });
}

/** Bytes of every file below `dir`. */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
