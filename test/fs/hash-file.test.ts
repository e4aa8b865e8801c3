/**
 * hashFile (in a worker thread, one reused buffer) gives a file's size and sha256 as node:crypto
 * does, at the buffer's edges too, and fails like fs does for a missing file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/fs/hash-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hash-file-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('hashFile', () => {
  it.each([0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3.5 * (1 << 20)])('%i bytes: the size and sha256 node:crypto computes', async (size) => {
    const data = randomBytes(size);
    const path = join(dir, `f${size}`);
    await writeFile(path, data);
    expect(await hashFile(path)).toEqual({ size, sha256: createHash('sha256').update(data).digest('hex') });
  });

  it('several at once each get their own answer', async () => {
    const files = await Promise.all(
      [10, 2_000_000, 300].map(async (size, i) => {
        const data = randomBytes(size);
        const path = join(dir, `many${i}`);
        await writeFile(path, data);
        return { path, want: { size, sha256: createHash('sha256').update(data).digest('hex') } };
      }),
    );
    expect(await Promise.all(files.map((f) => hashFile(f.path)))).toEqual(files.map((f) => f.want));
  });

  it('rejects a missing file with its code', async () => {
    await expect(hashFile(join(dir, 'nothing'))).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining('nothing') });
  });
});

describe('hashFile of an open file', () => {
  it('hashes from the start with positioned reads: the shared offset does not move', async () => {
    const { open } = await import('node:fs/promises');
    const data = randomBytes(2_500_000);
    const path = join(dir, 'open');
    await writeFile(path, data);
    const handle = await open(path, 'r');
    try {
      // another reader (zstd, in the loader) has moved the offset
      await handle.read(Buffer.alloc(1000), 0, 1000, null);
      expect(await hashFile(handle.fd)).toEqual({ size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
      const next = Buffer.alloc(10);
      await handle.read(next, 0, 10, null);
      expect(next).toEqual(data.subarray(1000, 1010));
    } finally {
      await handle.close();
    }
  });
});
