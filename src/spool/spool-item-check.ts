import { readFile, stat } from 'node:fs/promises';
import { hashFile } from '../fs/hash-file.js';
import type { SpoolItem } from './spool.js';

/** What a descriptor file holds: the item without its data path (derived from the id). */
export type SpoolDescriptor = Omit<SpoolItem, 'dataPath'>;

/** Reads and checks one descriptor; a file that is not a whole descriptor throws naming the file. */
export async function readDescriptor(path: string): Promise<SpoolDescriptor> {
  const text = await readFile(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`spool descriptor ${path} is not valid JSON`);
  }
  const d = parsed as Partial<SpoolDescriptor>;
  if (typeof d.key !== 'string' || typeof d.size !== 'number' || typeof d.sha256 !== 'string' || typeof d.record?.kind !== 'string') {
    throw new Error(`spool descriptor ${path} lacks key, size, sha256 or record.kind`);
  }
  return d as SpoolDescriptor;
}

export interface ItemProblem {
  reason: string;
  /** when the descriptor itself could be read */
  descriptor?: SpoolDescriptor;
}

/**
 * Whether the data file holds what the descriptor says: present, of its size and (with `hash`)
 * of its sha256. Returns the problem, or undefined when the item is whole.
 */
export async function checkItemData(descriptorPath: string, dataPath: string, options: { hash: boolean }): Promise<ItemProblem | undefined> {
  let descriptor: SpoolDescriptor;
  try {
    descriptor = await readDescriptor(descriptorPath);
  } catch (error) {
    return { reason: error instanceof Error ? error.message : String(error) };
  }
  const size = await stat(dataPath).then(
    (s) => s.size,
    () => undefined,
  );
  if (size === undefined) return { reason: 'its data file is missing', descriptor };
  if (size !== descriptor.size) return { reason: `its data file has ${size} bytes, the descriptor says ${descriptor.size}`, descriptor };
  if (options.hash) {
    const actual = await hashFile(dataPath);
    if (actual.sha256 !== descriptor.sha256) return { reason: `its data file's sha256 ${actual.sha256} differs from the descriptor's ${descriptor.sha256}`, descriptor };
  }
  return undefined;
}
