/**
 * The daemon SIGKILLed in the middle of a burst of 20 ADDs through the shim: every ADD either
 * succeeded (interface and lease there, the result printed) or failed cleanly (CNI error JSON,
 * non-zero exit, nothing attached: no interface but lo, no lease, no cache file), including the
 * ADDs whose delegates were running when the daemon died; then DEL of every pod through the
 * shim (half with the daemon still dead, half through a restarted daemon) releases everything.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { listFiles, type TestNetns } from "../helpers/netns.ts";
import { startPlugin, SYSTEM_CNI_DIR } from "../helpers/plugin_run.ts";
import {
  containerId,
  hold,
  makeNode,
  type Node,
  podNetns,
  shimCall,
  shimConf,
  startDaemon,
  stopDaemon,
  waitForStart,
} from "./_helpers.ts";

const PODS = 20;
const HELD = 10;

/**
 * A node whose delegate is the real bridge behind a script that holds an flock on
 * `alive-<command>-<container>` for as long as it or anything it started runs (the lock is
 * inherited), and whose ADD waits while the test holds it.
 */
async function crashNode(): Promise<Node> {
  const node = await makeNode();
  const script = join(node.root.binDir, "slow-bridge");
  await Deno.writeTextFile(
    script,
    `#!/bin/sh
exec 9>"${node.gateDir}/alive-$CNI_COMMAND-$CNI_CONTAINERID"
flock 9
if [ "$CNI_COMMAND" = ADD ]; then
  : > "${node.gateDir}/started-$CNI_CONTAINERID"
  while [ -e "${node.gateDir}/hold-$CNI_CONTAINERID" ]; do sleep 0.05; done
fi
exec /usr/lib/cni/bridge "$@"
`,
  );
  return node;
}

/** Waits until no process of the delegate's ADD for `id` runs any more (if one ever ran). */
async function delegateGone(node: Node, id: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(node.gateDir, `alive-ADD-${id}`), { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  try {
    await file.lock(true);
  } finally {
    file.close();
  }
}

/** The containers host-local holds a lease for. */
async function leaseOwners(node: Node): Promise<string[]> {
  const owners: string[] = [];
  for (const file of await listFiles(node.leaseDir)) {
    if (!/\d+\.\d+\.\d+\.\d+$/.test(file)) continue;
    owners.push((await Deno.readTextFile(join(node.leaseDir, file))).split(/\s/)[0]);
  }
  return owners;
}

async function linkNames(ns: TestNetns): Promise<string[]> {
  return (await ns.links()).map((l) => l.ifname).sort();
}

Deno.test("daemon SIGKILLed during a burst of 20 ADDs: each pod attached or cleanly failed, and DEL through the shim releases everything", async () => {
  const node = await crashNode();
  let daemon = await startDaemon(node, {}, { metrics: false });
  const pods: { ns: TestNetns; containerId: string; name: string }[] = [];
  try {
    for (let i = 0; i < PODS; i++) {
      pods.push({ ns: await podNetns(node), containerId: containerId(), name: `burst-${i}` });
    }
    const releases = await Promise.all(pods.slice(0, HELD).map((p) => hold(node, p.containerId)));
    const adds = pods.map((p) => shimCall(node, "ADD", p));
    // Killed while the held ADDs' delegates run and the others are anywhere in between.
    await Promise.all(
      pods.slice(0, HELD).map((p, i) => waitForStart(node, p.containerId, adds[i])),
    );
    daemon.kill("SIGKILL");
    await daemon.exited;
    const results = await Promise.all(adds);
    // A delegate that outlived the daemon would go on now.
    for (const release of releases) await release();
    for (const p of pods) await delegateGone(node, p.containerId);

    const owners = await leaseOwners(node);
    const caches = await listFiles(node.root.cniDir);
    for (const [i, p] of pods.entries()) {
      const run = results[i];
      const what = `${p.name}: ${run.stdout}${run.stderr}`;
      if (run.code === 0) {
        assert.equal(run.json?.cniVersion, "0.4.0", what);
        assert.ok(Array.isArray(run.json?.interfaces), what);
        assert.equal((await p.ns.ipv4("eth0")).length, 1, what);
        assert.ok(owners.includes(p.containerId), `${what}: its lease`);
        continue;
      }
      assert.notEqual(run.json, undefined, `${what}: a CNI error JSON`);
      assert.equal(typeof run.json!.code, "number", what);
      assert.equal(typeof run.json!.msg, "string", what);
      assert.deepEqual(await linkNames(p.ns), ["lo"], `${what}: nothing attached`);
      assert.ok(!owners.includes(p.containerId), `${what}: no lease left`);
      assert.deepEqual(caches.filter((f) => f.includes(p.containerId)), [], `${what}: no cache`);
    }
    for (const run of results.slice(0, HELD)) {
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.equal(run.json?.code, 11, run.stdout);
      assert.match(String(run.json?.msg), /took ADD of pod .* but its connection broke/);
      assert.match(String(run.json?.details), /released here/);
    }

    // The runtime's DEL for every pod: half while the daemon is still dead (the shim runs
    // them), half through a restarted daemon.
    for (const p of pods.slice(0, PODS / 2)) {
      const del = await shimCall(node, "DEL", p);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.match(del.stderr, /did not run DEL/, "run by the shim");
    }
    daemon = await startDaemon(node, {}, { metrics: false });
    for (const p of pods.slice(PODS / 2)) {
      const del = await shimCall(node, "DEL", p);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.doesNotMatch(del.stderr, /did not run DEL/, "run by the daemon");
    }
    assert.deepEqual(await leaseOwners(node), [], "no lease left");
    assert.deepEqual(await listFiles(node.root.cniDir), [], "no scratch or result cache left");
    for (const p of pods) assert.deepEqual(await linkNames(p.ns), ["lo"], p.name);
    const end = await stopDaemon(daemon);
    assert.equal(end.code, 0, end.stderr);
  } finally {
    daemon.kill("SIGKILL");
    await node.cleanup();
  }
});

Deno.test("a daemon started after a killed one stops the delegates it left running", async () => {
  const node = await crashNode();
  let daemon = await startDaemon(node, {}, { metrics: false });
  try {
    const pod = { ns: await podNetns(node), containerId: containerId(), name: "left" };
    const release = await hold(node, pod.containerId);
    // The shim is killed too, so nobody stops the delegate when the daemon's connection breaks.
    const shim = startPlugin(join(node.root.binDir, "multus-shim"), {
      command: "ADD",
      containerId: pod.containerId,
      netns: pod.ns.path,
      ifName: "eth0",
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
      path: [node.root.binDir, SYSTEM_CNI_DIR],
      config: shimConf(node),
    });
    await waitForStart(node, pod.containerId, shim.done);
    shim.kill("SIGKILL");
    await shim.done;
    daemon.kill("SIGKILL");
    await daemon.exited;
    const records = await listFiles(join(node.socketDir, "delegates"));
    assert.deepEqual(records.map((r) => r.replace(/@\d+$/, "")), [pod.containerId]);

    daemon = await startDaemon(node, {}, { metrics: false });
    await delegateGone(node, pod.containerId);
    assert.deepEqual(await listFiles(join(node.socketDir, "delegates")), []);
    await release();
    assert.deepEqual(await linkNames(pod.ns), ["lo"], "the delegate never went on");
    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await leaseOwners(node), []);
    assert.deepEqual(await listFiles(node.root.cniDir), []);
    const end = await stopDaemon(daemon);
    assert.match(end.stderr, /stopped 1 delegate process\(es\) a previous daemon left running/);
  } finally {
    daemon.kill("SIGKILL");
    await node.cleanup();
  }
});
