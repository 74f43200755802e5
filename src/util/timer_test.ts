import assert from "node:assert/strict";
import { startTimer } from "./timer.ts";

Deno.test("startTimer() calls back once after the delay", async () => {
  let calls = 0;
  await new Promise<void>((resolve) => {
    startTimer(5, () => {
      calls++;
      resolve();
    });
  });
  assert.equal(calls, 1);
});

Deno.test("startTimer() does not call back once cancelled", async () => {
  let fired = false;
  const timer = startTimer(1, () => fired = true);
  timer.cancel();
  // A later timer fires after the first one's time: the cancelled one stayed silent.
  await new Promise<void>((resolve) => startTimer(20, resolve));
  assert.equal(fired, false);
});

Deno.test("startTimer() holds a delay too long for the runtime instead of firing at once", async () => {
  let fired = false;
  const timer = startTimer(2 ** 40, () => fired = true);
  await new Promise<void>((resolve) => startTimer(20, resolve));
  timer.cancel();
  assert.equal(fired, false);
});

Deno.test("startTimer() treats a negative or NaN delay as none", async () => {
  const order: string[] = [];
  await Promise.all([
    new Promise<void>((resolve) => startTimer(-5, () => resolve(void order.push("negative")))),
    new Promise<void>((resolve) => startTimer(NaN, () => resolve(void order.push("nan")))),
  ]);
  assert.deepEqual(order.sort(), ["nan", "negative"]);
});
