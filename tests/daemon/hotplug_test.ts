/**
 * Hot-plug in the daemon (`hotPlug: true`), outside in: a pod set up by the plugin (ADD in a
 * real netns, against the test API server), then its networks annotation edited in the API
 * server; the daemon attaches and detaches interfaces in the pod's netns and the
 * network-status follows. Also `POST /delegate` as multus-dynamic-networks-controller calls
 * it. Every wait polls the netns or the annotation with a deadline and fails with what it saw.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import type { K8sFixture } from "../helpers/k8s_fixture.ts";
import { listFiles } from "../helpers/netns.ts";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { exists } from "../../src/util/exists.ts";
import type { Pod } from "../../src/k8s/types.ts";
import {
  cniBody,
  fixtureNode,
  metricValue,
  type Node,
  podArgs,
  type RunningDaemon,
  shimConf,
  socketRequest,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const STATUS = "k8s.v1.cni.cncf.io/network-status";
const NODE = "node-hotplug";

let subnetCounter = 20 + Math.floor(Math.random() * 200);

interface Cluster extends K8sFixture {
  subnet: number;
  containerId: string;
  podUid: string;
  /** The daemon's view of the node (for the daemon helpers). */
  node: Node;
}

async function cluster(networks?: string): Promise<Cluster> {
  const subnet = subnetCounter++;
  const fx = await startK8sFixture({ clusterSubnet: `10.243.${subnet}` });
  const pod = fx.api.setPod({
    metadata: {
      name: "web",
      namespace: "default",
      annotations: networks === undefined ? {} : { [NETWORKS]: networks },
    },
    spec: { nodeName: NODE },
  } as Pod);
  let node: Node;
  try {
    node = await fixtureNode(fx, fx.multusConf({ logLevel: "verbose" }), fx.multusConf());
  } catch (err) {
    await fx.cleanup();
    throw err;
  }
  return {
    ...fx,
    subnet,
    containerId: `ctr-${uniqueSuffix()}${uniqueSuffix()}`,
    podUid: pod.metadata.uid!,
    node,
  };
}

/** A macvlan NAD on the fixture's veth with a static address `10.244.<subnet>.<octet>`. */
function nad(c: Cluster, name: string, octet: number, extra: Record<string, unknown> = {}) {
  c.api.setNad({
    metadata: { name, namespace: "default" },
    spec: {
      config: JSON.stringify({
        cniVersion: "1.0.0",
        type: "macvlan",
        master: c.veth.a,
        mode: "bridge",
        ipam: { type: "static", addresses: [{ address: `10.244.${c.subnet}.${octet}/24` }] },
        ...extra,
      }),
    },
  });
}

function ip(c: Cluster, octet: number): string {
  return `10.244.${c.subnet}.${octet}/24`;
}

/** The test's pod "default/web" in its sandbox. */
function podOf(c: Cluster) {
  return { namespace: "default", name: "web", uid: c.podUid, containerId: c.containerId };
}

/** The runtime's ADD or DEL of the pod's sandbox (the thin plugin, as the shim's fallback). */
function runtime(c: Cluster, command: "ADD" | "DEL") {
  return c.root.run({
    command,
    containerId: c.containerId,
    netns: c.ns.path,
    ifName: "eth0",
    args: podArgs(podOf(c)),
    config: c.multusConf(),
  });
}

function startHotplugDaemon(c: Cluster, extra: Record<string, unknown> = {}) {
  return startDaemon(c.node, { hotPlug: true, ...extra }, {
    env: { MULTUS_NODE_NAME: NODE },
  });
}

function editNetworks(c: Cluster, networks: string | undefined) {
  const pod = c.api.getPod("default", "web")!;
  const annotations = { ...pod.metadata.annotations };
  if (networks === undefined) delete annotations[NETWORKS];
  else annotations[NETWORKS] = networks;
  c.api.setPod({ ...pod, metadata: { ...pod.metadata, annotations } });
}

function status(c: Cluster): { name: string; interface?: string; ips?: string[] }[] {
  const value = c.api.getPod("default", "web")?.metadata.annotations?.[STATUS];
  return value === undefined ? [] : JSON.parse(value);
}

/** `name@interface` of each network-status entry. */
function statusNames(c: Cluster): string[] {
  return status(c).map((s) => `${s.name}@${s.interface}`);
}

/** Interfaces in the pod's netns with their IPv4 addresses: `net1=10.244.7.2/24`. */
async function interfaces(c: Cluster): Promise<string[]> {
  const links = await c.ns.links();
  return links.filter((l) => l.ifname !== "lo").map((l) =>
    `${l.ifname}=${
      (l.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`)
        .join(",")
    }`
  ).sort();
}

/** The scratch cache's interface names, in order. */
async function cachedInterfaces(c: Cluster): Promise<string[]> {
  try {
    const entries = JSON.parse(await Deno.readTextFile(join(c.root.cniDir, c.containerId)));
    return entries.map((e: { ifName: string }) => e.ifName);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

function events(c: Cluster, reason: string): string[] {
  return c.api.events().filter((e) => e.reason === reason).map((e) => String(e.message));
}

/**
 * Polls `probe` until `done` holds for what it returns, at most `ms`; fails with the last
 * value seen and the daemon's log tail.
 */
async function waitFor<T>(
  c: Cluster,
  what: string,
  probe: () => Promise<T> | T,
  done: (seen: T) => boolean,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  let seen = await probe();
  while (!done(seen)) {
    if (Date.now() > end) {
      const log = await Deno.readTextFile(c.root.logFile).catch(() => "");
      assert.fail(
        `${what}: not after ${ms / 1000} s; last seen ${JSON.stringify(seen)}\nlog tail:\n${
          log.split("\n").slice(-25).join("\n")
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    seen = await probe();
  }
  return seen;
}

/** Waits until the pod's interfaces (`name=address`) satisfy `done`. */
function untilInterfaces(c: Cluster, what: string, done: (seen: string[]) => boolean) {
  return waitFor(c, what, () => interfaces(c), done);
}

/** Waits until the network-status names (`network@interface`) satisfy `done`. */
function untilStatus(c: Cluster, what: string, done: (seen: string[]) => boolean) {
  return waitFor(c, what, () => statusNames(c), done);
}

/** Waits until the messages of the pod's `reason` events satisfy `done`. */
function untilEvent(
  c: Cluster,
  what: string,
  reason: string,
  done: (seen: string[]) => boolean,
) {
  return waitFor(c, what, () => events(c, reason), done);
}

/** NADs blue (`.2`) and green (`.3`), and the pod's sandbox added by the runtime (on blue). */
async function podOnBlue(c: Cluster): Promise<void> {
  nad(c, "blue", 2);
  nad(c, "green", 3);
  await runtimeAdd(c);
}

/** The runtime's ADD of the pod's sandbox, which must succeed. */
async function runtimeAdd(c: Cluster): Promise<void> {
  const add = await runtime(c, "ADD");
  assert.equal(add.code, 0, add.stdout + add.stderr);
}

async function finish(c: Cluster, daemon: RunningDaemon | undefined) {
  if (daemon) await stopDaemon(daemon);
  await c.cleanup();
}

Deno.test("hot-plug: a running pod gets net2 when its annotation gains a network and loses it when it is removed; network-status, events and metrics follow", async () => {
  const c = await cluster("blue");
  let daemon: RunningDaemon | undefined;
  try {
    await podOnBlue(c);
    daemon = await startHotplugDaemon(c);
    const eth0 = (await interfaces(c)).find((i) => i.startsWith("eth0="))!;
    assert.deepEqual(await interfaces(c), [eth0, `net1=${ip(c, 2)}`].sort());

    editNetworks(c, "blue,green");
    await untilInterfaces(
      c,
      "net2 up with green's address",
      (seen) => seen.includes(`net2=${ip(c, 3)}`),
    );
    await untilStatus(
      c,
      "network-status lists net2",
      (seen) => seen.includes("default/green@net2"),
    );
    assert.deepEqual(statusNames(c), [
      "cluster-bridge@eth0",
      "default/blue@net1",
      "default/green@net2",
    ]);
    assert.deepEqual(status(c)[2].ips, [`10.244.${c.subnet}.3`]);
    assert.deepEqual(await cachedInterfaces(c), ["eth0", "net1", "net2"]);
    await untilEvent(
      c,
      "an AddedInterface event",
      "AddedInterface",
      (seen) => seen.some((m) => m.includes("net2") && m.includes("default/green")),
    );

    editNetworks(c, "green");
    await untilInterfaces(c, "net1 gone", (seen) => !seen.some((i) => i.startsWith("net1=")));
    await untilStatus(
      c,
      "network-status without blue",
      (seen) => !seen.includes("default/blue@net1"),
    );
    assert.deepEqual(await interfaces(c), [eth0, `net2=${ip(c, 3)}`].sort());
    assert.deepEqual(statusNames(c), ["cluster-bridge@eth0", "default/green@net2"]);
    assert.deepEqual(await cachedInterfaces(c), ["eth0", "net2"]);
    await untilEvent(
      c,
      "a RemovedInterface event",
      "RemovedInterface",
      (seen) => seen.some((m) => m.includes("net1") && m.includes("default/blue")),
    );

    // A network added again takes the first free name.
    editNetworks(c, "green,blue");
    await untilInterfaces(c, "blue back as net1", (seen) => seen.includes(`net1=${ip(c, 2)}`));
    const running = daemon;
    const metrics = await waitFor(
      c,
      "the metrics count 2 attaches",
      () => running.metrics(),
      (m) => metricValue(m, "multus_hotplug_attaches_total") === 2,
    );
    assert.equal(metricValue(metrics, "multus_hotplug_detaches_total"), 1, metrics);
    assert.ok(metrics.includes("multus_hotplug_queue_depth "), metrics);

    // The runtime's DEL releases the hot-plugged networks too.
    const del = await runtime(c, "DEL");
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await interfaces(c), []);
    assert.deepEqual(await listFiles(c.root.cniDir), []);
  } finally {
    await finish(c, daemon);
  }
});

Deno.test("hot-plug: a change whose network fails is rolled back whole, reported, retried, and done once the network is fixed", async () => {
  const c = await cluster("blue");
  let daemon: RunningDaemon | undefined;
  try {
    nad(c, "blue", 2);
    nad(c, "green", 3);
    // A macvlan on a master that does not exist: its ADD fails.
    nad(c, "broken", 4, { master: "mt-missing0" });
    await runtimeAdd(c);
    daemon = await startHotplugDaemon(c);

    editNetworks(c, "blue,green,broken");
    await untilEvent(
      c,
      "a HotPlugFailed event naming broken",
      "HotPlugFailed",
      (seen) => seen.some((m) => m.includes("default/broken")),
    );
    // green (attached first in the same change) was rolled back with it.
    assert.deepEqual((await interfaces(c)).map((i) => i.split("=")[0]), ["eth0", "net1"]);
    assert.deepEqual(await cachedInterfaces(c), ["eth0", "net1"]);
    assert.deepEqual(statusNames(c), ["cluster-bridge@eth0", "default/blue@net1"]);
    const failed = events(c, "HotPlugFailed").find((m) => m.includes("default/broken"))!;
    assert.match(failed, /rolled back/);
    // Retried: a second failure is reported too.
    await waitFor(c, "a retry", () => events(c, "HotPlugFailed").length, (n) => n >= 2);
    assert.ok(metricValue(await daemon.metrics(), "multus_hotplug_failures_total") >= 2);

    nad(c, "broken", 4);
    await untilInterfaces(
      c,
      "green and the fixed network up",
      (seen) => seen.includes(`net2=${ip(c, 3)}`) && seen.includes(`net3=${ip(c, 4)}`),
    );
    await untilStatus(
      c,
      "network-status lists both",
      (seen) => seen.includes("default/green@net2") && seen.includes("default/broken@net3"),
    );
  } finally {
    await finish(c, daemon);
  }
});

Deno.test("hot-plug: a change made while the daemon is down is applied when it starts", async () => {
  const c = await cluster("blue");
  let daemon: RunningDaemon | undefined;
  try {
    await podOnBlue(c);
    daemon = await startHotplugDaemon(c);
    await stopDaemon(daemon);
    daemon = undefined;

    editNetworks(c, "green");
    // Nothing acts while the daemon is down.
    assert.deepEqual((await interfaces(c)).map((i) => i.split("=")[0]), ["eth0", "net1"]);

    daemon = await startHotplugDaemon(c);
    await untilInterfaces(
      c,
      "blue gone and green up", // blue's net1 is detached first, so green takes the first free name.
      (seen) => !seen.includes(`net1=${ip(c, 2)}`) && seen.includes(`net1=${ip(c, 3)}`),
    );
    await untilStatus(
      c,
      "network-status follows",
      (seen) => seen.join() === ["cluster-bridge@eth0", "default/green@net1"].join(),
    );
  } finally {
    await finish(c, daemon);
  }
});

Deno.test("hot-plug: a changed element (same network, other interface name) is detached and attached again", async () => {
  const c = await cluster("blue");
  let daemon: RunningDaemon | undefined;
  try {
    nad(c, "blue", 2);
    await runtimeAdd(c);
    daemon = await startHotplugDaemon(c);

    editNetworks(c, '[{"name": "blue", "interface": "data0"}]');
    await untilInterfaces(
      c,
      "blue moved to data0",
      (seen) => seen.includes(`data0=${ip(c, 2)}`) && !seen.some((i) => i.startsWith("net1=")),
    );
    await untilStatus(
      c,
      "network-status follows",
      (seen) => seen.join() === ["cluster-bridge@eth0", "default/blue@data0"].join(),
    );
    assert.deepEqual(await cachedInterfaces(c), ["eth0", "data0"]);
    // The events are posted after the status write.
    await untilEvent(c, "a RemovedInterface event for net1", "RemovedInterface", (
      seen,
    ) => seen.some((m) => m.includes("net1")));
    await untilEvent(c, "an AddedInterface event for data0", "AddedInterface", (
      seen,
    ) => seen.some((m) => m.includes("data0")));
  } finally {
    await finish(c, daemon);
  }
});

/**
 * A macvlan whose ADD says it started (`<gate>/started-<ifname>`) and then waits while
 * `<gate>/hold` exists; returns the gate directory.
 */
async function slowMacvlan(c: Cluster): Promise<string> {
  const gate = join(c.root.dir, "gate");
  await Deno.mkdir(gate);
  const script = join(c.root.binDir, "slow-macvlan");
  await Deno.writeTextFile(
    script,
    `#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
  : > "${gate}/started-$CNI_IFNAME"
  while [ -e "${gate}/hold" ]; do sleep 0.05; done
fi
exec /usr/lib/cni/macvlan "$@"
`,
  );
  await Deno.chmod(script, 0o755);
  return gate;
}

/** The runtime's call through `multus-shim`, which hands it to the daemon. */
function viaShim(c: Cluster, command: "ADD" | "DEL") {
  return c.root.run({
    command,
    containerId: c.containerId,
    netns: c.ns.path,
    ifName: "eth0",
    args: podArgs(podOf(c)),
    config: shimConf(c.node, { cniVersion: "1.0.0" }),
  });
}

for (const via of ["the thin plugin", "the shim and the daemon"] as const) {
  Deno.test(`hot-plug: the runtime's DEL (through ${via}) arriving while a hot-plug attaches waits for it, then releases everything`, async () => {
    const c = await cluster("blue");
    let daemon: RunningDaemon | undefined;
    try {
      nad(c, "blue", 2);
      nad(c, "green", 3, { type: "slow-macvlan" });
      const gate = await slowMacvlan(c);
      await runtimeAdd(c);
      daemon = await startHotplugDaemon(c);
      const running = daemon;

      await Deno.writeTextFile(join(gate, "hold"), "");
      editNetworks(c, "blue,green");
      await waitFor(
        c,
        "green's ADD started",
        () => exists(join(gate, "started-net2")),
        Boolean,
      );
      // The runtime deletes the pod while the hot-plug is in the middle of attaching green.
      const del = via === "the thin plugin" ? runtime(c, "DEL") : viaShim(c, "DEL");
      let delEnded = false;
      del.then(() => delEnded = true);
      // Released once the DEL waits for the sandbox (the kernel lists a process waiting for
      // its lock file; the daemon counts a request waiting for the container's turn), or once
      // it ended, which it must not have while green's ADD is held.
      const lockFile = await Deno.stat(join("/run/multus/locks", c.containerId)).catch(() =>
        undefined
      );
      const waiting = async () =>
        lockFile !== undefined &&
          (await Deno.readTextFile("/proc/locks")).split("\n").some((line) =>
            line.includes("->") && line.includes(`:${lockFile.ino} `)
          ) ||
        metricValue(await running.metrics(), "multus_daemon_requests_waiting") > 0;
      await waitFor(
        c,
        "the DEL waiting for the sandbox or ended",
        async () => delEnded || await waiting(),
        Boolean,
      );
      assert.equal(delEnded, false, "the runtime's DEL ended while the hot-plug held the sandbox");
      await Deno.remove(join(gate, "hold"));
      const deleted = await del;
      assert.equal(deleted.code, 0, deleted.stdout + deleted.stderr);
      if (via !== "the thin plugin") {
        const m = await running.metrics();
        assert.equal(
          metricValue(m, 'multus_daemon_requests_total{command="DEL",result="success"}'),
          1,
          "the DEL ran in the daemon",
        );
      }
      assert.deepEqual(await interfaces(c), [], "interfaces left in the pod's netns");
      assert.deepEqual(await listFiles(c.root.cniDir), [], "files left in the cache dir");
    } finally {
      await finish(c, daemon);
    }
  });
}

Deno.test("hot-plug off (the default): an edited annotation the daemon sees changes nothing", async () => {
  const c = await cluster("blue");
  let daemon: RunningDaemon | undefined;
  try {
    await podOnBlue(c);
    daemon = await startDaemon(c.node, {}, { env: { MULTUS_NODE_NAME: NODE } });
    const running = daemon;
    const podEvents = (m: string) =>
      metricValue(m, 'multus_daemon_cache_events_total{resource="pods"}');
    const synced = await waitFor(
      c,
      "the daemon's pod cache listed",
      () => running.metrics(),
      (m) => metricValue(m, 'multus_daemon_cache_synced{resource="pods"}') === 1,
    );
    const before = await interfaces(c);
    const statusBefore = statusNames(c);

    editNetworks(c, "green");
    await waitFor(
      c,
      "the daemon saw the edit",
      () => running.metrics(),
      (m) => podEvents(m) > podEvents(synced),
    );
    // SIGTERM lets whatever the daemon started finish: a pass would have ended by now.
    await stopDaemon(daemon);
    daemon = undefined;
    assert.deepEqual(await interfaces(c), before);
    assert.deepEqual(statusNames(c), statusBefore);

    // The witness: the same edit is one hot-plug acts on.
    daemon = await startHotplugDaemon(c);
    await untilInterfaces(
      c,
      "the witness: hot-plug on acts",
      (seen) => seen.includes(`net1=${ip(c, 3)}`),
    );
  } finally {
    await finish(c, daemon);
  }
});

Deno.test("POST /delegate adds and deletes one network as multus-dynamic-networks-controller asks; the runtime's DEL releases what it added", async () => {
  const c = await cluster();
  let daemon: RunningDaemon | undefined;
  try {
    await runtimeAdd(c);
    daemon = await startDaemon(c.node, {}, { env: { MULTUS_NODE_NAME: NODE } });
    const env = (command: string, ifName: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: c.containerId,
      CNI_NETNS: c.ns.path,
      CNI_IFNAME: ifName,
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=${c.podUid}`,
    });
    const config = {
      cniVersion: "1.0.0",
      name: "dyn",
      type: "macvlan",
      master: c.veth.a,
      mode: "bridge",
      capabilities: { ips: true },
      ipam: { type: "static" },
    };
    const added = await socketRequest(c.node.socketPath, "POST", "/delegate", {
      ...cniBody(env("ADD", "dyn1"), config),
      interfaceAttributes: { ips: [ip(c, 9)] },
    });
    assert.equal(added.status, 200, added.text);
    const result = JSON.parse(added.text).Result;
    assert.equal(result.cniVersion, "1.0.0");
    assert.deepEqual(result.ips.map((i: { address: string }) => i.address), [ip(c, 9)]);
    assert.ok((await interfaces(c)).includes(`dyn1=${ip(c, 9)}`));
    assert.deepEqual(await cachedInterfaces(c), ["eth0", "dyn1"]);

    // The default network is not the controller's to remove.
    const refused = await socketRequest(c.node.socketPath, "POST", "/delegate", {
      ...cniBody(env("DEL", "eth0"), config),
    });
    assert.equal(refused.status, 400, refused.text);
    assert.match(JSON.parse(refused.text).msg, /default network/);

    const deleted = await socketRequest(c.node.socketPath, "POST", "/delegate", {
      ...cniBody(env("DEL", "dyn1"), config),
    });
    assert.equal(deleted.status, 200, deleted.text);
    assert.ok(!(await interfaces(c)).some((i) => i.startsWith("dyn1=")));
    assert.deepEqual(await cachedInterfaces(c), ["eth0"]);

    // Added again, then the pod goes: the runtime's DEL releases it.
    const again = await socketRequest(c.node.socketPath, "POST", "/delegate", {
      ...cniBody(env("ADD", "dyn1"), config),
      interfaceAttributes: { ips: [ip(c, 9)] },
    });
    assert.equal(again.status, 200, again.text);
    const del = await runtime(c, "DEL");
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await interfaces(c), []);
    assert.deepEqual(await listFiles(c.root.cniDir), []);

    const bad = await socketRequest(c.node.socketPath, "POST", "/delegate", {
      env: { CNI_COMMAND: "ADD" },
    });
    assert.equal(bad.status, 400, bad.text);
    assert.ok(JSON.parse(bad.text).msg, bad.text);
  } finally {
    await finish(c, daemon);
  }
});
