/**
 * A clock and timers that move only when the test says so: years of schedules run in seconds,
 * and every timer fires at exactly its due time, in order.
 */
export class ManualTimers {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { due: number; fn: () => void }>();

  constructor(start: Date) {
    this.#now = start.getTime();
  }

  readonly clock = (): Date => new Date(this.#now);

  readonly setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#seq;
    this.#timers.set(id, { due: this.#now + Math.max(0, ms), fn });
    return id;
  };

  readonly clearTimeout = (handle: unknown): void => {
    this.#timers.delete(handle as number);
  };

  get pending(): number {
    return this.#timers.size;
  }

  /** Fires every timer due up to `until` in due order, awaiting `settle` after each, then sets the clock to `until`. */
  async advanceTo(until: Date, settle: () => Promise<void>): Promise<void> {
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (!next || entry[1].due < next[1].due) next = entry;
      if (!next || next[1].due > until.getTime()) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].due);
      next[1].fn();
      await settle();
    }
    this.#now = Math.max(this.#now, until.getTime());
    await settle();
  }

  /** Moves the clock without firing anything (the daemon was down). */
  jumpTo(to: Date): void {
    this.#now = to.getTime();
  }
}
