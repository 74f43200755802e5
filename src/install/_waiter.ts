/**
 * @module
 * How the installer waits between passes: a sleep that a signal or a file event in the watched
 * directories (debounced) ends early, and the stop flag a signal sets.
 */

import { describeFsError } from "./_run.ts";

/** Sleeps of one installer run, woken by {@linkcode Waiter.wake} or file events. */
export class Waiter {
  /** Set by the first SIGTERM or SIGINT. */
  stopping = false;
  #wake: (() => void) | undefined;
  #pokeTimer: ReturnType<typeof setTimeout> | undefined;
  #watcher: Deno.FsWatcher | undefined;

  /** Resolves after `ms`, or sooner on {@linkcode Waiter.wake}. */
  sleep(ms: number): Promise<void> {
    return new Promise((done) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        done();
      }
      this.#wake = finish;
    });
  }

  /** Ends the current sleep now. */
  wake(): void {
    this.#wake?.();
  }

  /**
   * Wakes the sleep soon after file events in `dirs` (debounced); without file events,
   * says so through `say` and the loop only polls.
   */
  watch(dirs: string[], say: (message: string) => void): void {
    try {
      this.#watcher = Deno.watchFs(dirs, { recursive: false });
    } catch (err) {
      say(`File events unavailable (${describeFsError(err)}): polling only`);
      return;
    }
    const watcher = this.#watcher;
    (async () => {
      try {
        for await (const event of watcher) {
          if (event.kind === "access" || event.kind === "other") continue;
          if (this.#pokeTimer !== undefined) continue;
          this.#pokeTimer = setTimeout(() => {
            this.#pokeTimer = undefined;
            this.wake();
          }, 50);
        }
      } catch {
        // watcher closed or failed: polling goes on
      }
    })();
  }

  /** Stops watching files. */
  close(): void {
    this.#watcher?.close();
    clearTimeout(this.#pokeTimer);
  }
}
