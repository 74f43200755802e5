/**
 * The daemon's bounds: at most maxParallelRequests run, at most maxQueuedRequests wait, each
 * for at most queueTimeoutSeconds; beyond that the shim gets CNI code 11 and nothing is
 * attached. Requests for one container run in arrival order.
 */

import assert from "node:assert/strict";
import { listFiles } from "../helpers/netns.ts";
import {
  containerId,
  hold,
  makeNode,
  metricValue,
  podNetns,
  type RunningDaemon,
  shimCall,
  startDaemon,
  stopDaemon,
  waitForStart,
} from "./_helpers.ts";

async function waitForWaiting(daemon: RunningDaemon, count: number): Promise<void> {
  for (;;) {
    const metrics = await daemon.metrics();
    if (metricValue(metrics, "multus_daemon_requests_waiting") === count) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

Deno.test("N+1 concurrent ADDs: the extra one waits, then gets code 11 at the queue deadline; a full queue refuses at once", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node, {
    maxParallelRequests: 2,
    maxQueuedRequests: 1,
    // Long enough for the fourth shim to start and be refused while the third still waits,
    // even on a loaded machine (with 1 s the third could time out first).
    queueTimeoutSeconds: 10,
  });
  try {
    const running = await Promise.all([0, 1].map(async () => {
      const pod = { ns: await podNetns(node), containerId: containerId() };
      return { pod, release: await hold(node, pod.containerId) };
    }));
    const inFlight = running.map(({ pod }) => shimCall(node, "ADD", pod));
    for (const [i, { pod }] of running.entries()) {
      await waitForStart(node, pod.containerId, inFlight[i]);
    }

    const queuedPod = { ns: await podNetns(node), containerId: containerId() };
    const queued = shimCall(node, "ADD", queuedPod);
    const first = await Promise.race([
      waitForWaiting(daemon, 1).then(() => "waiting"),
      queued.then(() => "answered"),
    ]);
    assert.equal(first, "waiting", "the third ADD waits for a slot");
    const refusedPod = { ns: await podNetns(node), containerId: containerId() };
    const refused = await shimCall(node, "ADD", refusedPod);
    assert.equal(refused.code, 1);
    assert.equal(refused.json!.code, 11);
    assert.match(
      String(refused.json!.msg),
      /busy: ADD of pod .* did not run because 2 requests are running and 1 waiting/,
    );

    const late = await queued;
    assert.equal(late.code, 1);
    assert.equal(late.json!.code, 11);
    assert.match(String(late.json!.msg), /busy: .* waited 10 s for one of the 2 request slots/);
    for (const pod of [queuedPod, refusedPod]) {
      assert.equal(await pod.ns.link("eth0"), undefined, "nothing attached");
      assert.equal(
        (await listFiles(node.root.cniDir)).some((f) => f.includes(pod.containerId)),
        false,
        "no cache entry",
      );
    }

    for (const { release } of running) await release();
    for (const [i, run] of (await Promise.all(inFlight)).entries()) {
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.equal((await running[i].pod.ns.ipv4("eth0")).length, 1);
    }
    const metrics = await daemon.metrics();
    assert.equal(
      metricValue(metrics, 'multus_daemon_requests_total{command="ADD",result="busy"}'),
      2,
    );
    assert.equal(
      metricValue(metrics, 'multus_daemon_requests_total{command="ADD",result="success"}'),
      2,
    );
    assert.equal(metricValue(metrics, "multus_daemon_requests_running"), 0);
    for (const { pod } of running) assert.equal((await shimCall(node, "DEL", pod)).code, 0);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("a DEL for a container whose ADD still runs waits for it, then releases what it attached", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const release = await hold(node, pod.containerId);
    const add = shimCall(node, "ADD", pod);
    await waitForStart(node, pod.containerId, add);
    const del = shimCall(node, "DEL", pod);
    const first = await Promise.race([
      waitForWaiting(daemon, 1).then(() => "waiting"),
      del.then(() => "deleted"),
    ]);
    assert.equal(first, "waiting", "the DEL waits while the ADD of its container runs");
    await release();
    assert.equal((await add).code, 0);
    const deleted = await del;
    assert.equal(deleted.code, 0, deleted.stdout + deleted.stderr);
    assert.equal(await pod.ns.link("eth0"), undefined, "the DEL ran after the ADD");
    assert.deepEqual(await listFiles(node.root.cniDir), []);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("an ADD running past requestTimeoutSeconds gets code 11; the runtime's DEL waits for it and releases it", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node, { requestTimeoutSeconds: 1 });
  try {
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const release = await hold(node, pod.containerId);
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 1);
    assert.equal(add.json!.code, 11);
    assert.match(String(add.json!.msg), /still running ADD of pod .* after 1 s/);
    const metrics = await daemon.metrics();
    assert.equal(
      metricValue(metrics, 'multus_daemon_requests_total{command="ADD",result="timeout"}'),
      1,
    );
    assert.equal(metricValue(metrics, "multus_daemon_requests_running"), 1, "the ADD goes on");

    const del = shimCall(node, "DEL", pod);
    const first = await Promise.race([
      waitForWaiting(daemon, 1).then(() => "waiting"),
      del.then(() => "deleted"),
    ]);
    assert.equal(first, "waiting");
    await release();
    const deleted = await del;
    assert.equal(deleted.code, 0, deleted.stdout + deleted.stderr);
    assert.equal(await pod.ns.link("eth0"), undefined, "what the late ADD attached is released");
    assert.deepEqual(await listFiles(node.root.cniDir), []);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});
