import assert from "node:assert/strict";
import { lockSandbox } from "./sandbox_lock.ts";

Deno.test("lockSandbox() holds a container's lock until release, also across a removed lock file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-lock-test-" });
  try {
    const first = await lockSandbox("ctr-a", undefined, dir);
    const order: string[] = [];
    // Waits for the first; the first removes the file as it releases (its container is gone).
    const second = lockSandbox("ctr-a", undefined, dir).then((lock) => {
      order.push("second");
      return lock;
    });
    // Another container is not held up.
    const other = await lockSandbox("ctr-b", undefined, dir);
    order.push("other");
    await other.release({ remove: true });
    order.push("first released");
    await first.release({ remove: true });
    const held = await second;
    assert.deepEqual(order, ["other", "first released", "second"]);
    // The second got the file it waited on only after it was removed: it must hold the lock
    // of a file at the path (a new one), or a later locker would take another and not wait.
    const atPath = Deno.statSync(`${dir}/ctr-a`);
    const locks = await Deno.readTextFile("/proc/locks");
    assert.ok(
      locks.split("\n").some((line) => !line.includes("->") && line.includes(`:${atPath.ino} `)),
      "the lock held is the one of the file at the path",
    );
    await held.release({ remove: true });
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lockSandbox() never fails the request: an unusable directory or container id gives a no-op lock", async () => {
  const lock = await lockSandbox("ctr-a", undefined, "/proc/no-such-dir/locks");
  await lock.release({ remove: true });
  const bad = await lockSandbox("../escape", undefined, "/tmp");
  await bad.release({ remove: true });
});
