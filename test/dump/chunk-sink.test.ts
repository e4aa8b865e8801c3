/**
 * The chunk sink stops cleanly whenever it is destroyed: also while its first chunk file is still
 * being opened, when no file is known to it yet (no zstd left running, no temp file left behind).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkSink } from '../../src/dump/chunk-sink.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { waitFor } from '../support/wait.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chunk-sink-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** this process's child processes running `name` */
async function children(name: string): Promise<number> {
  let n = 0;
  for (const task of await readdir(`/proc/${process.pid}/task`)) {
    const pids = (await readFile(`/proc/${process.pid}/task/${task}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean);
    for (const pid of pids) if ((await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === name) n++;
  }
  return n;
}

describe('ChunkSink', () => {
  it('destroyed while its first chunk file is being opened: no zstd and no temp file remain', async () => {
    const before = await children('zstd');
    const tmp = await mkdtemp(join(dir, 'tmp-'));
    const sink = new ChunkSink({
      storage: createLocalStorage({ path: join(dir, 'store') }),
      prefix: 'd',
      keyOf: (n) => `t.${n}.sql.zst`,
      chunkBytes: 1 << 20,
      compression: 'zstd',
      tmpDir: tmp,
      header: Buffer.from('-- header\n'),
    });
    sink.on('error', () => undefined);
    sink.write(Buffer.from('INSERT INTO t VALUES (1);\n'));
    sink.destroy();
    await waitFor(async () => (await readdir(tmp)).length === 0 && (await children('zstd')) === before, { timeoutMs: 10_000, what: 'the sink to leave nothing behind' });
    expect(sink.files).toEqual([]);
  });
});
