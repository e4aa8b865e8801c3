/**
 * The zstd codec runs the zstd program in a child process. Its output must survive being read late:
 * the loader feeds a chunk to `zstd -d` and only starts reading after other work, by which time a
 * small chunk is fully decompressed and the child gone (Node then drains unread child output).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compressor, decompressor } from '../../src/dump/codec.js';

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

  it('compresses and decompresses large data in a stream', async () => {
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    const c = compressor('zstd');
    const packedP = readAll(c.output as AsyncIterable<Buffer>);
    c.input.end(data);
    const packed = await packedP;
    await c.done;
    const d = decompressor('zstd');
    const out = readAll(d.output as AsyncIterable<Buffer>);
    d.input.end(packed);
    expect((await out).equals(data)).toBe(true);
    await d.done;
  });
});
