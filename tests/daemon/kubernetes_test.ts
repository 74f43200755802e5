/**
 * End-to-end tests of the daemon in Kubernetes mode: requests come through the shim (the
 * launcher installed as `multus-shim`), the daemon reads the node's pods and the
 * NetworkAttachmentDefinitions from its watch caches of the test API server (TLS), attaches
 * the networks with the reference plugins in real network namespaces, and writes the
 * network-status annotation. The API server's request log shows what each ADD asked.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { listFiles, TestNetns } from "../helpers/netns.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import type { KubeconfigAuth, RequestRecord } from "../k8s_api/server.ts";
import {
  type FixtureDaemon,
  linkNames,
  metricValue,
  newSandbox,
  podArgs,
  shimConf,
  startFixtureDaemon,
  untilMetrics,
} from "./_helpers.ts";

const STATUS = "k8s.v1.cni.cncf.io/network-status";
const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const NODE_NAME = "node-kube-1";

let subnetCounter = 20 + Math.floor(Math.random() * 200);

/** A node in Kubernetes mode with its daemon up, the cluster network a bridge. */
interface KubeNode extends FixtureDaemon {
  subnet: number;
}

async function kubeNode(options: { auth?: KubeconfigAuth } = {}): Promise<KubeNode> {
  const subnet = subnetCounter++;
  const f = await startK8sFixture({ clusterSubnet: `10.241.${subnet}`, auth: options.auth });
  const d = await startFixtureDaemon(
    f,
    NODE_NAME,
    f.multusConf({ logLevel: "verbose" }),
    f.multusConf(),
  );
  return { ...d, subnet };
}

/** A pod on the node (its UID from the server), with a fresh network namespace. */
async function addPod(
  k: KubeNode,
  name: string,
  annotations: Record<string, string> = {},
): Promise<{ name: string; uid: string; ns: TestNetns; containerId: string }> {
  const pod = k.f.api.setPod({
    metadata: { name, namespace: "default", annotations },
    spec: { nodeName: NODE_NAME },
  });
  return { name, uid: pod.metadata.uid!, ...await newSandbox(k) };
}

function shim(
  k: KubeNode,
  command: string,
  pod: { name: string; uid: string; ns: TestNetns; containerId: string },
) {
  return k.f.root.run({
    command,
    containerId: pod.containerId,
    netns: pod.ns.path,
    args: podArgs({ namespace: "default", ...pod }),
    config: shimConf(k.node),
  });
}

/** A macvlan NAD on the fixture's veth with a static address `10.242.<subnet>.<octet>`. */
function macvlanNad(k: KubeNode, name: string, octet: number): void {
  k.f.macvlanNad(name, {
    ipam: { type: "static", addresses: [{ address: `10.242.${k.subnet}.${octet}/24` }] },
  });
}

const cached = (resource: string) => `multus_daemon_cache_objects{resource="${resource}"}`;
const events = (resource: string) => `multus_daemon_cache_events_total{resource="${resource}"}`;

/** Waits until the pod cache holds `pods` pods and the NAD cache `nads` NADs. */
function untilCached(k: KubeNode, counts: { pods: number; nads: number }): Promise<string> {
  return untilMetrics(k.daemon, (text) =>
    metricValue(text, cached("pods")) === counts.pods &&
    metricValue(text, cached("network-attachment-definitions")) === counts.nads);
}

/**
 * The requests of the log on a request's path: not the caches' lists and watches, not the
 * events posted from the daemon's queue.
 */
function pathRequests(log: RequestRecord[]): string[] {
  return log
    .filter((r) => r.verb !== "watch" && r.verb !== "list" && !r.path.endsWith("/events"))
    .map((r) => `${r.method} ${r.path}`);
}

function statusOf(k: KubeNode, name: string) {
  const value = k.f.api.getPod("default", name)?.metadata.annotations?.[STATUS];
  return value === undefined ? undefined : JSON.parse(value) as Record<string, unknown>[];
}

Deno.test("daemon, Kubernetes mode: a cached ADD asks the API server only for the status write", async () => {
  const k = await kubeNode();
  try {
    macvlanNad(k, "mv-a", 10);
    const pod = await addPod(k, `web-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 1, nads: 1 });

    k.f.api.clearRequests();
    const add = await shim(k, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await linkNames(pod.ns), ["eth0", "lo", "net1"]);
    assert.deepEqual(await pod.ns.ipv4("eth0"), [`10.241.${k.subnet}.2/24`]);
    assert.deepEqual(await pod.ns.ipv4("net1"), [`10.242.${k.subnet}.10/24`]);
    assert.deepEqual((statusOf(k, pod.name))!.map((s) => [s.name, s.interface, s.ips]), [
      ["cluster-bridge", "eth0", [`10.241.${k.subnet}.2`]],
      ["default/mv-a", "net1", [`10.242.${k.subnet}.10`]],
    ]);
    const log = k.f.api.requests();
    assert.deepEqual(pathRequests(log), [
      `PATCH /api/v1/namespaces/default/pods/${pod.name}/status`,
    ], "no pod GET, no NAD GET: only the status write");
    const patch = log.find((r) => r.method === "PATCH")!;
    assert.equal(patch.httpVersion, "2.0", "over the shared HTTP/2 connection");
    assert.equal(
      (patch.body as { metadata: { uid: string } }).metadata.uid,
      pod.uid,
      "the write is guarded by the pod's UID",
    );

    // Events leave the request's path: they arrive, from the daemon's queue.
    for (;;) {
      const added = k.f.api.events().filter((e) => e.reason === "AddedInterface");
      if (added.length === 2) {
        assert.deepEqual(added.map((e) => e.message).sort(), [
          `Add eth0 [10.241.${k.subnet}.2/24] from cluster-bridge`,
          `Add net1 [10.242.${k.subnet}.10/24] from default/mv-a`,
        ]);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const metrics = await untilMetrics(
      k.daemon,
      (text) =>
        metricValue(text, 'multus_daemon_events_total{result="sent"}') === 2 &&
        metricValue(text, "multus_daemon_event_queue_depth") === 0,
    );
    assert.equal(
      metricValue(
        metrics,
        'multus_daemon_api_requests_total{verb="patch",resource="pods/status",result="ok"}',
      ),
      1,
    );
    assert.equal(
      metricValue(
        metrics,
        'multus_daemon_api_requests_total{verb="get",resource="pods",result="ok"}',
      ),
      0,
    );
    assert.equal(
      metricValue(metrics, 'multus_daemon_requests_total{command="ADD",result="success"}'),
      1,
    );

    for (const plugin of ["bridge", "macvlan"]) {
      const series =
        `multus_daemon_delegate_duration_seconds_count{plugin="${plugin}",command="ADD",result="success"}`;
      assert.equal(metricValue(metrics, series), 1, series);
    }

    const del = await shim(k, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await linkNames(pod.ns), ["lo"]);
    assert.deepEqual(await listFiles(k.f.root.cniDir), []);
  } finally {
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: a pod the cache has not seen yet, or has with another UID, costs one GET", async () => {
  const k = await kubeNode();
  try {
    macvlanNad(k, "mv-a", 11);
    await untilCached(k, { pods: 0, nads: 1 });
    // The watch is late: the pod is on the server, not in the cache.
    k.f.api.setWatchLatency(60_000);
    const fresh = await addPod(k, `fresh-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    k.f.api.clearRequests();
    const add = await shim(k, "ADD", fresh);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await fresh.ns.ipv4("net1"), [`10.242.${k.subnet}.11/24`]);
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      `GET /api/v1/namespaces/default/pods/${fresh.name}`,
      `PATCH /api/v1/namespaces/default/pods/${fresh.name}/status`,
    ]);
    assert.equal((statusOf(k, fresh.name))!.length, 2);
    assert.equal((await shim(k, "DEL", fresh)).code, 0);

    // A pod replaced by one of the same name: the cache still has the old UID.
    k.f.api.setWatchLatency(0);
    k.f.api.dropWatches("end");
    const old = await addPod(k, `again-${uniqueSuffix()}`);
    await untilMetrics(k.daemon, (text) => metricValue(text, cached("pods")) === 2);
    k.f.api.setWatchLatency(60_000);
    k.f.api.deletePod("default", old.name);
    const replaced = await addPod(k, old.name, { [NETWORKS]: "mv-a" });
    assert.notEqual(replaced.uid, old.uid);
    k.f.api.clearRequests();
    const again = await shim(k, "ADD", replaced);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.deepEqual(await linkNames(replaced.ns), ["eth0", "lo", "net1"]);
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      `GET /api/v1/namespaces/default/pods/${old.name}`,
      `PATCH /api/v1/namespaces/default/pods/${old.name}/status`,
    ]);
    assert.equal((await shim(k, "DEL", replaced)).code, 0);
  } finally {
    k.f.api.setWatchLatency(0);
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: a NAD changed or created just now is what the next ADD uses", async () => {
  const k = await kubeNode();
  try {
    macvlanNad(k, "mv-a", 12);
    const first = await addPod(k, `first-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 1, nads: 1 });
    const add = await shim(k, "ADD", first);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await first.ns.ipv4("net1"), [`10.242.${k.subnet}.12/24`]);

    const nadEvents = metricValue(
      await k.daemon.metrics(),
      events("network-attachment-definitions"),
    );
    macvlanNad(k, "mv-a", 13);
    const second = await addPod(k, `second-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilMetrics(
      k.daemon,
      (text) =>
        metricValue(text, events("network-attachment-definitions")) === nadEvents + 1 &&
        metricValue(text, cached("pods")) === 2,
    );
    k.f.api.clearRequests();
    const next = await shim(k, "ADD", second);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.deepEqual(await second.ns.ipv4("net1"), [`10.242.${k.subnet}.13/24`], "the new config");
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      `PATCH /api/v1/namespaces/default/pods/${second.name}/status`,
    ]);

    // A NAD the watch has not delivered yet: one GET finds it.
    k.f.api.setWatchLatency(60_000);
    macvlanNad(k, "mv-new", 14);
    k.f.api.setWatchLatency(0);
    const third = await addPod(k, `third-${uniqueSuffix()}`, { [NETWORKS]: "mv-new" });
    k.f.api.clearRequests();
    const late = await shim(k, "ADD", third);
    assert.equal(late.code, 0, late.stdout + late.stderr);
    assert.deepEqual(await third.ns.ipv4("net1"), [`10.242.${k.subnet}.14/24`]);
    const asked = pathRequests(k.f.api.requests());
    assert.ok(
      asked.includes(
        "GET /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/mv-new",
      ),
      asked.join("\n"),
    );
    for (const pod of [first, second, third]) assert.equal((await shim(k, "DEL", pod)).code, 0);

    // A NAD that exists nowhere: one GET, the thin plugin's error, the warning event.
    const missing = await addPod(k, `missing-${uniqueSuffix()}`, { [NETWORKS]: "nope" });
    await untilMetrics(k.daemon, (text) => metricValue(text, cached("pods")) === 4);
    k.f.api.clearRequests();
    const failed = await shim(k, "ADD", missing);
    assert.notEqual(failed.code, 0);
    assert.match(
      JSON.parse(failed.stdout).msg,
      /the NetworkAttachmentDefinition "nope" does not exist in namespace "default"/,
    );
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      "GET /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/nope",
    ]);
    assert.deepEqual(await linkNames(missing.ns), ["lo"], "nothing attached");
    while (!k.f.api.events().some((e) => e.reason === "NoNetworkFound")) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: watches dropped, then expired (410): the caches resume and relist", async () => {
  const k = await kubeNode();
  try {
    macvlanNad(k, "mv-a", 15);
    await untilCached(k, { pods: 0, nads: 1 });

    // Dropped: the caches watch again from where they were and see what came meanwhile.
    while (k.f.api.openWatches() < 2) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(k.f.api.dropWatches(), 2);
    const resumed = await addPod(k, `resumed-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 1, nads: 1 });
    k.f.api.clearRequests();
    const add = await shim(k, "ADD", resumed);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      `PATCH /api/v1/namespaces/default/pods/${resumed.name}/status`,
    ]);

    // Expired: writes the caches did not see, then the history compacted; the watches are
    // dropped and their resourceVersion is gone (410): they list again.
    k.f.api.setWatchLatency(60_000);
    const relisted = await addPod(k, `relisted-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    k.f.api.compactHistory();
    k.f.api.setWatchLatency(0);
    k.f.api.dropWatches();
    const metrics = await untilMetrics(
      k.daemon,
      (text) =>
        metricValue(text, 'multus_daemon_cache_relists_total{resource="pods"}') >= 1 &&
        metricValue(
            text,
            'multus_daemon_cache_relists_total{resource="network-attachment-definitions"}',
          ) >= 1 &&
        metricValue(text, cached("pods")) === 2,
    );
    assert.equal(metricValue(metrics, 'multus_daemon_cache_synced{resource="pods"}'), 1);
    k.f.api.clearRequests();
    const later = await shim(k, "ADD", relisted);
    assert.equal(later.code, 0, later.stdout + later.stderr);
    assert.deepEqual(pathRequests(k.f.api.requests()), [
      `PATCH /api/v1/namespaces/default/pods/${relisted.name}/status`,
    ], "cached again after the relist");
    for (const pod of [resumed, relisted]) assert.equal((await shim(k, "DEL", pod)).code, 0);
  } finally {
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: DEL with the API server unreachable still releases", async () => {
  const k = await kubeNode();
  try {
    macvlanNad(k, "mv-a", 16);
    const pod = await addPod(k, `gone-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 1, nads: 1 });
    const add = await shim(k, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const leases = async () =>
      (await listFiles(k.f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.equal((await leases()).length, 1);

    k.f.api.inject({ kind: "refuse" });
    k.f.api.dropConnections();
    const del = await shim(k, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await linkNames(pod.ns), ["lo"]);
    assert.deepEqual(await leases(), [], "the address is released");
    assert.deepEqual(await listFiles(k.f.root.cniDir), []);
  } finally {
    k.f.api.clearFaults();
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: where RBAC forbids patch, the status update reads the whole pod first", async () => {
  const k = await kubeNode();
  try {
    const name = `rbac-${uniqueSuffix()}`;
    const stored = k.f.api.setPod({
      metadata: { name, namespace: "default", labels: { app: "web" } },
      spec: { nodeName: NODE_NAME, containers: [{ name: "web", image: "nginx" }] },
    });
    const pod = { name, uid: stored.metadata.uid!, ...await newSandbox(k) };
    await untilCached(k, { pods: 1, nads: 0 });
    k.f.api.forbid("patch", "pods/status");
    k.f.api.clearRequests();
    const add = await shim(k, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const log = k.f.api.requests();
    assert.deepEqual(pathRequests(log).map((r) => `${r}`), [
      `PATCH /api/v1/namespaces/default/pods/${name}/status`,
      `GET /api/v1/namespaces/default/pods/${name}`,
      `PUT /api/v1/namespaces/default/pods/${name}/status`,
    ]);
    const put = log.find((r) => r.method === "PUT")!.body as {
      metadata: { labels?: Record<string, string> };
      spec: { containers?: unknown[] };
    };
    assert.deepEqual(put.spec.containers, [{ name: "web", image: "nginx" }], "not a trimmed pod");
    assert.deepEqual(put.metadata.labels, { app: "web" });
    const after = k.f.api.getPod("default", name)!;
    assert.deepEqual(after.spec?.containers, [{ name: "web", image: "nginx" }]);
    assert.equal(statusOf(k, name)!.length, 1);
    assert.equal((await shim(k, "DEL", pod)).code, 0);
  } finally {
    await k.cleanup();
  }
});

Deno.test("daemon, Kubernetes mode: a rotated token is read again at the first 401, without a restart", async () => {
  const k = await kubeNode({ auth: "tokenFile" });
  try {
    macvlanNad(k, "mv-a", 17);
    const before = await addPod(k, `before-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 1, nads: 1 });
    assert.equal((await shim(k, "ADD", before)).code, 0);

    const tokenFile = [...Deno.readDirSync(k.f.api.dir)].find((e) => e.name.startsWith("token-"))!;
    await Deno.writeTextFile(join(k.f.api.dir, tokenFile.name), `${k.f.api.rotateToken()}\n`);
    const after = await addPod(k, `after-${uniqueSuffix()}`, { [NETWORKS]: "mv-a" });
    await untilCached(k, { pods: 2, nads: 1 });
    k.f.api.clearRequests();
    const add = await shim(k, "ADD", after);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await linkNames(after.ns), ["eth0", "lo", "net1"]);
    const writes = k.f.api.requests().filter((r) => r.method === "PATCH")
      .map((r) => `${r.status} ${r.auth}`);
    assert.deepEqual(
      writes,
      ["401 invalid-token", "200 token"],
      "refused once, then the new token",
    );
    assert.equal(statusOf(k, after.name)!.length, 2);
    for (const pod of [before, after]) assert.equal((await shim(k, "DEL", pod)).code, 0);
  } finally {
    await k.cleanup();
  }
});
