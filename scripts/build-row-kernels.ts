/** npm run build:wasm: assembles src/dump/row-kernels.wat into src/dump/row-kernels-binary.ts. */
import { writeFile } from 'node:fs/promises';
import { assembleRowKernels, BINARY_FILE, binaryModuleSource } from './lib/assemble-row-kernels.js';

const wasm = await assembleRowKernels();
await writeFile(BINARY_FILE, binaryModuleSource(wasm));
console.log(`${BINARY_FILE}: ${wasm.length} bytes of WebAssembly`);
