/**
 * Concurrency: many pods added and deleted at the same time through the launcher, sharing one
 * bridge, one host-local range per network, one cache dir and one debug log file, as on a node
 * after a reboot. Every pod must get its interfaces and its own addresses, every log line must
 * be whole, and nothing may be left once the pods are gone.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeTestRoot,
  type PluginRun,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import { deleteHostLink, HostVeth, listFiles, TestNetns } from "../helpers/netns.ts";
import {
  assertCompleteLogLines,
  assertNothingLeft,
  assertOk,
  bridgePorts,
  leases,
  linkNames,
  nextOctet,
  Rng,
} from "./_helpers.ts";

const PODS = 30;

interface Pod {
  index: number;
  ns: TestNetns;
  containerId: string;
  name: string;
}

interface Node {
  root: TestRoot;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  eth0Net: number;
  net1Net: number;
  conf: Record<string, unknown>;
  pods: Pod[];
  newPod(index: number): Promise<Pod>;
  run(pod: Pod, command: "ADD" | "DEL"): Promise<PluginRun>;
  cleanup(): Promise<void>;
}

async function node(): Promise<Node> {
  const root = await makeTestRoot();
  const veth = await HostVeth.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  const leaseDir = join(root.dir, "leases");
  const eth0Net = nextOctet();
  const net1Net = nextOctet();
  const suffix = uniqueSuffix();
  const conf = {
    cniVersion: "1.0.0",
    name: "multus-stress",
    type: "multus",
    cniDir: root.cniDir,
    binDir: root.binDir,
    logFile: root.logFile,
    logLevel: "debug",
    logToStderr: false,
    delegates: [
      {
        cniVersion: "1.0.0",
        name: "stress-bridge",
        type: "bridge",
        bridge,
        isGateway: true,
        ipam: {
          type: "host-local",
          subnet: `10.250.${eth0Net}.0/24`,
          dataDir: leaseDir,
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      {
        cniVersion: "1.0.0",
        name: "stress-macvlan",
        type: "macvlan",
        master: veth.a,
        mode: "bridge",
        ipam: { type: "host-local", subnet: `10.251.${net1Net}.0/24`, dataDir: leaseDir },
      },
    ],
  };
  const pods: Pod[] = [];
  const n: Node = {
    root,
    veth,
    bridge,
    leaseDir,
    eth0Net,
    net1Net,
    conf,
    pods,
    async newPod(index) {
      const pod = {
        index,
        ns: await TestNetns.create(),
        // The log shows the first 12 characters of the id: keep them distinct.
        containerId: `${String(index).padStart(3, "0")}${suffix}${
          crypto.randomUUID().replaceAll("-", "")
        }`,
        name: `pod-${index}`,
      };
      pods.push(pod);
      return pod;
    },
    run(pod, command) {
      return root.run({
        command,
        containerId: pod.containerId,
        netns: pod.ns.path,
        ifName: "eth0",
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=stress;K8S_POD_NAME=${pod.name}`,
        config: conf,
      });
    },
    async cleanup() {
      await Promise.all(pods.map((p) => p.ns.remove()));
      await veth.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
  return n;
}

/** Checks that `pod` has eth0 and net1 with addresses of their ranges; returns them. */
async function attachedAddresses(n: Node, pod: Pod, add: PluginRun): Promise<[string, string]> {
  const label = `pod ${pod.index}`;
  assert.deepEqual(await linkNames(pod.ns), ["eth0", "lo", "net1"], label);
  const [eth0] = await pod.ns.ipv4("eth0");
  const [net1] = await pod.ns.ipv4("net1");
  assert.match(eth0 ?? "", new RegExp(`^10\\.250\\.${n.eth0Net}\\.\\d+/24$`), label);
  assert.match(net1 ?? "", new RegExp(`^10\\.251\\.${n.net1Net}\\.\\d+/24$`), label);
  const ips = add.json!.ips as { address: string }[];
  assert.equal(ips[0].address, eth0, `${label}: the result is the default network's`);
  return [eth0, net1];
}

function assertDistinct(addresses: string[], label: string): void {
  const seen = new Set(addresses);
  assert.equal(seen.size, addresses.length, `${label}: duplicate addresses ${addresses.sort()}`);
}

Deno.test(`${PODS} pods added at once, then deleted at once: own interfaces and addresses, whole log lines, nothing left`, async () => {
  const n = await node();
  try {
    const pods = await Promise.all(Array.from({ length: PODS }, (_, i) => n.newPod(i)));
    const adds = await Promise.all(pods.map((p) => n.run(p, "ADD")));
    adds.forEach((r, i) => assertOk(r, `ADD of pod ${i}`));

    const addresses = await Promise.all(pods.map((p, i) => attachedAddresses(n, p, adds[i])));
    assertDistinct(addresses.map((a) => a[0]), "eth0");
    assertDistinct(addresses.map((a) => a[1]), "net1");
    assert.equal((await leases(n.leaseDir)).length, 2 * PODS, "one lease per pod and network");
    assert.equal((await bridgePorts(n.bridge)).length, PODS, "one bridge port per pod");
    const cache = await listFiles(n.root.cniDir);
    assert.equal(cache.filter((f) => !f.startsWith("results/")).length, PODS, "scratch caches");
    assert.equal(cache.filter((f) => f.startsWith("results/")).length, 2 * PODS, "results");

    const dels = await Promise.all(pods.map((p) => n.run(p, "DEL")));
    dels.forEach((r, i) => assertOk(r, `DEL of pod ${i}`));
    await assertNothingLeft({
      namespaces: pods.map((p) => p.ns),
      leaseDir: n.leaseDir,
      cniDir: n.root.cniDir,
      bridge: n.bridge,
    });

    const lines = await assertCompleteLogLines(n.root.logFile);
    for (const p of pods) {
      const mine = lines.filter((l) => l.includes(`container=${p.containerId.slice(0, 12)} `));
      assert.ok(mine.length >= 4, `pod ${p.index} logged its ADD and DEL (${mine.length} lines)`);
      assert.ok(mine.every((l) => l.includes(`pod=stress/${p.name} `)), `pod ${p.index} lines`);
    }
  } finally {
    await n.cleanup();
  }
});

Deno.test("ADDs of new pods interleaved with DELs of running ones: no lease, interface or cache entry is lost or leaked", async () => {
  const n = await node();
  const rng = new Rng(4242);
  try {
    const half = PODS / 2;
    const first = await Promise.all(Array.from({ length: half }, (_, i) => n.newPod(i)));
    const firstAdds = await Promise.all(first.map((p) => n.run(p, "ADD")));
    firstAdds.forEach((r, i) => assertOk(r, `ADD of pod ${i}`));

    const second = await Promise.all(Array.from({ length: half }, (_, i) => n.newPod(half + i)));
    const work: { pod: Pod; command: "ADD" | "DEL" }[] = [
      ...first.map((pod) => ({ pod, command: "DEL" as const })),
      ...second.map((pod) => ({ pod, command: "ADD" as const })),
    ];
    for (let i = work.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [work[i], work[j]] = [work[j], work[i]];
    }
    const runs = await Promise.all(work.map(async (w) => {
      // Spread the starts a little so the ADDs and DELs really overlap in every phase.
      await new Promise((r) => setTimeout(r, rng.int(150)));
      return await n.run(w.pod, w.command);
    }));
    runs.forEach((r, i) => assertOk(r, `${work[i].command} of pod ${work[i].pod.index}`));

    for (const p of first) assert.deepEqual(await linkNames(p.ns), ["lo"], `pod ${p.index}`);
    const addresses = await Promise.all(
      second.map((p) => attachedAddresses(n, p, runs[work.findIndex((w) => w.pod === p)])),
    );
    assertDistinct(addresses.map((a) => a[0]), "eth0");
    assertDistinct(addresses.map((a) => a[1]), "net1");
    assert.equal((await leases(n.leaseDir)).length, 2 * half, "only the running pods hold leases");
    const cache = await listFiles(n.root.cniDir);
    const ids = new Set(cache.filter((f) => !f.startsWith("results/")));
    assert.deepEqual([...ids].sort(), second.map((p) => p.containerId).sort(), "scratch caches");
    assert.equal(cache.filter((f) => f.startsWith("results/")).length, 2 * half);

    const dels = await Promise.all(second.map((p) => n.run(p, "DEL")));
    dels.forEach((r, i) => assertOk(r, `DEL of pod ${second[i].index}`));
    await assertNothingLeft({
      namespaces: n.pods.map((p) => p.ns),
      leaseDir: n.leaseDir,
      cniDir: n.root.cniDir,
      bridge: n.bridge,
    });
    await assertCompleteLogLines(n.root.logFile);
  } finally {
    await n.cleanup();
  }
});
