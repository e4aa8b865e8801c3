/**
 * Compression of data chunks.
 *
 * Default (`auto`): zstd level 1, through the Debian `zstd` program in a child process, so it runs on
 * another core. Measured in one run (8 x 250k sysbench rows) a dump with gzip level 1 took 1.5x as
 * long and made 8% larger files. Without the program `auto` falls back to gzip level 1 in-process
 * (node:zlib; any machine reads it with `zcat`) and the dump says so; a zstd dump needs `zstd` to
 * be loaded (the loader says so clearly).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { finished } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ConfigError, DumpError } from '../errors.js';
import type { DumpCompression } from './types.js';

export interface CodecStream {
  input: Writable;
  output: Readable;
  /** resolves when the codec finished cleanly (for a child process: exit code 0) */
  done: Promise<void>;
}

export function extensionOf(compression: DumpCompression): string {
  return compression === 'zstd' ? '.sql.zst' : '.sql.gz';
}

export function compressionOfKey(key: string): DumpCompression | null {
  if (key.endsWith('.sql.gz')) return 'gzip';
  if (key.endsWith('.sql.zst')) return 'zstd';
  return null;
}

let zstdAvailable: boolean | undefined;
export function hasZstd(): boolean {
  zstdAvailable ??= spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
  return zstdAvailable;
}

function zstdMissing(): DumpError {
  return new DumpError('the zstd program is not installed', {
    hint: 'Install zstd (Debian: apt-get install zstd), or dump with compression gzip.',
  });
}

export interface CompressionChoice {
  compression: DumpCompression;
  /** set when `auto` had to fall back to gzip */
  warning?: string;
}

/**
 * The codec a dump uses for the configured `dump.compression`. `zstd` without the program is bad
 * configuration: the ConfigError (exit 2) names the fix before anything is dumped.
 */
export function chooseCompression(wanted: DumpCompression | 'auto', zstdInstalled: () => boolean = hasZstd): CompressionChoice {
  if (wanted === 'gzip') return { compression: 'gzip' };
  if (zstdInstalled()) return { compression: 'zstd' };
  if (wanted === 'auto') {
    return { compression: 'gzip', warning: 'the zstd program is not installed, so dumps use gzip, which takes about 1.5x as long (fix: apt-get install zstd)' };
  }
  throw new ConfigError('dump.compression is zstd, but the zstd program is not installed', {
    hint: 'Install zstd (Debian: apt-get install zstd), or set dump.compression to auto (gzip where zstd is missing) or gzip.',
  });
}

/** A compressor writing into a file: what is written to `input` lands compressed in the file. */
export interface FileCompressor {
  input: Writable;
  /** resolves when the file holds all of it (for zstd: the program exited with code 0) */
  done: Promise<void>;
}

/**
 * Compresses into the open file `fd`, which the caller closes once `done` settled. zstd writes the
 * file itself: the compressed bytes never pass through this process (a dump's would be a third of
 * its SQL again, in socket reads that count against V8's heap limit).
 */
export function compressInto(compression: DumpCompression, fd: number, gzipLevel = 1): FileCompressor {
  if (compression === 'gzip') {
    const z = createGzip({ level: gzipLevel, chunkSize: 64 * 1024 });
    return { input: z, done: pipeline(z, createWriteStream('', { fd, autoClose: false })) };
  }
  const { input, done } = child(['-1', '-q', '-c'], { out: fd });
  return { input: input!, done };
}

export function decompressor(compression: DumpCompression): CodecStream {
  if (compression === 'gzip') {
    const z = createGunzip({ chunkSize: 64 * 1024 });
    return { input: z, output: z, done: finished(z) };
  }
  const { input, output, done } = child(['-d', '-q', '-c']);
  return { input: input!, output: output!, done };
}

/**
 * Decompresses the open local file `fd` from its start (the caller closes it once `done`
 * settled): zstd reads it itself, so its compressed bytes never pass through this process (gzip
 * goes through node:zlib, with positioned reads).
 */
export function decompressFile(compression: DumpCompression, fd: number): Omit<CodecStream, 'input'> {
  if (compression === 'gzip') {
    const z = createGunzip({ chunkSize: 64 * 1024 });
    return { output: z, done: pipeline(createReadStream('', { fd, autoClose: false, start: 0, highWaterMark: 1 << 20 }), z) };
  }
  const { output, done } = child(['-d', '-q', '-c'], { in: fd });
  return { output: output!, done };
}

/**
 * zstd with `args`. It reads a stream (`input`), or the file `in`; its output is read from a
 * stream (`output`), or it writes it to the file `out` itself.
 */
function child(args: string[], io: { in?: number; out?: number } = {}): { input: Writable | null; output: Readable | null; done: Promise<void> } {
  if (!hasZstd()) throw zstdMissing();
  const proc = spawn('zstd', args, { stdio: [io.in ?? 'pipe', io.out ?? 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 2000)));
  // a write into a program that died fails with EPIPE: reported through `done`, never thrown
  let inputError: Error | undefined;
  proc.stdin?.on('error', (error) => (inputError ??= error));
  const done = new Promise<void>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) reject(new DumpError(`zstd ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else if (inputError) reject(new DumpError(`zstd ${args.join(' ')}: writing to it failed: ${inputError.message}`));
      else resolve();
    });
  });
  let output: PassThrough | null = null;
  if (io.out === undefined) {
    // Read stdout from the start: when a child exits, Node resumes any output stream nobody reads
    // yet and the data is gone. A loader that spawns `zstd -d`, feeds it a small file and only then
    // starts reading (after its START TRANSACTION) lost whole chunks that way, with exit code 0.
    const out = new PassThrough({ highWaterMark: 1 << 16 });
    proc.stdout!.pipe(out);
    // a reader that gives up (destroys the output) stops the program, which would wait on it forever
    out.once('close', () => {
      if (!out.readableEnded && proc.exitCode === null) proc.kill();
    });
    output = out;
  }
  // a failed child must fail the streams that feed or read it
  done.catch((error: unknown) => {
    proc.stdout?.destroy(error as Error);
    output?.destroy(error as Error);
  });
  return { input: proc.stdin, output, done };
}
