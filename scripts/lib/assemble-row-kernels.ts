/**
 * Assembles src/dump/row-kernels.wat with wabt (a dev dependency: the product runs the assembled
 * module from row-kernels-binary.ts and needs no assembler) into that file's text.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';

export const WAT_FILE = fileURLToPath(new URL('../../src/dump/row-kernels.wat', import.meta.url));
export const BINARY_FILE = fileURLToPath(new URL('../../src/dump/row-kernels-binary.ts', import.meta.url));

export async function assembleRowKernels(): Promise<Uint8Array> {
  const w = await wabt();
  const mod = w.parseWat('row-kernels.wat', await readFile(WAT_FILE, 'utf8'), { simd: true });
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}

/** row-kernels-binary.ts for the assembled module */
export function binaryModuleSource(wasm: Uint8Array): string {
  const lines = Buffer.from(wasm).toString('base64').match(/.{1,100}/g) ?? [];
  return [
    '// Assembled from row-kernels.wat by `npm run build:wasm`: edit that file and run it, never this one.',
    '',
    '/** The WebAssembly module of row-kernels.wat, base64. */',
    'export const ROW_KERNELS_WASM =',
    `  '${lines.join("' +\n  '")}';`,
    '',
  ].join('\n');
}
