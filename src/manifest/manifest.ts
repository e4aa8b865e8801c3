import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ManifestError, StorageNotFoundError, describeError } from '../errors.js';
import { hashStream } from '../storage/byte-counter.js';
import type { PutResult, Storage } from '../storage/storage.js';

/**
 * The catalog of what the tool wrote, kept in the storage itself so it survives the host and
 * travels with the data. Append-only: one small JSON object per record, never rewritten; a record
 * about an object lives at `manifest/<object key>.json`, so listing `manifest/segments/` gives the
 * binlog archive in order. Other objects in the storage (other tools', other prefixes) are never
 * counted as missing or extra: only what has a record is checked.
 */
export const MANIFEST_PREFIX = 'manifest/';

export interface ManifestRecord {
  v: 1;
  kind: string;
  /** the object this record describes (absent for events such as drill results) */
  key?: string;
  size?: number;
  sha256?: string;
  writtenAt: string;
  [field: string]: unknown;
}

export interface VerifyReport {
  checked: number;
  missing: ManifestRecord[];
  altered: { record: ManifestRecord; actual: { size: number; sha256?: string } }[];
}

export interface Manifest {
  readonly storage: Storage;
  /** records an object that was written and verified; appending the same record again is a no-op */
  recordObject(kind: string, put: PutResult, extra?: Record<string, unknown>): Promise<ManifestRecord>;
  /** a record about no object (a drill result, a dump run); stored under manifest/events/<kind>/ */
  event(kind: string, extra?: Record<string, unknown>): Promise<ManifestRecord>;
  /** puts a record about `record.key`; the same facts again are a no-op, different facts throw ManifestError */
  append(record: ManifestRecord): Promise<void>;
  /** the record about one object, if there is one */
  recordFor(objectKey: string, options?: { signal?: AbortSignal }): Promise<ManifestRecord | undefined>;
  /** records whose record key starts with manifest/<prefix>, in key order */
  records(prefix?: string, options?: { signal?: AbortSignal }): AsyncIterable<ManifestRecord>;
  /** heads (or, deep, re-reads and hashes) every recorded object under the prefix */
  verify(options?: { prefix?: string; deep?: boolean; signal?: AbortSignal }): Promise<VerifyReport>;
}

export function recordKeyFor(objectKey: string): string {
  return `${MANIFEST_PREFIX}${objectKey}.json`;
}

export function createManifest(storage: Storage, options: { clock?: () => Date } = {}): Manifest {
  const clock = options.clock ?? (() => new Date());

  const append = async (record: ManifestRecord, recordKey: string): Promise<void> => {
    const body = Buffer.from(`${JSON.stringify(record)}\n`);
    const existing = await readRecord(storage, recordKey);
    if (existing) {
      // append-only: the same facts again are fine (a retried upload), different facts are not
      if (sameFacts(existing, record)) return;
      throw new ManifestError(`${storage.name}: a different record already exists at ${recordKey}${describeDifference(existing, record)}`, {
        hint: 'Records are never rewritten. Two writers may be using one prefix, or an object was written twice with different content: compare the two and give each archiver its own prefix.',
      });
    }
    await storage.put(recordKey, () => Readable.from([body]), { expected: { size: body.length, sha256: createHash('sha256').update(body).digest('hex') } });
  };

  const manifest: Manifest = {
    storage,
    async recordObject(kind, put, extra = {}) {
      const record: ManifestRecord = { v: 1, ...extra, kind, key: put.key, size: put.size, sha256: put.sha256, writtenAt: clock().toISOString() };
      await append(record, recordKeyFor(put.key));
      return record;
    },
    async event(kind, extra = {}) {
      const at = clock();
      const record: ManifestRecord = { v: 1, ...extra, kind, writtenAt: at.toISOString() };
      const stamp = at.toISOString().replace(/[-:]/g, '');
      await append(record, `${MANIFEST_PREFIX}events/${kind}/${stamp}-${randomBytes(4).toString('hex')}.json`);
      return record;
    },
    async append(record) {
      if (!record.key) throw new Error('append needs a record with a key; use event() for keyless records');
      await append(record, recordKeyFor(record.key));
    },
    recordFor: (objectKey, opts = {}) => readRecord(storage, recordKeyFor(objectKey), opts.signal),
    async *records(prefix = '', opts = {}) {
      for await (const info of storage.list(`${MANIFEST_PREFIX}${prefix}`, opts)) {
        if (!info.key.endsWith('.json')) continue;
        const record = await readRecord(storage, info.key, opts.signal);
        if (record) yield record;
      }
    },
    async verify(opts = {}) {
      const report: VerifyReport = { checked: 0, missing: [], altered: [] };
      for await (const record of manifest.records(opts.prefix ?? '', opts)) {
        if (!record.key) continue;
        report.checked++;
        try {
          if (opts.deep) {
            const actual = await hashStream(await storage.get(record.key, opts));
            if (actual.size !== record.size || actual.sha256 !== record.sha256) report.altered.push({ record, actual });
          } else {
            const info = await storage.head(record.key, opts);
            if (info.size !== record.size || (info.sha256 !== undefined && info.sha256 !== record.sha256)) {
              report.altered.push({ record, actual: { size: info.size, ...(info.sha256 ? { sha256: info.sha256 } : {}) } });
            }
          }
        } catch (error) {
          if (error instanceof StorageNotFoundError) report.missing.push(record);
          else throw error;
        }
      }
      return report;
    },
  };
  return manifest;
}

async function readRecord(storage: Storage, key: string, signal?: AbortSignal): Promise<ManifestRecord | undefined> {
  let stream;
  try {
    stream = await storage.get(key, signal ? { signal } : {});
  } catch (error) {
    if (error instanceof StorageNotFoundError) return undefined;
    throw error;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  const hint = 'Records are written whole and verified, so this object was changed by something else; restore it from another copy or remove it after checking what it described.';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new ManifestError(`${storage.name}: manifest record ${key} is not valid JSON: ${describeError(error)}`, { hint });
  }
  const r = parsed as Partial<ManifestRecord> | null;
  if (!r || typeof r !== 'object' || r.v !== 1 || typeof r.kind !== 'string' || typeof r.writtenAt !== 'string') {
    throw new ManifestError(`${storage.name}: manifest record ${key} is not a version 1 record (v, kind, writtenAt)`, { hint });
  }
  return r as ManifestRecord;
}

/** names the fields that differ, so the error says what the conflict is about */
function describeDifference(existing: ManifestRecord, wanted: ManifestRecord): string {
  const fields = [...new Set([...Object.keys(existing), ...Object.keys(wanted)])].filter(
    (f) => f !== 'writtenAt' && JSON.stringify(sortKeys(existing[f])) !== JSON.stringify(sortKeys(wanted[f])),
  );
  return fields.length ? ` (differs in ${fields.join(', ')}; recorded ${String(existing.writtenAt)})` : '';
}

/** The same record written twice differs only in when it was written. */
function sameFacts(a: ManifestRecord, b: ManifestRecord): boolean {
  const strip = ({ writtenAt: _w, ...rest }: ManifestRecord) => JSON.stringify(sortKeys(rest));
  return strip(a) === strip(b);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}
