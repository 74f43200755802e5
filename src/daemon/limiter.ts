/**
 * @module
 * Bounds the daemon's work: at most `maxParallel` requests run at once, at most `maxQueued`
 * wait, each for at most its deadline. Requests for the same container run one after the
 * other in arrival order, so a runtime's DEL that follows an ADD it gave up on waits for that
 * ADD instead of racing it. Beyond the bounds a request is refused at once: the caller answers
 * CNI code 11 (try again later) instead of growing the daemon's memory.
 */

/** Why a request did not get to run. */
export type RefusalReason = "queue-full" | "queue-timeout" | "draining";

/** A request the limiter refused; `reason` says why. */
export class LimiterRefusal extends Error {
  override name = "LimiterRefusal";
  readonly reason: RefusalReason;

  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Bounds of a {@linkcode RequestLimiter}. */
export interface LimiterBounds {
  maxParallel: number;
  maxQueued: number;
}

interface Waiter {
  key: string;
  start: () => void;
  refuse: (refusal: LimiterRefusal) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A bounded worker pool with a bounded, deadline-limited queue and per-key ordering. */
export class RequestLimiter {
  #bounds: LimiterBounds;
  #running = 0;
  /** Keys with a request running. */
  #busyKeys = new Set<string>();
  #queue: Waiter[] = [];
  #draining = false;
  #idle: (() => void)[] = [];

  constructor(bounds: LimiterBounds) {
    this.#bounds = bounds;
  }

  /** Requests running now. */
  get running(): number {
    return this.#running;
  }

  /** Requests waiting now. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Runs `work` once a slot is free and no other request for `key` runs ("" = no ordering).
   * Rejects with {@linkcode LimiterRefusal} when the queue is full, when `waitMs` passes
   * first, or when the limiter drains; `work`'s own outcome otherwise.
   */
  async run<T>(key: string, waitMs: number, work: () => Promise<T>): Promise<T> {
    await this.#acquire(key, waitMs);
    try {
      return await work();
    } finally {
      this.#release(key);
    }
  }

  /** Refuses every waiting request and every later one; running ones go on. */
  drain(): void {
    this.#draining = true;
    for (const waiter of this.#queue.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.refuse(new LimiterRefusal("draining", "the daemon is shutting down"));
    }
    this.#notifyIdle();
  }

  /** Resolves once nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #acquire(key: string, waitMs: number): Promise<void> {
    if (this.#draining) {
      return Promise.reject(new LimiterRefusal("draining", "the daemon is shutting down"));
    }
    // Waiters never sit beside a free slot they could use (every release dispatches), so a
    // request that can start now jumps no one.
    if (this.#canStart(key)) {
      this.#start(key);
      return Promise.resolve();
    }
    if (this.#queue.length >= this.#bounds.maxQueued) {
      return Promise.reject(
        new LimiterRefusal(
          "queue-full",
          `${this.#running} requests are running and ${this.#queue.length} waiting, the most ` +
            "the daemon takes",
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        key,
        start: resolve,
        refuse: reject,
        timer: setTimeout(() => {
          const at = this.#queue.indexOf(waiter);
          if (at === -1) return;
          this.#queue.splice(at, 1);
          reject(
            new LimiterRefusal(
              "queue-timeout",
              `it waited ${Math.round(waitMs / 1000)} s for one of the ` +
                `${this.#bounds.maxParallel} request slots`,
            ),
          );
          this.#notifyIdle();
        }, waitMs),
      };
      this.#queue.push(waiter);
    });
  }

  #canStart(key: string): boolean {
    return this.#running < this.#bounds.maxParallel && (key === "" || !this.#busyKeys.has(key));
  }

  #start(key: string): void {
    this.#running++;
    if (key !== "") this.#busyKeys.add(key);
  }

  #release(key: string): void {
    this.#running--;
    this.#busyKeys.delete(key);
    this.#dispatch();
    this.#notifyIdle();
  }

  /** Starts waiting requests in arrival order, skipping those whose key is busy or taken. */
  #dispatch(): void {
    const blocked = new Set<string>();
    for (let i = 0; i < this.#queue.length && this.#running < this.#bounds.maxParallel;) {
      const waiter = this.#queue[i];
      if (blocked.has(waiter.key) || !this.#canStart(waiter.key)) {
        if (waiter.key !== "") blocked.add(waiter.key);
        i++;
        continue;
      }
      this.#queue.splice(i, 1);
      clearTimeout(waiter.timer);
      this.#start(waiter.key);
      waiter.start();
    }
  }

  #notifyIdle(): void {
    if (this.#running !== 0 || this.#queue.length !== 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
