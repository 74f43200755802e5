/**
 * End to end through the plugin: SR-IOV networks get the devices the kubelet allocated to the
 * pod (test kubelet speaking real gRPC), the device ids reach the delegate (a stand-in `sriov`
 * plugin recording what it received), device-info reaches network-status, and DEL removes
 * the device-info files with the kubelet gone.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { listFiles } from "../helpers/netns.ts";
import { type K8sFixture, startK8sFixture } from "../helpers/k8s_fixture.ts";
import { CHECKPOINT_POD_UID, checkpointText, startKubeletServer, TEST_POD } from "./_kubelet.ts";
import { installSriovStandin, sriovCalls, sriovNad } from "./_dra.ts";

const RESOURCE = "intel.com/sriov_a";

interface Fixture extends K8sFixture {
  record: string;
  devinfo: string;
  containerId: string;
  podUid: string;
  conf: Record<string, unknown>;
}

async function fixture(
  options: { networks: string; podName?: string; podUid?: string; nadResource?: string },
): Promise<Fixture> {
  const env = await startK8sFixture({ clusterSubnet: "10.251.7" });
  const { root, api } = env;
  const record = join(root.dir, "sriov-calls.jsonl");
  const devinfo = join(root.dir, "devinfo");
  await installSriovStandin(root.binDir);
  const pod = api.setPod({
    metadata: {
      name: options.podName ?? TEST_POD.name,
      namespace: "nfv",
      ...(options.podUid ? { uid: options.podUid } : {}),
      annotations: { "k8s.v1.cni.cncf.io/networks": options.networks },
    },
  });
  for (
    const [name, caps] of [["sriov-a-1", { deviceID: true, CNIDeviceInfoFile: true }], [
      "sriov-a-2",
      {},
    ]] as const
  ) {
    api.setNad(
      sriovNad(name, options.nadResource ?? RESOURCE, {
        vlan: 100,
        recordFile: record,
        capabilities: caps,
      }),
    );
  }
  const conf = env.multusConf({
    deviceInfoDir: devinfo,
    podResourcesSocket: join(root.dir, "kubelet.sock"),
    deviceCheckpointFile: join(root.dir, "kubelet_internal_checkpoint"),
  });
  return {
    ...env,
    record,
    devinfo,
    containerId: `nfv-${uniqueSuffix()}${uniqueSuffix()}`,
    podUid: pod.metadata.uid!,
    conf,
  };
}

function call(f: Fixture, command: string, podName = TEST_POD.name) {
  return f.root.run({
    command,
    containerId: f.containerId,
    netns: f.ns.path,
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=nfv;K8S_POD_NAME=${podName};K8S_POD_UID=${f.podUid}`,
    config: f.conf,
  });
}

Deno.test("two networks on one resource get the pod's devices in order; device-info reaches network-status; DEL cleans up without the kubelet", async () => {
  const f = await fixture({ networks: "sriov-a-1,sriov-a-2" });
  const kubelet = await startKubeletServer(f.root.dir, { pods: [TEST_POD] });
  try {
    await Deno.rename(kubelet.socket, f.conf.podResourcesSocket as string);
    const dp = join(f.devinfo, "dp");
    await Deno.mkdir(dp, { recursive: true });
    const info = { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:03:02.3" } };
    await Deno.writeTextFile(
      join(dp, "intel.com-sriov_a-0000:03:02.3-device.json"),
      JSON.stringify(info),
    );

    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname).sort(), [
      "eth0",
      "lo",
      "net1",
      "net2",
    ]);

    const adds = (await sriovCalls(f.record)).filter((r) => r.command === "ADD");
    assert.equal(adds.length, 2);
    const [first, second] = adds.map((r) => r.config as Record<string, unknown>);
    assert.equal(first.deviceID, "0000:03:02.3");
    assert.equal(first.pciBusID, "0000:03:02.3");
    assert.equal(first.vlan, 100, "the rest of the config is passed on");
    const devinfoFile = join(f.devinfo, "cni", `nfv-sriov-a-1-${f.containerId}_net1`);
    assert.deepEqual(first.runtimeConfig, {
      deviceID: "0000:03:02.3",
      CNIDeviceInfoFile: devinfoFile,
    });
    assert.equal(second.deviceID, "0000:03:02.0", "the second network gets the next device");
    assert.equal(second.runtimeConfig, undefined, "no capability declared, no runtimeConfig");

    assert.deepEqual(JSON.parse(await Deno.readTextFile(devinfoFile)), info);
    const status = JSON.parse(
      f.api.getPod("nfv", TEST_POD.name)!.metadata
        .annotations!["k8s.v1.cni.cncf.io/network-status"],
    );
    assert.deepEqual(status[1]["device-info"], info);
    assert.equal(status[1].name, "nfv/sriov-a-1");
    assert.equal(
      status[2]["device-info"],
      undefined,
      "no device plugin file for the second device",
    );

    await kubelet.stop();
    f.api.inject({ kind: "refuse" });
    const del = await call(f, "DEL");
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(await listFiles(join(f.devinfo, "cni")), [], "device-info files removed");
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
    const dels = (await sriovCalls(f.record)).filter((r) => r.command === "DEL");
    assert.deepEqual(dels.map((r) => (r.config as Record<string, unknown>).deviceID), [
      "0000:03:02.0",
      "0000:03:02.3",
    ]);
  } finally {
    await kubelet.stop();
    await f.cleanup();
  }
});

Deno.test("a pod with no device of the resource fails clearly before anything is attached", async () => {
  const f = await fixture({ networks: "sriov-a-1", nadResource: "intel.com/not_allocated" });
  const kubelet = await startKubeletServer(f.root.dir, { pods: [TEST_POD] });
  try {
    await Deno.rename(kubelet.socket, f.conf.podResourcesSocket as string);
    const add = await call(f, "ADD");
    assert.notEqual(add.code, 0);
    assert.match(String(add.json!.msg), /nfv\/sriov-a-1/);
    assert.match(String(add.json!.msg), /intel\.com\/not_allocated/);
    assert.match(String(add.json!.msg), /nfv\/dpdk-app/);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.deepEqual(await sriovCalls(f.record), [], "the delegate never ran");
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await kubelet.stop();
    await f.cleanup();
  }
});

Deno.test("without the kubelet socket the device-plugin checkpoint file is used", async () => {
  const f = await fixture({
    networks: "sriov-a-1",
    nadResource: "intel.com/sriov_net_A",
    podUid: CHECKPOINT_POD_UID,
  });
  try {
    await Deno.writeTextFile(f.conf.deviceCheckpointFile as string, checkpointText());
    const add = await call(f, "ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const adds = (await sriovCalls(f.record)).filter((r) => r.command === "ADD");
    assert.equal((adds[0].config as Record<string, unknown>).deviceID, "0000:03:02.3");
    assert.equal((await call(f, "DEL")).code, 0);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
  } finally {
    await f.cleanup();
  }
});
