/**
 * Tests of device ID assignment: allocations read from a stand-in kubelet (real gRPC) or from
 * the checkpoint file, IDs handed out in order, injected into the delegate configs byte for
 * byte.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CniError, ConfigError } from "../../src/cni/errors.ts";
import { parseNetworkConfig } from "../../src/cni/network_config.ts";
import type { Delegate } from "../../src/multus/plan/delegate.ts";
import { podDeviceAllocation } from "../../src/kubelet/allocation.ts";
import { assignDeviceIds, injectDeviceId } from "../../src/multus/kube/device_ids.ts";
import {
  CHECKPOINT_POD_UID,
  checkpointText,
  type KubeletConfig,
  OTHER_POD,
  startKubeletServer,
  TEST_POD,
} from "./_kubelet.ts";

const POD = { namespace: "nfv", name: "dpdk-app", uid: "uid-1" };

function delegate(name: string, resourceName: string | undefined, text: string): Delegate {
  return { name, resourceName, config: parseNetworkConfig(text, name) };
}

function sriovConf(name: string): string {
  return `{"cniVersion":"1.0.0","name":"${name}","type":"sriov","vlan":100,"big":12345678901234567890}`;
}

async function withKubelet(
  config: KubeletConfig,
  test: (socket: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nfv-ids-" });
  const server = await startKubeletServer(dir, config);
  try {
    await test(server.socket);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("assignDeviceIds() gives networks on the same resource different devices in allocation order", async () => {
  await withKubelet({ pods: [OTHER_POD, TEST_POD] }, async (socket) => {
    const delegates = [
      delegate("cluster", undefined, '{"cniVersion":"1.0.0","name":"cluster","type":"bridge"}'),
      delegate("nfv/sriov-a", "intel.com/sriov_a", sriovConf("sriov-a")),
      delegate("nfv/dpdk", "intel.com/dpdk", sriovConf("dpdk")),
      delegate("nfv/sriov-b", "intel.com/sriov_a", sriovConf("sriov-b")),
      delegate("nfv/sriov-c", "intel.com/sriov_a", sriovConf("sriov-c")),
    ];
    const clusterBefore = delegates[0].config.raw;
    await assignDeviceIds(POD, delegates, { podResourcesSocket: socket });
    assert.deepEqual(delegates.map((d) => d.deviceID), [
      undefined,
      "0000:03:02.3",
      "0000:05:00.1",
      "0000:03:02.0",
      "0000:03:02.5", // the sidecar container's device comes after the app container's
    ]);
    assert.equal(delegates[0].config.raw, clusterBefore);
    assert.equal(
      delegates[1].config.raw,
      '{"cniVersion":"1.0.0","name":"sriov-a","type":"sriov","vlan":100,"big":12345678901234567890,"deviceID":"0000:03:02.3","pciBusID":"0000:03:02.3"}',
    );
    assert.equal(delegates[3].config.plugins[0].type, "sriov");
  });
});

Deno.test("assignDeviceIds() fails clearly when the kubelet allocated no device to the pod", async () => {
  const plain = { namespace: "nfv", name: "plain", containers: [{ name: "c", devices: [] }] };
  await withKubelet({ pods: [plain, TEST_POD] }, async (socket) => {
    const delegates = [delegate("nfv/sriov-a", "intel.com/sriov_a", sriovConf("sriov-a"))];
    await assert.rejects(
      assignDeviceIds({ namespace: "nfv", name: "plain", uid: "u" }, delegates, {
        podResourcesSocket: socket,
      }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          'Cannot attach network "nfv/sriov-a" to pod "nfv/plain": it asks for a device of "intel.com/sriov_a" but the kubelet allocated none left to this pod (0 allocated, 0 used by earlier networks)',
        );
        assert.match(err.details!, /Request "intel.com\/sriov_a" in the pod's container resources/);
        return true;
      },
    );
    assert.equal(delegates[0].deviceID, undefined);
  });
});

Deno.test("assignDeviceIds() changes nothing when a later network lacks a device", async () => {
  await withKubelet({ pods: [TEST_POD] }, async (socket) => {
    const delegates = [
      delegate("nfv/dpdk-1", "intel.com/dpdk", sriovConf("dpdk-1")),
      delegate("nfv/dpdk-2", "intel.com/dpdk", sriovConf("dpdk-2")),
    ];
    const before = delegates.map((d) => d.config.raw);
    await assert.rejects(
      assignDeviceIds(POD, delegates, { podResourcesSocket: socket }),
      /"nfv\/dpdk-2".*\(1 allocated, 1 used by earlier networks\)/,
    );
    assert.deepEqual(delegates.map((d) => d.deviceID), [undefined, undefined]);
    assert.deepEqual(delegates.map((d) => d.config.raw), before);
  });
});

Deno.test("assignDeviceIds() says when the kubelet does not know the pod", async () => {
  await withKubelet({ pods: [OTHER_POD], get: "unimplemented" }, async (socket) => {
    const delegates = [delegate("nfv/a", "intel.com/sriov_a", sriovConf("a"))];
    await assert.rejects(
      assignDeviceIds(POD, delegates, { podResourcesSocket: socket }),
      /none left to this pod \(0 allocated, 0 used by earlier networks; the PodResources List has no entry for it\)/,
    );
  });
});

Deno.test("assignDeviceIds() reads the checkpoint when the PodResources socket is absent", async () => {
  const dir = await Deno.makeTempDir();
  const checkpointFile = join(dir, "kubelet_internal_checkpoint");
  await Deno.writeTextFile(checkpointFile, checkpointText());
  try {
    const delegates = [
      delegate("nfv/a", "intel.com/sriov_net_A", sriovConf("a")),
      delegate("nfv/b", "intel.com/sriov_net_A", sriovConf("b")),
      delegate("nfv/d", "intel.com/dpdk", sriovConf("d")),
    ];
    const pod = { namespace: "nfv", name: "p", uid: CHECKPOINT_POD_UID };
    const options = { podResourcesSocket: join(dir, "missing.sock"), checkpointFile };
    const allocation = await podDeviceAllocation(pod, options);
    assert.equal(allocation.source, "checkpoint");
    await assignDeviceIds(pod, delegates, options);
    assert.deepEqual(delegates.map((d) => d.deviceID), [
      "0000:03:02.3",
      "0000:03:02.0",
      "0000:05:00.1",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("assignDeviceIds() names both sources when neither can be read", async () => {
  const delegates = [delegate("nfv/a", "r/x", sriovConf("a"))];
  await assert.rejects(
    assignDeviceIds(POD, delegates, {
      podResourcesSocket: "/nonexistent/kubelet.sock",
      checkpointFile: "/nonexistent/kubelet_internal_checkpoint",
    }),
    (err: unknown) => {
      assert.ok(err instanceof CniError);
      assert.match(
        err.message,
        /^Cannot find the devices the kubelet allocated to pod "nfv\/dpdk-app": the kubelet PodResources socket "\/nonexistent\/kubelet.sock" does not exist and cannot read the kubelet device checkpoint "\/nonexistent\/kubelet_internal_checkpoint": /,
      );
      return true;
    },
  );
});

Deno.test("assignDeviceIds() does not contact the kubelet without resourceName", async () => {
  const delegates = [delegate("a", undefined, sriovConf("a"))];
  await assignDeviceIds(POD, delegates, {
    podResourcesSocket: "/nonexistent/kubelet.sock",
    checkpointFile: "/nonexistent/checkpoint",
  });
  assert.equal(delegates[0].deviceID, undefined);
});

Deno.test("assignDeviceIds() replaces a deviceID the selection asked for", async () => {
  await withKubelet({ pods: [TEST_POD] }, async (socket) => {
    const d = delegate("nfv/dpdk", "intel.com/dpdk", sriovConf("dpdk"));
    d.deviceID = "0000:99:00.0";
    await assignDeviceIds(POD, [d], { podResourcesSocket: socket });
    assert.equal(d.deviceID, "0000:05:00.1");
  });
});

Deno.test("podDeviceAllocation() orders a container's devices by NUMA node", async () => {
  const pod = {
    namespace: "nfv",
    name: "numa",
    containers: [{
      name: "c",
      devices: [
        { resourceName: "r/x", deviceIds: ["n1-a", "n1-b"], numa: [1] },
        { resourceName: "r/y", deviceIds: ["y"], numa: [0] },
        { resourceName: "r/x", deviceIds: ["n0-a"], numa: [0] },
      ],
    }],
  };
  await withKubelet({ pods: [pod] }, async (socket) => {
    const allocation = await podDeviceAllocation({ ...pod, uid: "" }, {
      podResourcesSocket: socket,
    });
    assert.equal(allocation.source, "PodResources Get");
    assert.deepEqual(allocation.devices.get("r/x"), ["n0-a", "n1-a", "n1-b"]);
    assert.deepEqual(allocation.devices.get("r/y"), ["y"]);
  });
});

Deno.test("podDeviceAllocation() needs the pod's namespace and name", async () => {
  await assert.rejects(
    podDeviceAllocation({ namespace: "", name: "p", uid: "u" }),
    /the pod name or namespace is unknown/,
  );
});

Deno.test("injectDeviceId() sets deviceID and pciBusID in every plugin of a conflist, keeping the other bytes", () => {
  const text = `{
  // an SR-IOV network with tuning
  "cniVersion": "1.0.0",
  "name": "sriov-list",
  "plugins": [
    /* {"type": "sriov"} in a comment */
    { "type": "sriov", "vlan": 7 },
    {"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"}}
  ],
  "extra": 12345678901234567890
}`;
  const config = injectDeviceId(parseNetworkConfig(text, "x"), "0000:03:02.3", "network x");
  assert.equal(
    config.raw,
    `{
  // an SR-IOV network with tuning
  "cniVersion": "1.0.0",
  "name": "sriov-list",
  "plugins": [
    /* {"type": "sriov"} in a comment */
    { "type": "sriov", "vlan": 7,"deviceID":"0000:03:02.3","pciBusID":"0000:03:02.3" },
    {"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1"},"deviceID":"0000:03:02.3","pciBusID":"0000:03:02.3"}
  ],
  "extra": 12345678901234567890
}`,
  );
  assert.equal(config.plugins.length, 2);
  assert.match(config.plugins[1].raw, /"pciBusID":"0000:03:02.3"\}$/);
});

Deno.test("injectDeviceId() replaces an existing deviceID in a conf", () => {
  const text = '{"type":"sriov","deviceID":"old","name":"n"}';
  assert.equal(
    injectDeviceId(parseNetworkConfig(text, "x"), "new", "x").raw,
    '{"type":"sriov","deviceID":"new","name":"n","pciBusID":"new"}',
  );
});
