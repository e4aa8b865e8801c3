/**
 * The zstd codec runs the zstd program in a child process. Its output must survive being read late:
 * the loader feeds a chunk to `zstd -d` and only starts reading after other work, by which time a
 * small chunk is fully decompressed and the child gone (Node then drains unread child output).
 * Compression writes straight into a file, for both codecs, and any zstd or zcat reads it back.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compressInto, decompressor } from '../../src/dump/codec.js';
import type { DumpCompression } from '../../src/dump/types.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function compressToFile(compression: DumpCompression, data: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'codec-'));
  dirs.push(dir);
  const path = join(dir, 'chunk');
  const handle = await open(path, 'wx', 0o600);
  try {
    const c = compressInto(compression, handle.fd);
    // in pieces, as the chunk sink writes
    for (let i = 0; i < data.length; i += 100_000) if (!c.input.write(data.subarray(i, i + 100_000))) await new Promise((r) => c.input.once('drain', r));
    c.input.end();
    await c.done;
  } finally {
    await handle.close();
  }
  return path;
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}

describe('zstd codec', () => {
  it('keeps the output of a child that exited before anyone read it', async () => {
    const sql = Buffer.from("INSERT INTO `t` VALUES (1,'a'),(2,'b');\n".repeat(20));
    const packed = spawnSync('zstd', ['-1', '-q', '-c'], { input: sql }).stdout;
    const d = decompressor('zstd');
    d.input.end(packed);
    await d.done; // the child has exited and its stdio closed
    expect(await readAll(d.output as AsyncIterable<Buffer>)).toEqual(sql);
  });

  it.each(['zstd', 'gzip'] as const)('%s: compresses large data into a file that the codec and the standard tool read back', async (compression) => {
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    const path = await compressToFile(compression, data);
    const packed = await readFile(path);
    expect(packed.length).toBeLessThan(data.length / 4);
    const d = decompressor(compression);
    const out = readAll(d.output as AsyncIterable<Buffer>);
    d.input.end(packed);
    expect((await out).equals(data)).toBe(true);
    await d.done;
    const tool = spawnSync(compression === 'zstd' ? 'zstd' : 'gzip', ['-d', '-c', path], { maxBuffer: 8 << 20 });
    expect(tool.status).toBe(0);
    expect(tool.stdout.equals(data)).toBe(true);
  });

  it('a zstd that fails while writing its file (a full disk) fails done, with its message, and throws nothing else', async () => {
    const handle = await open('/dev/full', 'w');
    try {
      const c = compressInto('zstd', handle.fd);
      let settled = false;
      c.done.then(
        () => (settled = true),
        () => (settled = true),
      );
      // random bytes, so zstd has output to write early; writes go on as the chunk sink's would
      const data = randomBytes(1 << 20);
      for (let i = 0; i < 256 && !settled; i++) {
        if (!c.input.write(data)) await Promise.race([new Promise((r) => c.input.once('drain', r)), c.done.catch(() => undefined)]);
      }
      // and one more into the program that is gone
      c.input.write(data);
      c.input.end();
      await expect(c.done).rejects.toThrow(/zstd -1 -q -c/);
    } finally {
      await handle.close();
    }
  });
});
