import assert from "node:assert/strict";
import { LimiterRefusal, RequestLimiter } from "./limiter.ts";

/** A unit of work the test finishes by hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => open = resolve);
  return { open, opened };
}

Deno.test("RequestLimiter runs at most maxParallel and starts waiters in arrival order", async () => {
  const limiter = new RequestLimiter({ maxParallel: 2, maxQueued: 10 });
  const order: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const job = (name: string) => {
    const g = gate();
    gates.set(name, g);
    return limiter.run("", 60_000, async () => {
      order.push(name);
      await g.opened;
      return name;
    });
  };
  const runs = ["a", "b", "c", "d"].map(job);
  await Promise.resolve();
  assert.equal(limiter.running, 2);
  assert.equal(limiter.queued, 2);
  assert.deepEqual(order, ["a", "b"]);
  gates.get("b")!.open();
  assert.equal(await runs[1], "b");
  assert.deepEqual(order, ["a", "b", "c"]);
  for (const name of ["a", "c", "d"]) gates.get(name)!.open();
  assert.deepEqual(await Promise.all(runs), ["a", "b", "c", "d"]);
  assert.equal(limiter.running, 0);
  await limiter.idle();
});

Deno.test("RequestLimiter refuses at once when the queue is full, and waiters past their deadline", async () => {
  const limiter = new RequestLimiter({ maxParallel: 1, maxQueued: 1 });
  const g = gate();
  const first = limiter.run("", 60_000, () => g.opened);
  const waiting = limiter.run("", 20, () => Promise.resolve("late"));
  await assert.rejects(
    limiter.run("", 60_000, () => Promise.resolve("x")),
    (err) => err instanceof LimiterRefusal && err.reason === "queue-full",
  );
  await assert.rejects(
    waiting,
    (err) => err instanceof LimiterRefusal && err.reason === "queue-timeout",
  );
  assert.equal(limiter.queued, 0);
  g.open();
  await first;
});

Deno.test("RequestLimiter runs requests for one key one after the other; other keys pass", async () => {
  const limiter = new RequestLimiter({ maxParallel: 4, maxQueued: 10 });
  const events: string[] = [];
  const g = gate();
  const add = limiter.run("ctr-1", 60_000, async () => {
    events.push("add start");
    await g.opened;
    events.push("add end");
  });
  const del = limiter.run("ctr-1", 60_000, () => {
    events.push("del");
    return Promise.resolve();
  });
  const other = limiter.run("ctr-2", 60_000, () => {
    events.push("other");
    return Promise.resolve();
  });
  await other;
  assert.deepEqual(events, ["add start", "other"]);
  assert.equal(limiter.queued, 1);
  g.open();
  await Promise.all([add, del]);
  assert.deepEqual(events, ["add start", "other", "add end", "del"]);
});

Deno.test("RequestLimiter.drain refuses waiting and later requests; running ones finish", async () => {
  const limiter = new RequestLimiter({ maxParallel: 1, maxQueued: 5 });
  const g = gate();
  const running = limiter.run("", 60_000, () => g.opened.then(() => "done"));
  const waiting = limiter.run("", 60_000, () => Promise.resolve("never"));
  limiter.drain();
  await assert.rejects(
    waiting,
    (err) => err instanceof LimiterRefusal && err.reason === "draining",
  );
  await assert.rejects(
    limiter.run("", 60_000, () => Promise.resolve("x")),
    (err) => err instanceof LimiterRefusal && err.reason === "draining",
  );
  let idle = false;
  const idled = limiter.idle().then(() => idle = true);
  await Promise.resolve();
  assert.equal(idle, false);
  g.open();
  assert.equal(await running, "done");
  await idled;
});

Deno.test("RequestLimiter releases the slot when the work throws", async () => {
  const limiter = new RequestLimiter({ maxParallel: 1, maxQueued: 0 });
  await assert.rejects(limiter.run("", 1000, () => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(await limiter.run("", 1000, () => Promise.resolve(1)), 1);
});
