import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SpoolFullError } from '../errors.js';
import { fsyncDir, fsyncFile } from '../fs/durable.js';
import type { Logger } from '../ops/logger.js';
import { hashFile } from '../fs/hash-file.js';
import { ByteCounter } from '../storage/byte-counter.js';
import { nextSpoolId } from './spool-id.js';
import { checkItemData, readDescriptor, type SpoolDescriptor } from './spool-item-check.js';

/**
 * The durable local queue between what the tool produces (sealed binlog segments, gap reports) and
 * the storage it goes to. An item is a data file plus a JSON descriptor in `items/`; it exists only
 * once both are there, and leaves only after a verified upload and its manifest record (the
 * drainer's job). Every step is fsync + rename, so a crash at any point leaves either the whole
 * item or none of it, and the source file is never lost in between:
 *   1. descriptor written to tmp/<id>.json and fsynced;
 *   2. data renamed to items/<id>.data (a copy or a stream goes through tmp/ first, fsynced);
 *   3. descriptor renamed to items/<id>.json, directory fsynced.
 * Removal goes the other way (descriptor first), so data without a descriptor is an item already
 * uploaded. On open, a tmp descriptor whose data arrived whole completes the add; anything else in
 * tmp/ is a write that never finished and is removed (the caller still has its file). An item
 * whose data file is missing, short or unreadable is never silently dropped: it is moved to
 * `damaged/` with the reason, logged at error level and counted in `stats().damaged`.
 * A full spool refuses new items loudly (log, `onAlarm`, `SpoolFullError`) and drops none.
 */
export interface SpoolItemInput {
  /** the storage key the item is uploaded to */
  key: string;
  /** the manifest record's fields (kind, ...); key, size and sha256 are added from the upload */
  record: { kind: string } & Record<string, unknown>;
  size?: number;
  sha256?: string;
}

export interface SpoolItem {
  id: string;
  key: string;
  size: number;
  sha256: string;
  record: { kind: string } & Record<string, unknown>;
  enqueuedAt: number;
  dataPath: string;
}

export interface SpoolStats {
  items: number;
  bytes: number;
  oldestEnqueuedAt?: number;
  /** items moved aside because their data was missing or damaged (present only when > 0) */
  damaged?: number;
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  logger: Logger;
  clock?: () => number;
  /** called when an item is refused because the spool is full (also logged at error level) */
  onAlarm?: (stats: SpoolStats, refused: { key: string; size: number }) => void;
  /** called when an item is moved to damaged/ (also logged at error level) */
  onDamaged?: (item: { id: string; key?: string }, reason: string) => void;
  /**
   * Only look (list, stats): no recovery on open, and every change throws. For a second process
   * (a status command, a test) looking at the spool of a running daemon, whose adds in progress
   * a recovery would take for crash leftovers.
   */
  readOnly?: boolean;
}

export interface Spool {
  readonly dir: string;
  /** moves `path` into the spool (rename; copy + fsync across filesystems); hashes it unless size and sha256 are given */
  add(path: string, input: SpoolItemInput): Promise<SpoolItem>;
  addBuffer(data: Buffer, input: SpoolItemInput): Promise<SpoolItem>;
  /** writes the stream into the spool (fsynced), then queues it; the cap is checked once its size is known */
  addStream(source: Readable, input: SpoolItemInput): Promise<SpoolItem>;
  /** pending items, oldest first */
  list(): Promise<SpoolItem[]>;
  stats(): Promise<SpoolStats>;
  /** after a verified upload and manifest record */
  remove(item: SpoolItem): Promise<void>;
  /** takes an item whose data is damaged out of the queue, keeping its files in damaged/ for an operator */
  quarantine(item: Pick<SpoolItem, 'id'> & Partial<SpoolItem>, reason: string): Promise<void>;
}

export async function openSpool(options: SpoolOptions): Promise<Spool> {
  const spool = new DirSpool(options);
  if (!options.readOnly) await spool.recover();
  return spool;
}

class DirSpool implements Spool {
  readonly dir: string;
  readonly #o: SpoolOptions;
  readonly #items: string;
  readonly #tmp: string;
  readonly #damaged: string;
  readonly #clock: () => number;
  #lastId = '';
  /** bytes of pending items, kept in memory for the cap check */
  #bytes = 0;

  constructor(options: SpoolOptions) {
    this.#o = options;
    this.dir = options.dir;
    this.#items = join(options.dir, 'items');
    this.#tmp = join(options.dir, 'tmp');
    this.#damaged = join(options.dir, 'damaged');
    this.#clock = options.clock ?? Date.now;
  }

  async recover(): Promise<void> {
    for (const d of [this.#items, this.#tmp, this.#damaged]) await mkdir(d, { recursive: true });
    await this.#recoverTmp();
    const names = new Set(await readdir(this.#items));
    for (const name of names) {
      const id = name.replace(/\.(json|data)$/, '');
      if (name.endsWith('.data') && !names.has(`${id}.json`)) {
        // its descriptor goes first on removal: this item was uploaded and recorded already
        await rm(join(this.#items, name), { force: true });
      } else if (name.endsWith('.json')) {
        const problem = await checkItemData(join(this.#items, name), join(this.#items, `${id}.data`), { hash: false });
        if (problem) await this.quarantine({ id, ...(problem.descriptor ? { key: problem.descriptor.key } : {}) }, problem.reason);
      }
    }
    await fsyncDir(this.#items);
    const items = await this.list();
    this.#bytes = items.reduce((n, i) => n + i.size, 0);
    const last = items.at(-1)?.id ?? '';
    const lastDamaged = (await readdir(this.#damaged)).filter((n) => n.endsWith('.json')).sort().at(-1)?.slice(0, -5) ?? '';
    this.#lastId = last > lastDamaged ? last : lastDamaged;
  }

  /** completes adds whose data arrived whole before a crash; removes every other leftover */
  async #recoverTmp(): Promise<void> {
    const names = await readdir(this.#tmp);
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const id = name.slice(0, -5);
      const descriptorPath = join(this.#tmp, name);
      const inItems = join(this.#items, `${id}.data`);
      const inTmp = join(this.#tmp, `${id}.data`);
      const dataPath = (await exists(inItems)) ? inItems : inTmp;
      const problem = await checkItemData(descriptorPath, dataPath, { hash: true });
      if (!problem) {
        if (dataPath === inTmp) await rename(inTmp, inItems);
        await fsyncDir(this.#items);
        await rename(descriptorPath, join(this.#items, name));
        this.#o.logger.info('spool: completed an item added just before a crash', { id });
      } else if (dataPath === inItems) {
        // the caller's file was moved in: this is the only copy, keep it for an operator
        await rename(descriptorPath, join(this.#items, name));
        await this.quarantine({ id, ...(problem.descriptor ? { key: problem.descriptor.key } : {}) }, problem.reason);
      } else {
        // the data never arrived whole: the caller still has its source
        await rm(descriptorPath, { force: true });
      }
    }
    for (const name of await readdir(this.#tmp)) await rm(join(this.#tmp, name), { force: true });
    await fsyncDir(this.#tmp);
  }

  #writable(): void {
    if (this.#o.readOnly) throw new Error(`spool ${this.dir} was opened read-only`);
  }

  async add(path: string, input: SpoolItemInput): Promise<SpoolItem> {
    this.#writable();
    let facts: { size: number; sha256: string };
    if (input.size !== undefined && input.sha256 !== undefined) {
      const actual = (await stat(path)).size;
      if (actual !== input.size) throw new Error(`spool: ${path} has ${actual} bytes, the caller said ${input.size}`);
      facts = { size: input.size, sha256: input.sha256 };
    } else {
      facts = await hashFile(path);
    }
    return this.#add(input, facts, async (id, dataPath) => {
      try {
        await rename(path, dataPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        // another filesystem: a whole, fsynced copy first, then the same rename as above
        const tmpData = join(this.#tmp, `${id}.data`);
        await copyFile(path, tmpData);
        await fsyncFile(tmpData);
        await rename(tmpData, dataPath);
        await fsyncDir(this.#items);
        await unlink(path);
      }
    });
  }

  async addBuffer(data: Buffer, input: SpoolItemInput): Promise<SpoolItem> {
    this.#writable();
    const facts = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    return this.#add(input, facts, async (id, dataPath) => {
      const tmpData = join(this.#tmp, `${id}.data`);
      const handle = await open(tmpData, 'w', 0o640);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmpData, dataPath);
    });
  }

  async addStream(source: Readable, input: SpoolItemInput): Promise<SpoolItem> {
    this.#writable();
    // not named <id>.data: until it is whole it belongs to no item, and recovery removes it
    const incoming = join(this.#tmp, `incoming-${randomBytes(6).toString('hex')}`);
    const counter = new ByteCounter();
    try {
      await pipeline(source, counter, createWriteStream(incoming, { mode: 0o640 }));
      await fsyncFile(incoming);
      const facts = { size: counter.size, sha256: counter.sha256 };
      return await this.#add(input, facts, (_id, dataPath) => rename(incoming, dataPath));
    } finally {
      await rm(incoming, { force: true });
    }
  }

  async #add(input: SpoolItemInput, facts: { size: number; sha256: string }, placeData: (id: string, dataPath: string) => Promise<void>): Promise<SpoolItem> {
    if (this.#bytes + facts.size > this.#o.maxBytes) {
      const stats = await this.stats();
      this.#o.logger.error(
        `spool full: ${stats.items} item(s), ${stats.bytes} bytes waiting, ${input.key} (${facts.size} bytes) refused; nothing is dropped, uploads must catch up`,
        { spoolDir: this.dir, maxBytes: this.#o.maxBytes },
      );
      this.#o.onAlarm?.(stats, { key: input.key, size: facts.size });
      throw new SpoolFullError(`the spool ${this.dir} is full (${stats.bytes} of ${this.#o.maxBytes} bytes): ${input.key} was not accepted`, {
        hint: 'Uploads are not keeping up or the storage is down: check `mysql-archiver status` and the storage; raise archiver.spoolMaxBytes only if the disk has room. The refused item is kept where it was and retried.',
      });
    }
    const id = nextSpoolId(this.#clock(), this.#lastId);
    this.#lastId = id;
    const item: SpoolItem = { id, key: input.key, size: facts.size, sha256: facts.sha256, record: input.record, enqueuedAt: this.#clock(), dataPath: join(this.#items, `${id}.data`) };
    const { dataPath: _path, ...descriptor } = item;
    const tmpDescriptor = join(this.#tmp, `${id}.json`);
    const handle = await open(tmpDescriptor, 'w', 0o640);
    try {
      await handle.writeFile(`${JSON.stringify(descriptor satisfies SpoolDescriptor)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDir(this.#tmp);
    // counted from here: a concurrent add must see these bytes
    this.#bytes += item.size;
    try {
      await placeData(id, item.dataPath);
      await fsyncDir(this.#items);
      await rename(tmpDescriptor, join(this.#items, `${id}.json`));
      await fsyncDir(this.#items);
    } catch (error) {
      this.#bytes -= item.size;
      await rm(tmpDescriptor, { force: true });
      throw error;
    }
    return item;
  }

  async list(): Promise<SpoolItem[]> {
    const all = await readdir(this.#items).catch((error: NodeJS.ErrnoException) => {
      // a read-only look at a spool nobody has created yet
      if (error.code === 'ENOENT' && this.#o.readOnly) return [] as string[];
      throw error;
    });
    const names = all.filter((n) => n.endsWith('.json')).sort();
    const items: SpoolItem[] = [];
    for (const name of names) {
      const id = name.slice(0, -'.json'.length);
      // removed by a drainer since the readdir: no longer pending
      const descriptor = await readDescriptor(join(this.#items, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (descriptor) items.push({ ...descriptor, id, dataPath: join(this.#items, `${id}.data`) });
    }
    return items;
  }

  async stats(): Promise<SpoolStats> {
    const items = await this.list();
    const oldest = items[0]?.enqueuedAt;
    const damaged = (await readdir(this.#damaged).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).length;
    return {
      items: items.length,
      bytes: items.reduce((n, i) => n + i.size, 0),
      ...(oldest !== undefined ? { oldestEnqueuedAt: oldest } : {}),
      ...(damaged > 0 ? { damaged } : {}),
    };
  }

  async remove(item: SpoolItem): Promise<void> {
    this.#writable();
    await rm(join(this.#items, `${item.id}.json`), { force: true });
    await fsyncDir(this.#items);
    await rm(item.dataPath, { force: true });
    this.#bytes = Math.max(0, this.#bytes - item.size);
  }

  /**
   * Data first, then the reason, then the descriptor: a crash in between leaves a descriptor in
   * items/ without data, which the next open quarantines again; nothing is deleted on the way.
   */
  async quarantine(item: Pick<SpoolItem, 'id'> & Partial<SpoolItem>, reason: string): Promise<void> {
    this.#writable();
    const from = (ext: string) => join(this.#items, `${item.id}.${ext}`);
    const to = (ext: string) => join(this.#damaged, `${item.id}.${ext}`);
    if (await exists(from('data'))) await rename(from('data'), to('data'));
    await writeDurably(to('reason.txt'), `${new Date(this.#clock()).toISOString()} ${reason}\n`);
    const descriptorExisted = await exists(from('json'));
    if (descriptorExisted) await rename(from('json'), to('json'));
    await fsyncDir(this.#damaged);
    await fsyncDir(this.#items);
    if (descriptorExisted && item.size !== undefined) this.#bytes = Math.max(0, this.#bytes - item.size);
    this.#o.logger.error(
      `spool item ${item.id}${item.key ? ` (${item.key})` : ''} is damaged and will not be uploaded: ${reason}; its files are kept in ${this.#damaged}`,
      { spoolDir: this.dir, id: item.id, ...(item.key ? { key: item.key } : {}) },
    );
    this.#o.onDamaged?.({ id: item.id, ...(item.key ? { key: item.key } : {}) }, reason);
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  const handle = await open(path, 'w', 0o640);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
