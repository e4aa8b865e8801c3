import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { SpoolFullError } from '../../src/errors.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { openSpool, type SpoolOptions } from '../../src/spool/spool.js';
import { nextSpoolId } from '../../src/spool/spool-id.js';
import { sha256 } from '../support/bytes.js';
import { capturingLogger, fileOf } from './support/spool-fixtures.js';

/** The durable queue on its own: order, cap, and what a crash at each step of an add leaves. */

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function scratch(base = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(base, 'spool-test-'));
  dirs.push(dir);
  return dir;
}

const open = (dir: string, extra: Partial<SpoolOptions> = {}) => openSpool({ dir, maxBytes: 1 << 20, logger: createSilentLogger(), ...extra });

describe('spool ids', () => {
  it.each([
    ['first id', 5, '', '000000000000005-000000'],
    ['same millisecond', 5, '000000000000005-000000', '000000000000005-000001'],
    ['later millisecond', 9, '000000000000005-000003', '000000000000009-000000'],
    ['clock stepped back', 2, '000000000000005-000003', '000000000000005-000004'],
    ['a million in one millisecond', 5, '000000000000005-999999', '000000000000006-000000'],
  ])('%s', (_name, now, last, want) => {
    const id = nextSpoolId(now, last);
    expect(id).toBe(want);
    if (last) expect(id > last).toBe(true);
  });
});

describe('spool', () => {
  it('keeps items in enqueue order (even when the clock steps back), moves the source in, survives reopening', async () => {
    const dir = await scratch();
    let now = 10_000;
    const clock = () => now;
    const spool = await open(join(dir, 'spool'), { clock });
    const a = await fileOf(dir, 'a', 1000);
    await spool.add(a.path, { key: 'k/a', record: { kind: 'file' } });
    now = 5_000;
    await spool.addBuffer(Buffer.from('gap report'), { key: 'k/b', record: { kind: 'gap' } });
    await spool.addStream(Readable.from([Buffer.from('stre'), Buffer.from('amed')]), { key: 'k/c', record: { kind: 'file' } });
    await expect(stat(a.path)).rejects.toThrow(/ENOENT/);

    const again = await open(join(dir, 'spool'), { clock });
    const items = await again.list();
    expect(items.map((i) => i.key)).toEqual(['k/a', 'k/b', 'k/c']);
    expect(items[0]).toMatchObject({ size: 1000, sha256: a.sha256, enqueuedAt: 10_000 });
    expect(items[2]).toMatchObject({ size: 8, sha256: sha256('streamed') });
    expect(await readFile(items[2]!.dataPath, 'utf8')).toBe('streamed');
    expect(await again.stats()).toEqual({ items: 3, bytes: 1018, oldestEnqueuedAt: 10_000 });
    // a reopened spool goes on after the newest id it found
    const d = await again.addBuffer(Buffer.from('d'), { key: 'k/d', record: { kind: 'file' } });
    expect(d.id > items[2]!.id).toBe(true);
  });

  it('copies a file from another filesystem whole, then removes the source', async () => {
    const shm = await stat('/dev/shm').then(() => '/dev/shm', () => undefined);
    expect(shm, '/dev/shm (tmpfs) gives this test a second filesystem').toBeDefined();
    const dir = await scratch();
    const other = await scratch(shm);
    expect((await stat(other)).dev).not.toBe((await stat(dir)).dev);
    const spool = await open(join(dir, 'spool'));
    const f = await fileOf(other, 'f', 300_000);
    const item = await spool.add(f.path, { key: 'k/f', record: { kind: 'file' } });
    await expect(stat(f.path)).rejects.toThrow(/ENOENT/);
    expect(sha256(await readFile(item.dataPath))).toBe(f.sha256);
    expect(await readdir(join(dir, 'spool', 'tmp'))).toEqual([]);
  });

  it('refuses an item beyond the cap with an alarm, keeps the source file, drops nothing', async () => {
    const dir = await scratch();
    const alarms: unknown[] = [];
    const { logger, lines } = capturingLogger();
    const spool = await open(join(dir, 'spool'), { maxBytes: 1500, logger, onAlarm: (stats, refused) => alarms.push({ stats, refused }) });
    await spool.add((await fileOf(dir, 'a', 1000)).path, { key: 'a', record: { kind: 'file' } });
    const b = await fileOf(dir, 'b', 1000);
    await expect(spool.add(b.path, { key: 'b', record: { kind: 'file' } })).rejects.toBeInstanceOf(SpoolFullError);
    await expect(spool.addStream(Readable.from([Buffer.alloc(600)]), { key: 'c', record: { kind: 'file' } })).rejects.toBeInstanceOf(SpoolFullError);
    expect(alarms).toEqual([
      { stats: expect.objectContaining({ items: 1, bytes: 1000 }), refused: { key: 'b', size: 1000 } },
      { stats: expect.objectContaining({ items: 1, bytes: 1000 }), refused: { key: 'c', size: 600 } },
    ]);
    expect(lines.filter((l) => l.level === 'error' && /spool full/.test(String(l.message)))).toHaveLength(2);
    expect((await stat(b.path)).size).toBe(1000);
    expect((await spool.list()).map((i) => i.key)).toEqual(['a']);
    // the refused stream left nothing behind
    expect(await readdir(join(dir, 'spool', 'tmp'))).toEqual([]);
    // once the queue shrinks, the same file goes in
    await spool.remove((await spool.list())[0]!);
    await spool.add(b.path, { key: 'b', record: { kind: 'file' } });
    expect((await spool.list()).map((i) => i.key)).toEqual(['b']);
  });

  it('after a crash at any step of an add, has the whole item or none of it', async () => {
    const dir = await scratch();
    const spoolDir = join(dir, 'spool');
    const spool = await open(spoolDir);
    const a = await spool.add((await fileOf(dir, 'a', 100)).path, { key: 'a', record: { kind: 'file' } });
    const descriptor = (id: string, key: string, body: string) => JSON.stringify({ id, key, size: body.length, sha256: sha256(body), record: { kind: 'file' }, enqueuedAt: 2 });
    // data moved in, descriptor not yet renamed: the add completes on open
    await writeFile(join(spoolDir, 'tmp', '000000000000002-000000.json'), descriptor('000000000000002-000000', 'b', 'bbb'));
    await writeFile(join(spoolDir, 'items', '000000000000002-000000.data'), 'bbb');
    // a buffer written whole into tmp/, not yet moved: completes too
    await writeFile(join(spoolDir, 'tmp', '000000000000003-000000.json'), descriptor('000000000000003-000000', 'c', 'ccc'));
    await writeFile(join(spoolDir, 'tmp', '000000000000003-000000.data'), 'ccc');
    // a copy cut short in tmp/: the caller still has its file, the spool forgets the item
    await writeFile(join(spoolDir, 'tmp', '000000000000004-000000.json'), descriptor('000000000000004-000000', 'd', 'dddd'));
    await writeFile(join(spoolDir, 'tmp', '000000000000004-000000.data'), 'dd');
    // a descriptor whose data never came, and a stream that never finished
    await writeFile(join(spoolDir, 'tmp', '000000000000005-000000.json'), descriptor('000000000000005-000000', 'e', 'e'));
    await writeFile(join(spoolDir, 'tmp', 'incoming-abc'), 'half a stream');
    // a removal cut between descriptor and data: the upload had completed
    await writeFile(join(spoolDir, 'items', '000000000000001-000000.data'), 'uploaded already');

    const reopened = await open(spoolDir);
    const items = await reopened.list();
    expect(items.map((i) => i.key)).toEqual(['b', 'c', a.key]);
    expect(await readFile(items[1]!.dataPath, 'utf8')).toBe('ccc');
    expect(await readdir(join(spoolDir, 'tmp'))).toEqual([]);
    expect((await readdir(join(spoolDir, 'items'))).sort()).toEqual([...items.flatMap((i) => [`${i.id}.data`, `${i.id}.json`])].sort());
    expect(await reopened.stats()).toMatchObject({ items: 3, bytes: 106 });
  });

  it('reports an item whose data is missing or short loudly and keeps its files aside, never silently dropped', async () => {
    const dir = await scratch();
    const spoolDir = join(dir, 'spool');
    const spool = await open(spoolDir);
    const gone = await spool.add((await fileOf(dir, 'gone', 100)).path, { key: 'k/gone', record: { kind: 'file' } });
    const short = await spool.add((await fileOf(dir, 'short', 100)).path, { key: 'k/short', record: { kind: 'file' } });
    const fine = await spool.add((await fileOf(dir, 'fine', 100)).path, { key: 'k/fine', record: { kind: 'file' } });
    await rm(gone.dataPath);
    await truncate(short.dataPath, 40);

    const { logger, lines } = capturingLogger();
    const damaged: string[] = [];
    const reopened = await open(spoolDir, { logger, onDamaged: (item, reason) => damaged.push(`${item.key}: ${reason}`) });
    expect((await reopened.list()).map((i) => i.key)).toEqual([fine.key]);
    expect(damaged).toEqual(['k/gone: its data file is missing', 'k/short: its data file has 40 bytes, the descriptor says 100']);
    const errors = lines.filter((l) => l.level === 'error').map((l) => String(l.message));
    expect(errors).toEqual([expect.stringMatching(/k\/gone.*damaged.*missing/), expect.stringMatching(/k\/short.*damaged.*40 bytes/)]);
    expect(await reopened.stats()).toEqual({ items: 1, bytes: 100, oldestEnqueuedAt: fine.enqueuedAt, damaged: 2 });
    const aside = await readdir(join(spoolDir, 'damaged'));
    expect(aside.sort()).toEqual([`${gone.id}.json`, `${gone.id}.reason.txt`, `${short.id}.data`, `${short.id}.json`, `${short.id}.reason.txt`].sort());
    expect((await stat(join(spoolDir, 'damaged', `${short.id}.data`))).size).toBe(40);
    // a third open finds nothing new to report
    const third: string[] = [];
    await open(spoolDir, { onDamaged: (item) => third.push(item.id) });
    expect(third).toEqual([]);
  });

  it('opened read-only (a second process looking at a running spool), touches nothing and refuses changes', async () => {
    const dir = await scratch();
    const spoolDir = join(dir, 'spool');
    const spool = await open(spoolDir);
    const a = await spool.addBuffer(Buffer.from('aaa'), { key: 'a', record: { kind: 'file' } });
    // an add in progress in the writer: descriptor in tmp/, data already in items/
    const tmpDescriptor = join(spoolDir, 'tmp', '999999999999999-000000.json');
    await writeFile(tmpDescriptor, JSON.stringify({ id: '999999999999999-000000', key: 'b', size: 3, sha256: sha256('bbb'), record: { kind: 'file' }, enqueuedAt: 1 }));
    await writeFile(join(spoolDir, 'items', '999999999999999-000000.data'), 'bbb');
    const viewer = await open(spoolDir, { readOnly: true });
    expect((await viewer.list()).map((i) => i.id)).toEqual([a.id]);
    expect(await viewer.stats()).toMatchObject({ items: 1, bytes: 3 });
    await expect(viewer.addBuffer(Buffer.from('x'), { key: 'x', record: { kind: 'file' } })).rejects.toThrow(/read-only/);
    await expect(viewer.remove(a)).rejects.toThrow(/read-only/);
    expect(await readFile(tmpDescriptor, 'utf8')).toMatch(/"key":"b"/);
    expect(await readFile(join(spoolDir, 'items', '999999999999999-000000.data'), 'utf8')).toBe('bbb');
    expect(await (await open(join(dir, 'nowhere'), { readOnly: true })).stats()).toEqual({ items: 0, bytes: 0 });
  });
});
