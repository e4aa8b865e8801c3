import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * A worker thread evaluated from source text (so it runs the same from dist/, tsx and vitest) that
 * answers every message carrying a `seq` with one reply of the same `seq`. It holds the process
 * open only while answers are due. When it dies, every pending question is rejected and `broken`
 * tells the owner to start another.
 */
export class EvalWorker<Reply extends { seq: number }> {
  readonly #worker: Worker;
  readonly #name: string;
  readonly #pending = new Map<number, { resolve(reply: Reply): void; reject(error: Error): void }>();
  #seq = 0;
  #failed: Error | undefined;

  constructor(name: string, source: string, resourceLimits?: ResourceLimits) {
    this.#name = name;
    this.#worker = new Worker(source, { eval: true, ...(resourceLimits ? { resourceLimits } : {}) });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      const p = this.#pending.get(reply.seq);
      this.#pending.delete(reply.seq);
      if (this.#pending.size === 0) this.#worker.unref();
      p?.resolve(reply);
    });
    const fail = (error: Error) => {
      this.#failed ??= error;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`${this.#name} exited (code ${code})`)));
  }

  get broken(): boolean {
    return this.#failed !== undefined;
  }

  /** a message that gets no reply */
  post(message: Record<string, unknown>): void {
    this.#worker.postMessage(message);
  }

  /** a message and its reply; `transfer` moves those buffers to the worker */
  ask(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.#failed) return Promise.reject(this.#failed);
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      // questions pending must keep the process alive
      this.#worker.ref();
      this.#worker.postMessage({ ...message, seq }, transfer);
    });
  }
}
