import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StorageNotFoundError, VerificationError } from '../../src/errors.js';
import { fileSource } from '../../src/storage/file-source.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { sha256 } from '../support/bytes.js';
import { waitFor } from '../support/wait.js';
import { describeStorageContract } from './contract.js';

let dir = '';
describeStorageContract('local', {
  create: async () => {
    dir = await mkdtemp(join(tmpdir(), 'ma-local-'));
    return createLocalStorage({ path: join(dir, 'root') });
  },
  cleanup: async () => {
    // a failed put must not leave temp files behind either
    const leftovers = await readdir(join(dir, 'root'), { recursive: true });
    if (leftovers.some((f) => String(f).includes('.tmp-'))) throw new Error(`temp files left: ${leftovers.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  },
});

describe('local driver', () => {
  it('takes a file source on the same filesystem as it is (a hard link, no copy), readable by the group', async () => {
    const root = await mkdtemp(join(tmpdir(), 'local-link-'));
    try {
      const storage = createLocalStorage({ path: join(root, 'store') });
      const path = join(root, 'chunk.sql.zst');
      const data = randomBytes(300_000);
      await writeFile(path, data, { mode: 0o600 });
      await storage.put('d/chunk', fileSource(path), { expected: { size: data.length, sha256: sha256(data) } });
      const [source, object] = await Promise.all([stat(path), stat(join(root, 'store', 'd', 'chunk'))]);
      expect(object.ino).toBe(source.ino);
      expect(object.mode & 0o777).toBe(0o640);
      expect((await readdir(join(root, 'store', 'd'))).sort()).toEqual(['chunk']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('get names the file that holds the object, whose bytes are the stream\'s', async () => {
    const root = await mkdtemp(join(tmpdir(), 'local-get-'));
    try {
      const storage = createLocalStorage({ path: root });
      const data = randomBytes(70_000);
      await storage.put('d/o', () => Readable.from([data]));
      const stream = await storage.get('d/o');
      expect(stream.filePath).toBe(join(root, 'd', 'o'));
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).toEqual(data);
      expect(await readFile(stream.filePath!)).toEqual(data);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a put whose file on disk changes before it is kept throws VerificationError and keeps nothing', async () => {
    const base = await mkdtemp(join(tmpdir(), 'ma-local-alter-'));
    try {
      const storage = createLocalStorage({ path: base });
      const data = randomBytes(3 * 1024 * 1024);
      // the source holds back its last byte until the test has changed the file being written
      const source = new Readable({ read() {} });
      source.push(data.subarray(0, -1));
      const put = storage.put('seg/a', () => source).catch((e: unknown) => e);

      const tmp = await waitFor<string>(
        async () => {
          const name = (await readdir(join(base, 'seg'))).find((f) => f.includes('.tmp-'));
          return name && (await stat(join(base, 'seg', name))).size === data.length - 1 ? join(base, 'seg', name) : '';
        },
        { what: 'the temp file to hold all but the last byte', timeoutMs: 20_000 },
      );
      const handle = await open(tmp, 'r+');
      await handle.write(Buffer.from([data[100]! ^ 0x01]), 0, 1, 100);
      await handle.close();
      source.push(data.subarray(-1));
      source.push(null);

      const error = await put;
      expect(error).toBeInstanceOf(VerificationError);
      expect((error as Error).message).toContain(sha256(data));
      await expect(storage.head('seg/a')).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await readdir(join(base, 'seg'))).toEqual([]);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
