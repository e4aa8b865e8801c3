import { spawn, type StdioOptions } from 'node:child_process';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';

/**
 * Wall time and peak RSS of one child process, measured from outside so that every tool (our
 * workers, aws, mariadb-dump, zstd) is measured the same way.
 *
 * Peak RSS comes from GNU time (`%M`, the ru_maxrss wait4 reports: exact, and for a process tree
 * the largest single process, not the sum). Without GNU time it falls back to polling
 * /proc/PID/status VmHWM, a high-water mark, so only growth in the last poll interval before the
 * exit can be missed.
 */
export interface MeasureOptions {
  command: string;
  args?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** where the child's stdout goes: kept in memory (small outputs only), a file path, or dropped */
  stdout?: 'capture' | 'ignore' | { file: string };
  /** the child is killed after this long (default: no limit) */
  timeoutMs?: number;
  /** 'auto' (default) uses GNU time when installed */
  rssMethod?: 'auto' | 'gnu-time' | 'proc';
  /** VmHWM poll interval for the proc method (default 20 ms) */
  pollMs?: number;
}

export interface Measurement {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  wallSeconds: number;
  peakRssBytes: number;
  /** user+system CPU seconds; only known with GNU time */
  cpuSeconds?: number;
  rssMethod: 'gnu-time' | 'proc';
  stdout: string;
  stderr: string;
}

export const GNU_TIME = '/usr/bin/time';
/** stderr and captured stdout are cut to this many characters from the end */
const KEEP_CHARS = 64 * 1024;

export function hasGnuTime(): boolean {
  try {
    accessSync(GNU_TIME, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function measureChild(options: MeasureOptions): Promise<Measurement> {
  const method = options.rssMethod === 'proc' || (options.rssMethod !== 'gnu-time' && !hasGnuTime()) ? 'proc' : 'gnu-time';
  const args = options.args ?? [];
  const scratch = method === 'gnu-time' ? await mkdtemp(join(tmpdir(), 'bench-time-')) : undefined;
  const timeFile = scratch ? join(scratch, 'rusage') : undefined;
  const [command, argv] = timeFile
    ? [GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, '--', options.command, ...args]]
    : [options.command, [...args]];

  const out = options.stdout ?? 'capture';
  const sink = typeof out === 'object' ? createWriteStream(out.file) : undefined;
  const stdio: StdioOptions = ['ignore', out === 'ignore' ? 'ignore' : 'pipe', 'pipe'];
  try {
    const started = process.hrtime.bigint();
    const child = spawn(command, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio });
    let stdout = '';
    let stderr = '';
    if (sink) child.stdout?.pipe(sink);
    else child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout = keepTail(stdout + d)));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = keepTail(stderr + d)));

    let polledKiB = 0;
    const poll = method === 'proc' ? setInterval(() => (polledKiB = Math.max(polledKiB, readHighWaterKiB(child.pid))), options.pollMs ?? 20) : undefined;
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;

    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => resolve([code, sig]));
    });
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (poll) clearInterval(poll);
    if (timer) clearTimeout(timer);
    if (sink) await finished(sink);

    if (timeFile) {
      const usage = parseGnuTime(await readFile(timeFile, 'utf8').catch(() => ''));
      if (!usage) throw new Error(`${GNU_TIME} left no usage line for ${options.command} (exit ${exitCode ?? signal}): ${stderr.trim()}`);
      return { exitCode, signal, wallSeconds, peakRssBytes: usage.maxRssKiB * 1024, cpuSeconds: usage.cpuSeconds, rssMethod: method, stdout, stderr };
    }
    return { exitCode, signal, wallSeconds, peakRssBytes: polledKiB * 1024, rssMethod: method, stdout, stderr };
  } finally {
    sink?.destroy();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The last line GNU time wrote with `-f '%e %M %U %S'` (earlier lines say "Command exited with non-zero status N"). */
export function parseGnuTime(text: string): { maxRssKiB: number; cpuSeconds: number } | undefined {
  const line = text.trim().split('\n').pop() ?? '';
  const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(line.trim());
  if (!m) return undefined;
  return { maxRssKiB: Number(m[2]), cpuSeconds: Number(m[3]) + Number(m[4]) };
}

function readHighWaterKiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // synchronous on purpose: a tiny procfs read, and an async one could land after the exit
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function keepTail(text: string): string {
  return text.length > KEEP_CHARS ? text.slice(-KEEP_CHARS) : text;
}

/** Throws with the child's stderr when it did not exit 0. */
export function assertSucceeded(what: string, m: Measurement): void {
  if (m.exitCode === 0) return;
  const tail = m.stderr.trim().split('\n').slice(-15).join('\n');
  throw new Error(`${what} failed (${m.signal ? `signal ${m.signal}` : `exit ${m.exitCode}`})${tail ? `:\n${tail}` : ''}`);
}
