import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ManifestError } from '../../src/errors.js';
import { createManifest, type ManifestRecord } from '../../src/manifest/manifest.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { createS3Storage } from '../../src/storage/s3/s3-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { startS3rver, stopAllS3rver } from '../support/s3rver.js';

/** The manifest on every real driver: append-only, idempotent, and it notices missing and altered objects. */

const dirs: string[] = [];
afterAll(async () => {
  await stopAllS3rver();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface Setup {
  storage: Storage;
  /** changes an object's bytes behind the tool's back (same size) */
  tamper(key: string): Promise<void>;
}

const drivers: [string, () => Promise<Setup>][] = [
  [
    'memory',
    async () => {
      const storage = createMemoryStorage();
      return {
        storage,
        tamper: async (key) => {
          const buf = storage.objects.get(key)!;
          buf[0] = buf[0]! ^ 0xff;
        },
      };
    },
  ],
  [
    'local',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'manifest-local-'));
      dirs.push(dir);
      return { storage: createLocalStorage({ path: dir }), tamper: (key) => writeFile(join(dir, key), 'X'.repeat(10)) };
    },
  ],
  [
    's3',
    async () => {
      const s3 = await startS3rver({ bucket: 'manifest-test' });
      return { storage: createS3Storage({ bucket: s3.bucket, prefix: 'p/', client: s3.client() }), tamper: (key) => writeFile(s3.objectPath(`p/${key}`), 'X'.repeat(10)) };
    },
  ],
];

const put = (storage: Storage, key: string, body: string) => storage.put(key, () => Readable.from([Buffer.from(body)]));

describe.each(drivers)('manifest on %s', (_name, setup) => {
  it('records objects once, refuses to rewrite a record, lists in key order', async () => {
    const { storage } = await setup();
    const manifest = createManifest(storage, { clock: () => new Date('2026-11-28T10:00:00Z') });
    const b = await put(storage, 'segments/s/b.binlog', 'bbbbbbbbbb');
    const a = await put(storage, 'segments/s/a.binlog', 'aaaaaaaaaa');
    await manifest.recordObject('binlog-segment', b, { serverFile: 'f.000002' });
    await manifest.recordObject('binlog-segment', a, { serverFile: 'f.000001' });
    // a retried upload appends the same facts again: no-op
    const later = createManifest(storage, { clock: () => new Date('2026-11-28T11:00:00Z') });
    await later.recordObject('binlog-segment', a, { serverFile: 'f.000001' });
    const conflict = later.recordObject('binlog-segment', a, { serverFile: 'other' });
    await expect(conflict).rejects.toBeInstanceOf(ManifestError);
    await expect(conflict).rejects.toThrow(/manifest\/segments\/s\/a\.binlog\.json.*differs in serverFile/);
    // append() of a record with the same facts is a no-op too, with other facts it throws
    await later.append({ v: 1, kind: 'binlog-segment', key: a.key, size: a.size, sha256: a.sha256, serverFile: 'f.000001', writtenAt: 'any' });
    await expect(later.append({ v: 1, kind: 'binlog-segment', key: a.key, size: 11, sha256: a.sha256, serverFile: 'f.000001', writtenAt: 'any' })).rejects.toThrow(/differs in size/);
    await manifest.event('drill', { ok: true });
    expect(await manifest.recordFor('segments/s/a.binlog')).toMatchObject({ serverFile: 'f.000001', writtenAt: '2026-11-28T10:00:00.000Z' });
    expect(await manifest.recordFor('segments/s/none.binlog')).toBeUndefined();

    const records: ManifestRecord[] = [];
    for await (const r of manifest.records('segments/')) records.push(r);
    expect(records.map((r) => r.key)).toEqual(['segments/s/a.binlog', 'segments/s/b.binlog']);
    expect(records[0]).toMatchObject({ v: 1, kind: 'binlog-segment', size: 10, sha256: a.sha256, serverFile: 'f.000001', writtenAt: '2026-11-28T10:00:00.000Z' });
    const events: ManifestRecord[] = [];
    for await (const r of manifest.records('events/')) events.push(r);
    expect(events).toEqual([expect.objectContaining({ kind: 'drill', ok: true })]);
    const eventKeys: string[] = [];
    for await (const o of storage.list('manifest/events/')) eventKeys.push(o.key);
    expect(eventKeys).toEqual([expect.stringMatching(/^manifest\/events\/drill\/20261128T100000\.000Z-[0-9a-f]{8}\.json$/)]);
  });

  it('refuses to read a record that was changed into something else', async () => {
    const { storage } = await setup();
    const manifest = createManifest(storage);
    await manifest.recordObject('file', await put(storage, 'data/a', 'aaaa'));
    await put(storage, 'manifest/data/a.json', '{"v":2}');
    await expect(manifest.recordFor('data/a')).rejects.toThrow(/not a version 1 record/);
    await put(storage, 'manifest/data/a.json', '{"v":1,');
    await expect(manifest.verify()).rejects.toBeInstanceOf(ManifestError);
  });

  it('verify finds a deleted object and one altered behind its back, and ignores objects it never wrote', async () => {
    const { storage, tamper } = await setup();
    const manifest = createManifest(storage);
    for (const name of ['x', 'y', 'z']) await manifest.recordObject('file', await put(storage, `data/${name}`, `${name.repeat(10)}`));
    await put(storage, 'data/not-ours', 'someone else');
    expect(await manifest.verify({ deep: true })).toEqual({ checked: 3, missing: [], altered: [] });

    await storage.delete('data/x');
    await tamper('data/y');
    const deep = await manifest.verify({ deep: true });
    expect(deep.checked).toBe(3);
    expect(deep.missing.map((r) => r.key)).toEqual(['data/x']);
    expect(deep.altered.map((a) => a.record.key)).toEqual(['data/y']);
    // same size, other bytes: only a deep check can see it, unless the driver stores a sha256
    const shallow = await manifest.verify();
    expect(shallow.missing.map((r) => r.key)).toEqual(['data/x']);
    // other bytes of another size put under the key: even a shallow check sees it
    await put(storage, 'data/z', 'short');
    const again = await manifest.verify({ prefix: 'data/z' });
    expect(again).toEqual({ checked: 1, missing: [], altered: [{ record: expect.objectContaining({ key: 'data/z', size: 10 }), actual: expect.objectContaining({ size: 5 }) }] });
  });
});
