/**
 * End to end through the plugin: networks backed by devices allocated through DRA resource
 * claims. The test API server serves the pod (with its claim statuses), the ResourceClaims and
 * the node's ResourceSlices; the stand-in `sriov` plugin records the device IDs it received.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { listFiles } from "../helpers/netns.ts";
import { type K8sFixture, startK8sFixture } from "../helpers/k8s_fixture.ts";
import { startKubeletServer, TEST_POD } from "./_kubelet.ts";
import {
  draRequests,
  installSriovStandin,
  resourceClaim,
  resourceSlice as slice,
  sriovCalls,
  sriovNad,
} from "./_dra.ts";

const NODE = "node-1";
const DRIVER = "sriovnetwork.example.com";
const RESOURCE = "example.com/sriov_vf";
const POD = TEST_POD.name; // the stand-in kubelet knows this pod
const DEVICE_INFO = { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:81:00.3" } };

interface Fixture extends K8sFixture {
  record: string;
  containerId: string;
  podUid: string;
  conf: Record<string, unknown>;
}

/** A node with a pod in namespace nfv, its NADs on `RESOURCE` and the node's slices. */
async function fixture(
  options: { networks: string; status: Record<string, unknown>; extraNads?: string[] },
): Promise<Fixture> {
  const env = await startK8sFixture({ clusterSubnet: "10.251.9" });
  const { root, api } = env;
  const record = join(root.dir, "sriov-calls.jsonl");
  await installSriovStandin(root.binDir);
  const pod = api.setPod({
    metadata: {
      name: POD,
      namespace: "nfv",
      annotations: { "k8s.v1.cni.cncf.io/networks": options.networks },
    },
    spec: { nodeName: NODE },
    status: options.status,
  });
  const nads: [string, string][] = [["dra-a", RESOURCE], ["dra-b", RESOURCE]];
  for (const extra of options.extraNads ?? []) nads.push([extra, "intel.com/sriov_a"]);
  for (const [name, resource] of nads) {
    api.setNad(
      sriovNad(name, resource, { vlan: 100, recordFile: record, capabilities: { deviceID: true } }),
    );
  }
  // The node's slices: two VFs and a device without network attributes; another node's VF
  // with the same names must never be used.
  api.setResourceSlice(slice(`${NODE}-sriov`, NODE, DRIVER, [
    ["vf-0", { deviceID: "0000:81:00.2", resourceName: RESOURCE }],
    ["vf-1", { deviceID: "0000:81:00.3", resourceName: RESOURCE }],
  ]));
  api.setResourceSlice(slice("node-2-sriov", "node-2", DRIVER, [
    ["vf-0", { deviceID: "0000:99:00.2", resourceName: RESOURCE }],
    ["vf-1", { deviceID: "0000:99:00.3", resourceName: RESOURCE }],
  ]));
  api.setResourceSlice(slice(`${NODE}-gpu`, NODE, "gpu.example.com", [["gpu-0", {}]]));
  const conf = env.multusConf({
    deviceInfoDir: join(root.dir, "devinfo"),
    podResourcesSocket: join(root.dir, "kubelet.sock"),
    deviceCheckpointFile: join(root.dir, "kubelet_internal_checkpoint"),
  });
  return {
    ...env,
    record,
    containerId: `dra-${uniqueSuffix()}${uniqueSuffix()}`,
    podUid: pod.metadata.uid!,
    conf,
  };
}

/** A claim allocated on NODE: results are [request, driver, device]. */
function claim(name: string, results?: [string, string, string][]) {
  return resourceClaim(name, NODE, results);
}

function claimStatus(...claims: string[]) {
  return {
    resourceClaimStatuses: claims.map((c) => ({
      name: c.replace(/-[a-z0-9]{5}$/, ""),
      resourceClaimName: c,
    })),
  };
}

function call(f: Fixture, command: string) {
  return f.root.run({
    command,
    containerId: f.containerId,
    netns: f.ns.path,
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=nfv;K8S_POD_NAME=${POD};K8S_POD_UID=${f.podUid}`,
    config: f.conf,
  });
}

async function deviceIds(f: Fixture, command = "ADD"): Promise<unknown[]> {
  return (await sriovCalls(f.record))
    .filter((r) => r.command === command)
    .map((r) => [r.ifName, r.config.deviceID, r.config.runtimeConfig?.deviceID]);
}

async function assertNothingAttached(f: Fixture): Promise<void> {
  assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
  assert.deepEqual(await deviceIds(f), [], "the delegate never ran");
  assert.deepEqual(await listFiles(f.root.cniDir), []);
}

Deno.test("two networks on one DRA resource get the claim's devices in allocation order, from this node's slices", async () => {
  const f = await fixture({ networks: "dra-a,dra-b", status: claimStatus("app-vfs-x7k2p") });
  try {
    const dp = join(f.root.dir, "devinfo", "dp");
    await Deno.mkdir(dp, { recursive: true });
    await Deno.writeTextFile(
      join(dp, "example.com-sriov_vf-0000:81:00.3-device.json"),
      JSON.stringify(DEVICE_INFO),
    );
    // Allocation order, not name order: vf-1 first.
    f.api.setResourceClaim(
      claim("app-vfs-x7k2p", [["vfs", DRIVER, "vf-1"], ["vfs", DRIVER, "vf-0"]]),
    );
    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await deviceIds(f), [
      ["net1", "0000:81:00.3", "0000:81:00.3"],
      ["net2", "0000:81:00.2", "0000:81:00.2"],
    ]);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname).sort(), [
      "eth0",
      "lo",
      "net1",
      "net2",
    ]);
    assert.deepEqual(draRequests(f.api), [
      "get /apis/resource.k8s.io/v1/namespaces/nfv/resourceclaims/app-vfs-x7k2p",
      `list /apis/resource.k8s.io/v1/resourceslices?fieldSelector=spec.nodeName=${NODE},spec.driver=${DRIVER}`,
    ]);
    // The device-info of a DRA device is handled as a device plugin's: copied for the
    // attachment and shown in network-status.
    const status = JSON.parse(
      f.api.getPod("nfv", POD)!.metadata.annotations!["k8s.v1.cni.cncf.io/network-status"],
    );
    assert.deepEqual(status.map((s: { name: string }) => s.name), [
      "cluster-bridge",
      "nfv/dra-a",
      "nfv/dra-b",
    ]);
    assert.deepEqual(status[1]["device-info"], DEVICE_INFO);
    assert.equal(status[2]["device-info"], undefined, "no device-info file for vf-0");
    const log = await Deno.readTextFile(f.root.logFile);
    assert.match(
      log,
      /network \\?"nfv\/dra-a\\?" gets device \\?"0000:81:00.3\\?" .*resource claim \\?"nfv\/app-vfs-x7k2p/,
    );

    assert.equal((await listFiles(join(f.root.dir, "devinfo", "cni"))).length, 1);
    const del = await call(f, "DEL");
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.deepEqual(await listFiles(join(f.root.dir, "devinfo", "cni")), []);
    assert.deepEqual((await deviceIds(f, "DEL")).map((d) => (d as unknown[])[1]).sort(), [
      "0000:81:00.2",
      "0000:81:00.3",
    ]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a mixed pod: device-plugin networks get the kubelet's devices, DRA networks the claim's", async () => {
  const f = await fixture({
    networks: "sriov-dp,dra-a",
    status: claimStatus("app-vf-q9d3m"),
    extraNads: ["sriov-dp"],
  });
  const kubelet = await startKubeletServer(f.root.dir, { pods: [TEST_POD] });
  try {
    await Deno.rename(kubelet.socket, f.conf.podResourcesSocket as string);
    f.api.setResourceClaim(claim("app-vf-q9d3m", [["vf", DRIVER, "vf-0"]]));
    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await deviceIds(f), [
      ["net1", "0000:03:02.3", "0000:03:02.3"],
      ["net2", "0000:81:00.2", "0000:81:00.2"],
    ]);
    assert.deepEqual((await kubelet.calls()).map((c) => c.method), ["Get"]);
    assert.equal(draRequests(f.api).length, 2);
  } finally {
    await kubelet.stop();
    await f.cleanup();
  }
});

Deno.test("a device without the network attributes (a GPU in the same claim) is skipped", async () => {
  const f = await fixture({ networks: "dra-a", status: claimStatus("app-mixed-b8c1z") });
  try {
    f.api.setResourceClaim(
      claim("app-mixed-b8c1z", [["gpu", "gpu.example.com", "gpu-0"], ["vf", DRIVER, "vf-1"]]),
    );
    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await deviceIds(f), [["net1", "0000:81:00.3", "0000:81:00.3"]]);
    assert.equal(
      draRequests(f.api).filter((r) => r.startsWith("list")).length,
      2,
      "one list per driver",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test("an unallocated claim fails ADD before anything is attached, naming the pod, the claim and the network", async () => {
  const f = await fixture({ networks: "dra-a", status: claimStatus("app-vf-unalc") });
  try {
    f.api.setResourceClaim(claim("app-vf-unalc"));
    const add = await call(f, "ADD");
    assert.equal(add.code, 1);
    assert.equal(add.json!.code, 7);
    assert.equal(
      add.json!.msg,
      'Cannot attach network "nfv/dra-a" to pod "nfv/dpdk-app": resource claim "nfv/app-vf-unalc": it has no device allocation',
    );
    assert.match(String(add.json!.details), /kubectl -n nfv get resourceclaim app-vf-unalc/);
    await assertNothingAttached(f);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a network with too few DRA devices fails before anything is attached", async () => {
  const f = await fixture({ networks: "dra-a,dra-b", status: claimStatus("app-vf-one11") });
  try {
    await Deno.writeTextFile(
      f.conf.deviceCheckpointFile as string,
      JSON.stringify({ Data: { PodDeviceEntries: [], RegisteredDevices: {} }, Checksum: 0 }),
    );
    f.api.setResourceClaim(claim("app-vf-one11", [["vf", DRIVER, "vf-0"]]));
    const add = await call(f, "ADD");
    assert.equal(add.code, 1);
    assert.equal(add.json!.code, 7);
    assert.match(
      String(add.json!.msg),
      /^Cannot attach network "nfv\/dra-b" to pod "nfv\/dpdk-app": it asks for a device of "example\.com\/sriov_vf" but the pod has none left \(1 from its resource claim "nfv\/app-vf-one11", 0 from the kubelet's device plugins, 1 used by earlier networks\)$/,
    );
    await assertNothingAttached(f);
  } finally {
    await f.cleanup();
  }
});

Deno.test("the extended-resource form: devices of the mapped request, checked strictly", async () => {
  const ext = {
    extendedResourceClaimStatus: {
      resourceClaimName: "app-extended-resources-5lt8n",
      requestMappings: [
        { containerName: "app", resourceName: RESOURCE, requestName: "container-0-request-0" },
      ],
    },
  };
  const f = await fixture({ networks: "dra-a,dra-b", status: ext });
  try {
    f.api.setResourceClaim(claim("app-extended-resources-5lt8n", [
      ["container-0-request-0", DRIVER, "vf-0"],
      ["container-0-request-0", DRIVER, "vf-1"],
    ]));
    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual((await deviceIds(f)).map((d) => (d as unknown[])[1]), [
      "0000:81:00.2",
      "0000:81:00.3",
    ]);
    assert.equal((await call(f, "DEL")).code, 0);

    // A device of the mapped request that is not published for networks is an error.
    await Deno.remove(f.record);
    f.api.setResourceClaim(claim("app-extended-resources-5lt8n", [
      ["container-0-request-0", DRIVER, "vf-0"],
      ["container-0-request-0", "gpu.example.com", "gpu-0"],
    ]));
    const bad = await call(f, "ADD");
    assert.equal(bad.code, 1);
    assert.match(
      String(bad.json!.msg),
      /^Cannot attach networks "nfv\/dra-a", "nfv\/dra-b" to pod "nfv\/dpdk-app": resource claim "nfv\/app-extended-resources-5lt8n": device "gpu-0" .* has no string attribute "k8s\.cni\.cncf\.io\/deviceID"$/,
    );
    await assertNothingAttached(f);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a 403 on resourceslices fails ADD with the RBAC rule to add", async () => {
  const f = await fixture({ networks: "dra-a", status: claimStatus("app-vf-rbac1") });
  try {
    f.api.setResourceClaim(claim("app-vf-rbac1", [["vf", DRIVER, "vf-0"]]));
    f.api.forbid("list", "resourceslices");
    const add = await call(f, "ADD");
    assert.equal(add.code, 1);
    assert.match(
      String(add.json!.msg),
      /^Cannot attach network "nfv\/dra-a" to pod "nfv\/dpdk-app": cannot list resourceslices .*403 Forbidden/,
    );
    assert.match(
      String(add.json!.details),
      /add the ClusterRole rule \{apiGroups: \["resource\.k8s\.io"\], resources: \["resourceslices"\], verbs: \["list"\]\}/,
    );
    await assertNothingAttached(f);
  } finally {
    await f.cleanup();
  }
});
