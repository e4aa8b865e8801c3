import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SpoolFullError } from '../errors.js';
import { fsyncDir, fsyncFile } from '../fs/durable.js';
import type { Logger } from '../ops/logger.js';
import { hashStream } from '../storage/byte-counter.js';

/**
 * The durable local queue between what the tool produces (sealed binlog segments, gap reports) and
 * the storage it goes to. An item is a data file plus a JSON descriptor in `items/`; it exists only
 * once both are there, and leaves only after a verified upload and its manifest record (the
 * drainer's job). Every step is fsync + rename, so a crash at any point leaves either the whole
 * item or none of it, and the source file is never lost in between:
 *   1. descriptor written to tmp/<id>.json and fsynced;
 *   2. data renamed (or copied and fsynced) to items/<id>.data;
 *   3. descriptor renamed to items/<id>.json.
 * On open, a tmp descriptor whose data arrived completes the add; one whose data did not is
 * dropped (the caller still has its file). A full spool refuses new items loudly, never drops any.
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
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  logger: Logger;
  clock?: () => number;
  /** called when an item is refused because the spool is full (also logged at error level) */
  onAlarm?: (stats: SpoolStats, refused: { key: string; size: number }) => void;
}

export interface Spool {
  readonly dir: string;
  /** moves `path` into the spool (rename; copy + fsync across filesystems) */
  add(path: string, input: SpoolItemInput): Promise<SpoolItem>;
  addBuffer(data: Buffer, input: SpoolItemInput): Promise<SpoolItem>;
  /** pending items, oldest first */
  list(): Promise<SpoolItem[]>;
  stats(): Promise<SpoolStats>;
  /** after a verified upload and manifest record */
  remove(item: SpoolItem): Promise<void>;
}

export async function openSpool(options: SpoolOptions): Promise<Spool> {
  const spool = new DirSpool(options);
  await spool.recover();
  return spool;
}

class DirSpool implements Spool {
  readonly dir: string;
  readonly #o: SpoolOptions;
  readonly #items: string;
  readonly #tmp: string;
  readonly #clock: () => number;
  #lastId = '';
  #seq = 0;
  /** bytes of pending items, kept in memory for the cap check */
  #bytes = 0;

  constructor(options: SpoolOptions) {
    this.#o = options;
    this.dir = options.dir;
    this.#items = join(options.dir, 'items');
    this.#tmp = join(options.dir, 'tmp');
    this.#clock = options.clock ?? Date.now;
  }

  async recover(): Promise<void> {
    await mkdir(this.#items, { recursive: true });
    await mkdir(this.#tmp, { recursive: true });
    for (const name of await readdir(this.#tmp)) {
      const path = join(this.#tmp, name);
      const id = name.replace(/\.(json|data)$/, '');
      if (name.endsWith('.json') && (await exists(join(this.#items, `${id}.data`)))) {
        await rename(path, join(this.#items, name));
        this.#o.logger.info('spool: completed an item added just before a crash', { id });
      } else {
        await rm(path, { force: true });
      }
    }
    await fsyncDir(this.#items);
    const names = new Set(await readdir(this.#items));
    for (const name of names) {
      const id = name.replace(/\.(json|data)$/, '');
      if (name.endsWith('.data') && !names.has(`${id}.json`)) {
        // its descriptor goes first on removal: this item was uploaded and recorded already
        await rm(join(this.#items, name), { force: true });
      }
    }
    const items = await this.list();
    this.#bytes = items.reduce((n, i) => n + i.size, 0);
    this.#lastId = items.at(-1)?.id ?? '';
  }

  async add(path: string, input: SpoolItemInput): Promise<SpoolItem> {
    const facts = input.size !== undefined && input.sha256 !== undefined ? { size: input.size, sha256: input.sha256 } : await hashStream(createReadStream(path));
    return this.#add(input, facts, async (dataPath) => {
      try {
        await rename(path, dataPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        await copyFile(path, dataPath);
        await fsyncFile(dataPath);
        await fsyncDir(this.#items);
        await unlink(path);
      }
    });
  }

  async addBuffer(data: Buffer, input: SpoolItemInput): Promise<SpoolItem> {
    const facts = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    return this.#add(input, facts, async (dataPath) => {
      const tmpData = join(this.#tmp, basename(dataPath));
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

  async #add(input: SpoolItemInput, facts: { size: number; sha256: string }, placeData: (dataPath: string) => Promise<void>): Promise<SpoolItem> {
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
    const id = this.#nextId();
    const item: SpoolItem = { id, key: input.key, size: facts.size, sha256: facts.sha256, record: input.record, enqueuedAt: this.#clock(), dataPath: join(this.#items, `${id}.data`) };
    const { dataPath: _path, ...descriptor } = item;
    const tmpDescriptor = join(this.#tmp, `${id}.json`);
    const handle = await open(tmpDescriptor, 'w', 0o640);
    try {
      await handle.writeFile(`${JSON.stringify(descriptor)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDir(this.#tmp);
    await placeData(item.dataPath);
    await fsyncDir(this.#items);
    await rename(tmpDescriptor, join(this.#items, `${id}.json`));
    await fsyncDir(this.#items);
    this.#bytes += item.size;
    return item;
  }

  async list(): Promise<SpoolItem[]> {
    const names = (await readdir(this.#items)).filter((n) => n.endsWith('.json')).sort();
    const items: SpoolItem[] = [];
    for (const name of names) {
      const id = name.slice(0, -'.json'.length);
      const descriptor = JSON.parse(await readFile(join(this.#items, name), 'utf8')) as Omit<SpoolItem, 'dataPath'>;
      items.push({ ...descriptor, id, dataPath: join(this.#items, `${id}.data`) });
    }
    return items;
  }

  async stats(): Promise<SpoolStats> {
    const items = await this.list();
    const oldest = items[0]?.enqueuedAt;
    return { items: items.length, bytes: items.reduce((n, i) => n + i.size, 0), ...(oldest !== undefined ? { oldestEnqueuedAt: oldest } : {}) };
  }

  async remove(item: SpoolItem): Promise<void> {
    await rm(join(this.#items, `${item.id}.json`), { force: true });
    await fsyncDir(this.#items);
    await rm(item.dataPath, { force: true });
    this.#bytes = Math.max(0, this.#bytes - item.size);
  }

  /** sortable in enqueue order even if the clock steps back */
  #nextId(): string {
    let id = `${String(this.#clock()).padStart(15, '0')}-${String(this.#seq++ % 1e6).padStart(6, '0')}`;
    if (id <= this.#lastId) {
      const [ms] = this.#lastId.split('-');
      id = `${ms}-${String(Number(this.#lastId.split('-')[1]) + 1).padStart(6, '0')}`;
    }
    this.#lastId = id;
    return id;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
