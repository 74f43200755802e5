/**
 * @module
 * A cancellable one-shot timer that costs a process about 1 ms at its start: the first
 * `setTimeout` of a Deno 2.9 process costs 13-24 ms (it loads Deno's Node-style timers then),
 * while `AbortSignal.timeout` uses the runtime's own timers. For the timeouts on the thin
 * plugin's path (credential files, API requests, delegates, the wait for events). A timer
 * keeps the event loop alive while it is armed, and no longer once cancelled, like a
 * cleared `setTimeout`; but a cancelled timer's small record (its signal) stays in the runtime
 * until its time would have passed, so a long-running process should not start many long ones.
 */

/** Longest delay a timer holds (2^31-1 ms, 24.8 days); a longer one waits this long. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** An armed timer. */
export interface Timer {
  /** Disarms it: `onFire` is not called afterwards. Harmless once it fired. */
  cancel(): void;
}

/**
 * Calls `onFire` once after `ms` milliseconds (clamped to 0 … {@linkcode MAX_TIMER_MS})
 * unless cancelled first.
 *
 * @example
 * ```ts
 * import { startTimer } from "./timer.ts";
 * const timer = startTimer(10_000, () => console.log("too late"));
 * timer.cancel();
 * ```
 */
export function startTimer(ms: number, onFire: () => void): Timer {
  const delay = Number.isNaN(ms) ? 0 : Math.min(Math.max(0, Math.ceil(ms)), MAX_TIMER_MS);
  const signal = AbortSignal.timeout(delay);
  // Deno keeps the event loop alive for the timeout while the signal has a listener.
  const listener = () => onFire();
  signal.addEventListener("abort", listener, { once: true });
  return { cancel: () => signal.removeEventListener("abort", listener) };
}
