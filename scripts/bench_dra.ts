/**
 * @module
 * What a DRA device network costs an ADD, next to a device-plugin one: the same pod with one
 * `sriov` network (the test stand-in), its device from the kubelet (stand-in PodResources
 * server, `Get`) or from a ResourceClaim and this node's ResourceSlices (test API server).
 * Per mode: ADD wall time, the API requests ADD sent, and the device look-up in the plugin's
 * debug log (from the NAD's answer to "gets device"). Modes alternate, ADD then DEL each run.
 *
 *     deno run --allow-all scripts/bench_dra.ts [--runs N]
 */

import { join } from "node:path";
import { REPO_ROOT, uniqueSuffix } from "../tests/helpers/plugin_run.ts";
import { startK8sFixture } from "../tests/helpers/k8s_fixture.ts";
import { startKubeletServer, TEST_POD } from "../tests/nfv/_kubelet.ts";

const encoder = new TextEncoder();
function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

const runsArg = Deno.args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(Deno.args[runsArg + 1]) : 11;
const DRIVER = "sriovnetwork.example.com";

const f = await startK8sFixture({ clusterSubnet: "10.251.11" });
const kubelet = await startKubeletServer(f.root.dir, { pods: [TEST_POD] });
const socket = join(f.root.dir, "kubelet.sock");
await Deno.rename(kubelet.socket, socket);
await Deno.copyFile(
  join(REPO_ROOT, "tests", "nfv", "sriov_standin.sh"),
  join(f.root.binDir, "sriov"),
);
await Deno.chmod(join(f.root.binDir, "sriov"), 0o755);

const MODES = {
  "device plugin": { nad: "sriov-dp", resource: "intel.com/sriov_a", claims: false },
  "DRA": { nad: "sriov-dra", resource: "example.com/sriov_vf", claims: true },
} as const;
type Mode = keyof typeof MODES;

for (const { nad, resource } of Object.values(MODES)) {
  f.api.setNad({
    metadata: {
      name: nad,
      namespace: "nfv",
      annotations: { "k8s.v1.cni.cncf.io/resourceName": resource },
    },
    spec: { config: JSON.stringify({ cniVersion: "1.0.0", type: "sriov", vlan: 100 }) },
  });
}
f.api.setResourceSlice({
  metadata: { name: "node-1-sriov" },
  spec: {
    driver: DRIVER,
    nodeName: "node-1",
    pool: { name: "node-1", generation: 1, resourceSliceCount: 1 },
    devices: [{
      name: "vf-0",
      attributes: {
        "k8s.cni.cncf.io/deviceID": { string: "0000:81:00.2" },
        "k8s.cni.cncf.io/resourceName": { string: "example.com/sriov_vf" },
      },
    }],
  },
});
f.api.setResourceClaim({
  metadata: { name: "dpdk-app-vf-x7k2p", namespace: "nfv" },
  status: {
    allocation: {
      devices: { results: [{ request: "vf", driver: DRIVER, pool: "node-1", device: "vf-0" }] },
    },
  },
});
const conf = f.multusConf({ podResourcesSocket: socket });

function setPod(mode: Mode): string {
  const m = MODES[mode];
  const pod = f.api.setPod({
    metadata: {
      name: TEST_POD.name,
      namespace: "nfv",
      annotations: { "k8s.v1.cni.cncf.io/networks": m.nad },
    },
    spec: { nodeName: "node-1" },
    status: m.claims
      ? { resourceClaimStatuses: [{ name: "vf", resourceClaimName: "dpdk-app-vf-x7k2p" }] }
      : {},
  });
  return pod.metadata.uid!;
}

interface Sample {
  wallMs: number;
  requests: string[];
  kubeletCalls: number;
  lookupMs: number;
}

/** ms since the epoch of a log line's timestamp (`2026-11-28T10:45:01.123Z`). */
function lineTime(line: string): number {
  const m = /\d{4}-\d\d-\d\dT[\d:.]+Z/.exec(line);
  return m ? Date.parse(m[0]) : NaN;
}

async function runOnce(mode: Mode): Promise<Sample> {
  const uid = setPod(mode);
  await Deno.writeTextFile(f.root.logFile, "");
  const before = f.api.requests().length;
  const kubeletBefore = (await kubelet.calls()).length;
  const containerId = `bench${uniqueSuffix()}${uniqueSuffix()}`;
  const args =
    `IgnoreUnknown=1;K8S_POD_NAMESPACE=nfv;K8S_POD_NAME=${TEST_POD.name};K8S_POD_UID=${uid}`;
  const started = performance.now();
  const add = await f.root.run({
    command: "ADD",
    containerId,
    netns: f.ns.path,
    args,
    config: conf,
  });
  const wallMs = performance.now() - started;
  if (add.code !== 0) throw new Error(`${mode} ADD failed: ${add.stdout}${add.stderr}`);
  const requests = f.api.requests().slice(before).map((r) => {
    const path = r.path.replace(/\/namespaces\/[^/]+/, "");
    return r.verb === "get"
      ? `get ${path.replace(/\/[^/]+$/, "/…")}`
      : `${r.verb ?? r.method} ${path}`;
  });
  const kubeletCalls = (await kubelet.calls()).length - kubeletBefore;
  const lines = (await Deno.readTextFile(f.root.logFile)).split("\n");
  const nadLine = lines.findLast((l) => /network-attachment-definitions\/\S+ answered/.test(l));
  const deviceLine = lines.find((l) => l.includes("gets device"));
  const lookupMs = nadLine && deviceLine ? lineTime(deviceLine) - lineTime(nadLine) : NaN;
  const del = await f.root.run({
    command: "DEL",
    containerId,
    netns: f.ns.path,
    args,
    config: conf,
  });
  if (del.code !== 0) throw new Error(`${mode} DEL failed: ${del.stdout}`);
  return { wallMs, requests, kubeletCalls, lookupMs };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

try {
  const samples: Record<Mode, Sample[]> = { "device plugin": [], "DRA": [] };
  await runOnce("device plugin"); // warm the disk cache
  for (let i = 0; i < RUNS; i++) {
    for (const mode of Object.keys(MODES) as Mode[]) samples[mode].push(await runOnce(mode));
  }
  print(
    `${RUNS} runs per mode, load average ${Deno.loadavg().map((n) => n.toFixed(1)).join(" ")}`,
  );
  for (const [mode, list] of Object.entries(samples)) {
    const counts = new Map<string, number>();
    for (const r of list[0].requests) counts.set(r, (counts.get(r) ?? 0) + 1);
    print(
      `${mode.padEnd(14)} ADD median ${median(list.map((s) => s.wallMs)).toFixed(0)} ms ` +
        `(min ${Math.min(...list.map((s) => s.wallMs)).toFixed(0)}), device look-up median ${
          median(list.map((s) => s.lookupMs)).toFixed(0)
        } ms, kubelet calls ${list[0].kubeletCalls}, API requests ${list[0].requests.length}: ${
          [...counts].map(([r, n]) => `${n}× ${r}`).join(", ")
        }`,
    );
  }
} finally {
  await kubelet.stop();
  await f.cleanup();
}
