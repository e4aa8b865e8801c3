import { createManifest, type ManifestRecord } from '../../src/manifest/manifest.js';
import type { Storage } from '../../src/storage/storage.js';

/** Every manifest record the demo wrote, read back with the product's own manifest reader. */
export async function readDemoManifest(storage: Storage): Promise<ManifestRecord[]> {
  const out: ManifestRecord[] = [];
  for await (const record of createManifest(storage).records()) if (record.key) out.push(record);
  return out;
}
