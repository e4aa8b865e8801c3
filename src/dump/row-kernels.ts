/**
 * The row kernels (row-kernels.wat) of one thread: the row checksum and the special-byte scan in
 * WebAssembly, over a batch copied into the kernels' own memory, where the INSERT encoder
 * (sql-encode.ts) then writes its statements after it.
 *
 * Self-contained on purpose (no imports in the class): the dump's workers run its source text
 * (row-workers.ts) with the module's bytes.
 */
import { ROW_KERNELS_WASM } from './row-kernels-binary.js';

/** The parts of the WebAssembly API used here (the project's lib has no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

/** What row-kernels.wat exports; offsets are into `memory`. */
export interface RowKernelExports {
  memory: WasmMemory;
  /** MurmurHash3_x86_128 (seed 0) of [s, e) as h1..h4, four 32-bit words at `out` */
  hash(s: number, e: number, out: number): void;
  /**
   * Adds the hash of each of `rows` rows (each after 4 unread bytes, `cols` values each) from `p` to
   * the 128-bit big-endian sum in the four words at `acc`; returns where the rows ended (past `end`
   * when they do not fit)
   */
  sum_rows(p: number, end: number, rows: number, cols: number, acc: number): number;
  /** the first index in [i, end) of NUL, LF, CR, backslash, quote, ^Z or a byte >= 0x80, else end */
  next_special(i: number, end: number): number;
}

let compiled: object | undefined;

/** The compiled module, once per thread. */
export function rowKernelsModule(): object {
  try {
    compiled ??= new WebAssembly.Module(Buffer.from(ROW_KERNELS_WASM, 'base64'));
  } catch (error) {
    // V8 runs WebAssembly SIMD on x86-64 CPUs with SSE4.1 (and on every arm64)
    throw new Error(`this machine cannot run the dump's WebAssembly row kernels (${(error as Error).message}); on x86-64 they need a CPU with SSE4.1 (a virtual machine may hide it: use a host CPU model)`, { cause: error });
  }
  return compiled;
}

export class RowKernels {
  /** where a batch goes in memory; [0, 16) carries a row sum in and out */
  readonly arena = 64;
  readonly exports: RowKernelExports;

  constructor(module: object) {
    this.exports = new WebAssembly.Instance(module, {}).exports as RowKernelExports;
  }

  /**
   * The memory as bytes, grown first to hold `size` bytes and the 16 the kernels may read past any
   * range. Growing moves the memory: views taken before are empty afterwards.
   */
  bytes(size: number): Buffer {
    const memory = this.exports.memory;
    const short = size + 16 - memory.buffer.byteLength;
    if (short > 0) memory.grow(Math.ceil(short / 65536));
    return Buffer.from(memory.buffer);
  }

  /** A memory never shrinks: after a huge row (past 64 MiB) the owner starts other kernels. */
  get oversized(): boolean {
    return this.exports.memory.buffer.byteLength > 64 * 1024 * 1024;
  }

  /** The sum of `rows` rows from `start` (see sum_rows) into `acc`; returns where they ended. */
  sumRows(start: number, end: number, rows: number, cols: number, acc: Uint32Array): number {
    const words = new Uint32Array(this.exports.memory.buffer, 0, 4);
    words.fill(0);
    const ended = this.exports.sum_rows(start, end, rows, cols, 0);
    acc.set(words);
    return ended;
  }
}
