import { throwIfAborted } from '../errors.js';

/**
 * The demo is a list of named steps run in order; later issues add steps (dump, restore) by
 * appending to the list. Each step prints one line when it ends, `[3/8] run check ... ok (1.2 s)`,
 * followed by the detail lines it returned, indented.
 */
export interface Step<C> {
  readonly name: string;
  /** returns lines worth showing under the step's status line */
  run(ctx: C): Promise<readonly string[] | void>;
}

export interface StepTiming {
  readonly name: string;
  readonly ms: number;
  readonly ok: boolean;
}

export interface RunStepsDeps {
  out: (line: string) => void;
  signal?: AbortSignal;
  /** milliseconds from an arbitrary origin; injectable so tests control timings */
  now?: () => number;
}

/** Runs every step; stops at the first failure (printed as FAILED) and rethrows it. */
export async function runSteps<C>(steps: readonly Step<C>[], ctx: C, deps: RunStepsDeps): Promise<StepTiming[]> {
  const now = deps.now ?? (() => performance.now());
  const timings: StepTiming[] = [];
  for (const [i, step] of steps.entries()) {
    throwIfAborted(deps.signal);
    const label = `[${i + 1}/${steps.length}] ${step.name} ...`;
    const started = now();
    let details: readonly string[] | void;
    try {
      details = await step.run(ctx);
    } catch (error) {
      const ms = now() - started;
      timings.push({ name: step.name, ms, ok: false });
      deps.out(`${label} ${deps.signal?.aborted ? 'interrupted' : 'FAILED'} (${formatSeconds(ms)})`);
      throw error;
    }
    const ms = now() - started;
    timings.push({ name: step.name, ms, ok: true });
    deps.out(`${label} ok (${formatSeconds(ms)})`);
    for (const line of details ?? []) deps.out(`      ${line}`);
  }
  return timings;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
