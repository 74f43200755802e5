import assert from "node:assert/strict";
import type { KubeClient, PodEventOptions } from "../k8s/client.ts";
import type { Pod } from "../k8s/types.ts";
import { EventQueue } from "./event_queue.ts";

/** A client whose event posts wait until the test releases them. */
function heldClient() {
  const posted: string[] = [];
  const waiting: (() => void)[] = [];
  const client = {
    createEvent(_pod: Pod, event: PodEventOptions) {
      return new Promise((resolve, reject) => {
        waiting.push(() => {
          if (event.reason === "Refused") reject(new Error("403 Forbidden"));
          else {
            posted.push(event.message);
            resolve({});
          }
        });
      });
    },
  } as unknown as KubeClient;
  const releaseAll = async () => {
    while (waiting.length > 0) {
      waiting.shift()!();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  return { client, posted, waiting, releaseAll };
}

const pod: Pod = { metadata: { name: "web", namespace: "default", uid: "u1" } };
const event = (message: string, reason = "AddedInterface"): PodEventOptions => ({
  type: "Normal",
  reason,
  message,
});

Deno.test("EventQueue posts with a few senders, drops and counts beyond its capacity", async () => {
  const logged: string[] = [];
  const queue = new EventQueue({ capacity: 3, senders: 2, log: (m) => logged.push(m) });
  const held = heldClient();
  for (let i = 1; i <= 7; i++) queue.post(held.client, pod, event(`e${i}`));
  // Two are being posted, three wait, two were dropped.
  assert.equal(held.waiting.length, 2);
  assert.equal(queue.depth, 5);
  assert.equal(queue.dropped, 2);
  assert.match(logged[0], /"AddedInterface" of pod "default\/web" dropped: 3 events wait/);
  await held.releaseAll();
  assert.deepEqual(held.posted, ["e1", "e2", "e3", "e4", "e5"]);
  assert.equal(queue.sent, 5);
  assert.equal(queue.depth, 0);
});

Deno.test("EventQueue counts failures and goes on", async () => {
  const logged: string[] = [];
  const queue = new EventQueue({ senders: 1, log: (m) => logged.push(m) });
  const held = heldClient();
  queue.post(held.client, pod, event("no", "Refused"));
  queue.post(held.client, pod, event("yes"));
  await held.releaseAll();
  assert.deepEqual([queue.sent, queue.failed], [1, 1]);
  assert.match(logged.join("\n"), /event "no" not sent: 403 Forbidden/);
});

Deno.test("EventQueue.close() waits for queued events up to its deadline, then drops the rest", async () => {
  const queue = new EventQueue({ senders: 1 });
  const held = heldClient();
  queue.post(held.client, pod, event("a"));
  queue.post(held.client, pod, event("b"));
  const closing = queue.close(50);
  queue.post(held.client, pod, event("late"));
  assert.equal(queue.dropped, 1, "no new events once closing");
  assert.equal(await closing, 2, "neither was posted by the deadline");
  assert.equal(queue.dropped, 2, "the waiting one is dropped; the one in flight may still end");

  const done = new EventQueue({ senders: 2 });
  const quick = heldClient();
  done.post(quick.client, pod, event("c"));
  const closed = done.close(60_000);
  await quick.releaseAll();
  assert.equal(await closed, 0);
  assert.deepEqual(quick.posted, ["c"]);
});
