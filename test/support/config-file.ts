import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MariadbServer } from './mariadb.js';

/**
 * Writes `work/config.yaml` (and an empty `work/schedules/`) for running the real CLI against a
 * test server: the source login is the archiver account, its password read from T_DB; spool and
 * state live under `work`. `config` adds the rest (storages, restore, log ...); its `archiver`
 * fields are merged into the defaults. Returns the file's path.
 */
export async function writeTestConfig(work: string, db: MariadbServer, serverId: number, config: Record<string, unknown> & { archiver?: Record<string, unknown> }): Promise<string> {
  const { archiver, ...rest } = config;
  const file = join(work, 'config.yaml');
  await mkdir(join(work, 'schedules'), { recursive: true });
  await writeFile(
    file,
    stringify({
      source: { host: '127.0.0.1', port: db.port, user: 'archiver', password: { env: 'T_DB' }, serverId },
      archiver: { storage: 'disk', spoolDir: join(work, 'spool'), stateDir: join(work, 'state'), ...archiver },
      ...rest,
    }),
  );
  return file;
}
