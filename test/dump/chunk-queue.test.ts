/**
 * The load's file order: biggest tables first, each session on a table of its own while there is
 * one, sharing only when every table left is being loaded; a failed file frees its table too.
 */
import { describe, expect, it } from 'vitest';
import { ChunkQueue } from '../../src/dump/chunk-queue.js';

const table = (name: string, sqlBytes: number, files: number) => ({ name, sqlBytes, files: Array.from({ length: files }, (_, i) => `${name}${i}`) });

describe('ChunkQueue', () => {
  it('gives three sessions starting together three tables, then shares the last one', () => {
    const [a, b, c] = [table('a', 300, 3), table('b', 200, 2), table('c', 100, 1)];
    const q = new ChunkQueue([c, a, b]);
    const first = [q.take(), q.take(), q.take()].map((x) => x!.key);
    expect(first).toEqual(['a0', 'b0', 'c0']);
    q.loaded(b);
    // b is free again and a is not: b's next file comes before a's
    expect(q.take()!.key).toBe('b1');
    q.loaded(c);
    // only a's files are left: a is shared
    expect(q.take()!.key).toBe('a1');
    expect(q.take()!.key).toBe('a2');
    expect(q.take()).toBeUndefined();
  });

  it('takes a free table after a failed file (loaded is called for failures too)', () => {
    const [a, b] = [table('a', 2, 2), table('b', 1, 2)];
    const q = new ChunkQueue([a, b]);
    expect([q.take()!.key, q.take()!.key]).toEqual(['a0', 'b0']);
    q.loaded(a);
    expect(q.take()!.key).toBe('a1');
    q.loaded(a);
    q.loaded(b);
    expect(q.take()!.key).toBe('b1');
  });
});
