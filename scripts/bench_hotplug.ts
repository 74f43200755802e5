/**
 * Hot-plug latency: the time from editing a running pod's networks annotation (the write to
 * the test API server) to the new interface being up with its address in the pod's netns,
 * and from removing the entry to the interface being gone, over `--runs` edits (default 10).
 * With `--transcript`, prints what a user sees for the first edit: the annotation before and
 * after, `ip addr` in the pod's netns before and after, the network-status before and after.
 *
 * Run as root: scripts/bench-hotplug [--runs N] [--transcript]
 */

import { parseArgs } from "node:util";
import { startK8sFixture } from "../tests/helpers/k8s_fixture.ts";
import { sh } from "../tests/helpers/netns.ts";
import { uniqueSuffix } from "../tests/helpers/plugin_run.ts";
import { fixtureNode, startDaemon, stopDaemon } from "../tests/daemon/_helpers.ts";
import type { Pod } from "../src/k8s/types.ts";

const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const STATUS = "k8s.v1.cni.cncf.io/network-status";
const NODE = "bench-node";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "10" }, transcript: { type: "boolean" } },
});
const runs = Number(values.runs);

const fx = await startK8sFixture({ clusterSubnet: "10.249.1" });
const node = await fixtureNode(fx, fx.multusConf({ logLevel: "error" }), fx.multusConf());
const nad = (name: string, octet: number) =>
  fx.api.setNad({
    metadata: { name, namespace: "default" },
    spec: {
      config: JSON.stringify({
        cniVersion: "1.0.0",
        type: "macvlan",
        master: fx.veth.a,
        mode: "bridge",
        ipam: { type: "static", addresses: [{ address: `10.250.1.${octet}/24` }] },
      }),
    },
  });
nad("blue", 2);
nad("green", 3);
const pod = fx.api.setPod({
  metadata: { name: "web", namespace: "default", annotations: { [NETWORKS]: "blue" } },
  spec: { nodeName: NODE },
} as Pod);
const containerId = `bench-${uniqueSuffix()}`;
const args =
  `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${pod.metadata.uid}`;
const add = await fx.root.run({
  command: "ADD",
  containerId,
  netns: fx.ns.path,
  ifName: "eth0",
  args,
  config: fx.multusConf({ logLevel: "error" }),
});
if (add.code !== 0) throw new Error(`ADD failed: ${add.stdout}${add.stderr}`);
const daemon = await startDaemon(node, { hotPlug: true }, {
  env: { MULTUS_NODE_NAME: NODE },
  metrics: false,
});

function edit(networks: string): void {
  const p = fx.api.getPod("default", "web")!;
  fx.api.setPod({
    ...p,
    metadata: { ...p.metadata, annotations: { ...p.metadata.annotations, [NETWORKS]: networks } },
  });
}

/** True once net2 is up with green's address (`up`), or gone (`!up`). */
async function net2(up: boolean): Promise<boolean> {
  const links = JSON.parse(await sh(["ip", "-n", fx.ns.name, "-j", "addr", "show"])) as {
    ifname: string;
    operstate: string;
    addr_info?: { local: string }[];
  }[];
  const link = links.find((l) => l.ifname === "net2");
  if (!up) return link === undefined;
  return link !== undefined && link.operstate !== "DOWN" &&
    (link.addr_info ?? []).some((a) => a.local === "10.250.1.3");
}

async function timeUntil(up: boolean): Promise<number> {
  const start = performance.now();
  const deadline = start + 60_000;
  while (!await net2(up)) {
    if (performance.now() > deadline) throw new Error(`net2 not ${up ? "up" : "gone"} in 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - start;
}

const status = () => fx.api.getPod("default", "web")!.metadata.annotations?.[STATUS] ?? "";
const ipAddr = () => sh(["ip", "-n", fx.ns.name, "addr"]);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const attach: number[] = [];
const detach: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const before = {
      annotation: fx.api.getPod("default", "web")!.metadata.annotations?.[NETWORKS],
      ip: await ipAddr(),
      status: status(),
    };
    const t0 = performance.now();
    edit("blue,green");
    await timeUntil(true);
    attach.push(performance.now() - t0);
    if (i === 0 && values.transcript) {
      // The status follows the interface: wait for it before showing it.
      while (!status().includes('"net2"')) await new Promise((r) => setTimeout(r, 10));
      print(
        `# annotation ${NETWORKS} edited: ${JSON.stringify(before.annotation)} -> "blue,green"`,
      );
      print(`\n# ip -n <pod netns> addr, before\n${before.ip}`);
      print(`# ip -n <pod netns> addr, after\n${await ipAddr()}`);
      print(`# ${STATUS}, before\n${before.status}\n`);
      print(`# ${STATUS}, after\n${status()}\n`);
    }
    const t1 = performance.now();
    edit("blue");
    await timeUntil(false);
    detach.push(performance.now() - t1);
    // Let the status write of this pass land before the next edit.
    while (status().includes('"net2"')) await new Promise((r) => setTimeout(r, 10));
  }
} finally {
  await stopDaemon(daemon);
  await fx.root.run({
    command: "DEL",
    containerId,
    netns: fx.ns.path,
    ifName: "eth0",
    args,
    config: fx.multusConf(),
  });
  await fx.cleanup();
}
const fmt = (xs: number[]) => xs.map((x) => Math.round(x)).join(" ");
print(`runs: ${runs}`);
print(`edit -> net2 up:   median ${Math.round(median(attach))} ms (all: ${fmt(attach)})`);
print(`edit -> net2 gone: median ${Math.round(median(detach))} ms (all: ${fmt(detach)})`);
print(`load: ${(await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")}`);
