import type { Storage } from '../storage/storage.js';
import { readDumpManifest } from './loader.js';
import { keyName } from './names.js';
import { DEFAULT_DUMPS_ROOT, DUMP_MANIFEST_NAME, type BinlogCoordinates, type SnapshotMode } from './types.js';

export interface DumpSummary {
  tier: string;
  dumpId: string;
  prefix: string;
  startedAt: string;
  finishedAt: string;
  mode: SnapshotMode;
  coordinates: BinlogCoordinates | null;
  databases: string[];
  tables: number;
  rows: number;
  /** stored bytes of all files (dump.json excluded) */
  bytes: number;
}

/** Complete dumps (those with a dump.json) of one tier or all tiers, oldest first. Partial dumps are not listed. */
export async function listDumps(storage: Storage, tier?: string, options: { root?: string; signal?: AbortSignal } = {}): Promise<DumpSummary[]> {
  const root = options.root ?? DEFAULT_DUMPS_ROOT;
  const scan = tier === undefined ? `${root}/` : `${root}/${keyName(tier)}/`;
  const out: DumpSummary[] = [];
  for await (const obj of storage.list(scan, { signal: options.signal })) {
    if (!obj.key.endsWith(`/${DUMP_MANIFEST_NAME}`)) continue;
    const prefix = obj.key.slice(0, -(DUMP_MANIFEST_NAME.length + 1));
    // exactly <root>/<tier>/<dumpId>/dump.json
    if (prefix.slice(root.length + 1).split('/').length !== 2) continue;
    const m = await readDumpManifest(storage, prefix, options.signal);
    out.push({
      tier: m.tier,
      dumpId: m.dumpId,
      prefix,
      startedAt: m.startedAt,
      finishedAt: m.finishedAt,
      mode: m.mode,
      coordinates: m.snapshot.coordinates,
      databases: m.databases.map((d) => d.name),
      tables: m.tables.length,
      rows: m.tables.reduce((n, t) => n + t.rows, 0),
      bytes: m.files.reduce((n, f) => n + f.size, 0),
    });
  }
  return out.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.dumpId < b.dumpId ? -1 : 1));
}
