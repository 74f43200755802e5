/**
 * @module
 * The daemon's pod events (`AddedInterface`, `NoNetworkFound`), posted off the requests'
 * path: a request queues its events and answers; a few senders post them. The queue is
 * bounded: when it is full an event is dropped and counted, so a burst of pods against a
 * slow API server cannot grow the daemon's memory. On SIGTERM, what is queued gets a deadline.
 */

import type { KubeClient, PodEventOptions } from "../k8s/client.ts";
import type { Pod } from "../k8s/types.ts";
import type { EventSink } from "../multus/kube/session.ts";
import { errorMessage } from "../util/errors.ts";

/** Options of {@linkcode EventQueue}. */
export interface EventQueueOptions {
  /** Events waiting at most (default 256); beyond, new ones are dropped. */
  capacity?: number;
  /** Events posted at once (default 4). */
  senders?: number;
  /** Where failures and drops are reported (default nowhere). */
  log?: (message: string) => void;
}

interface QueuedEvent {
  client: KubeClient;
  pod: Pod;
  event: PodEventOptions;
}

/** A bounded queue of pod events with a few senders. */
export class EventQueue implements EventSink {
  readonly #capacity: number;
  readonly #senders: number;
  readonly #log: (message: string) => void;
  readonly #waiting: QueuedEvent[] = [];
  #active = 0;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Events posted. */
  sent = 0;
  /** Events the server refused or that could not be sent. */
  failed = 0;
  /** Events dropped because the queue was full or closed. */
  dropped = 0;

  constructor(options: EventQueueOptions = {}) {
    this.#capacity = options.capacity ?? 256;
    this.#senders = options.senders ?? 4;
    this.#log = options.log ?? (() => {});
  }

  /** Events waiting or being posted. */
  get depth(): number {
    return this.#waiting.length + this.#active;
  }

  post(client: KubeClient, pod: Pod, event: PodEventOptions): void {
    if (this.#closed || this.#waiting.length >= this.#capacity) {
      this.dropped++;
      // The first drop is said; later ones are counted (a burst would flood the log).
      if (this.dropped === 1 || this.dropped % 100 === 0) {
        this.#log(
          `event "${event.reason}" of pod "${pod.metadata.namespace}/${pod.metadata.name}" dropped: ${
            this.#closed ? "the daemon is stopping" : `${this.#capacity} events wait already`
          } (${this.dropped} dropped so far)`,
        );
      }
      return;
    }
    this.#waiting.push({ client, pod, event });
    if (this.#active < this.#senders) this.#send();
  }

  /**
   * Stops taking events and waits for those queued to be posted, at most `deadlineMs`.
   *
   * @returns How many were left unsent (dropped at the deadline).
   */
  async close(deadlineMs: number): Promise<number> {
    this.#closed = true;
    if (this.depth === 0) return 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idle.push(resolve)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, deadlineMs)),
    ]);
    clearTimeout(timer);
    const left = this.depth;
    this.dropped += this.#waiting.length;
    this.#waiting.length = 0;
    return left;
  }

  async #send(): Promise<void> {
    this.#active++;
    try {
      for (let next = this.#waiting.shift(); next; next = this.#waiting.shift()) {
        try {
          await next.client.createEvent(next.pod, next.event);
          this.sent++;
        } catch (err) {
          this.failed++;
          this.#log(`event "${next.event.message}" not sent: ${errorMessage(err)}`);
        }
      }
    } finally {
      this.#active--;
      if (this.depth === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
    }
  }
}
