import assert from "node:assert/strict";
import { backoffDelay, sleep } from "./backoff.ts";

Deno.test("backoffDelay() doubles from initialMs up to maxMs, jitter taking off up to half", () => {
  const options = { initialMs: 100, maxMs: 1000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, options, 0.999999)).map(Math.round),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual([1, 2, 5].map((n) => backoffDelay(n, options, 0)), [50, 100, 500]);
  assert.equal(backoffDelay(0, options, 0), 50, "failures below 1 count as the first");
});

Deno.test("sleep() ends early on abort and leaves no timer", async () => {
  const controller = new AbortController();
  const slept = sleep(60_000, controller.signal);
  controller.abort();
  assert.equal(await slept, false);
  assert.equal(await sleep(60_000, controller.signal), false, "already aborted");
  assert.equal(await sleep(1), true);
});
