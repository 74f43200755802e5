import assert from "node:assert/strict";
import { recordDelegate, stopLeftDelegates } from "./running_delegates.ts";

function sleeper(): Deno.ChildProcess {
  // Its own process group, as the daemon's delegates run.
  return new Deno.Command("sleep", { args: ["30"], detached: true, stdin: "null" }).spawn();
}

Deno.test("stopLeftDelegates() kills the recorded delegates of a container, not others, and never a reused pid", async () => {
  const dir = await Deno.makeTempDir({ prefix: "running_delegates_test_" });
  const [mine, other, reused] = [sleeper(), sleeper(), sleeper()];
  try {
    recordDelegate(dir, "ctr-a", mine.pid);
    recordDelegate(dir, "ctr-b", other.pid);
    recordDelegate(dir, "ctr-a", reused.pid);
    // As if the pid had ended and been given to another process since it was recorded.
    await Deno.writeTextFile(`${dir}/delegates/ctr-a@${reused.pid}`, "1");

    assert.equal(await stopLeftDelegates(dir, "ctr-a"), 1);
    assert.equal((await mine.status).signal, "SIGKILL");
    assert.deepEqual([...Deno.readDirSync(`${dir}/delegates`)].map((e) => e.name), [
      `ctr-b@${other.pid}`,
    ]);
    assert.equal(await stopLeftDelegates(dir), 1, "all containers");
    assert.equal((await other.status).signal, "SIGKILL");
    assert.equal(await stopLeftDelegates(dir), 0);
  } finally {
    for (const child of [mine, other, reused]) {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended
      }
    }
    await reused.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a record is removed once its delegate ended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "running_delegates_test_" });
  const child = sleeper();
  try {
    const done = recordDelegate(dir, "ctr", child.pid);
    assert.equal([...Deno.readDirSync(`${dir}/delegates`)].length, 1);
    child.kill("SIGKILL");
    await child.status;
    done();
    assert.deepEqual([...Deno.readDirSync(`${dir}/delegates`)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
