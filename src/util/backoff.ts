/**
 * @module
 * Waiting between attempts: exponential backoff with jitter under a cap, and a sleep that an
 * `AbortSignal` ends early without leaving a timer behind.
 */

/** Options of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** Delay after the first failure, before jitter, in milliseconds. */
  initialMs: number;
  /** Cap of the delay, in milliseconds. */
  maxMs: number;
}

/**
 * How long to wait after the `failures`-th failure in a row (1 = the first): the base delay
 * doubles each time up to `maxMs`, and a random half of it is taken off ("equal jitter") so
 * that clients failing together do not retry together.
 *
 * @param random A number in [0, 1), `Math.random()` by default.
 * @returns A delay in [base / 2, base], where base = min(maxMs, initialMs × 2^(failures − 1)).
 */
export function backoffDelay(
  failures: number,
  options: BackoffOptions,
  random: number = Math.random(),
): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  const base = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return base / 2 + (base / 2) * random;
}

/**
 * Waits `ms` milliseconds, or less when `signal` aborts.
 *
 * @returns `true` after the full wait, `false` when aborted (also when already aborted).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
