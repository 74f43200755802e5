/** Tests of the device-info files (spec 1.1.0): paths, copy from the device plugin, read, remove. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, StorageError } from "../cni/errors.ts";
import {
  DEVICE_INFO_CNI_DIR,
  deviceInfoPath,
  devicePluginInfoPath,
  readDeviceInfo,
  removeDeviceInfo,
  writeDeviceInfo,
} from "./device_info.ts";
import { Logger } from "../log/logger.ts";

/** A quiet logger (level panic), as a request's is by default. */
const log = new Logger();
const CID = "3f2a1c0e9b8d7f6a5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f";
const ATTACHMENT = { network: "default/sriov-net", containerId: CID, ifName: "net1" };
const DEVICE = { resourceName: "intel.com/sriov_netdevice", deviceId: "0000:18:02.5" };
const DP_INFO =
  `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5","pf-pci-address":"0000:18:00.0"}}\n`;

async function dirs(): Promise<{ root: string; cniDir: string; dpDir: string }> {
  const root = await Deno.makeTempDir({ prefix: "nfv-devinfo-" });
  const dpDir = join(root, "dp");
  await Deno.mkdir(dpDir);
  return { root, cniDir: join(root, "cni"), dpDir };
}

Deno.test("deviceInfoPath() builds Multus's file name with / replaced by -", () => {
  assert.equal(
    deviceInfoPath(ATTACHMENT),
    `${DEVICE_INFO_CNI_DIR}/default-sriov-net-${CID}_net1`,
  );
  assert.equal(
    deviceInfoPath({ network: "sriov", containerId: "c1", ifName: "eth0" }, { cniDir: "/tmp/x/" }),
    "/tmp/x/sriov-c1_eth0",
  );
});

Deno.test("deviceInfoPath() refuses names that are not one file in the directory", () => {
  assert.throws(
    () => deviceInfoPath({ ...ATTACHMENT, ifName: "" }),
    (err: unknown) => err instanceof ConfigError && /the interface name is empty/.test(err.message),
  );
  assert.throws(() => deviceInfoPath({ ...ATTACHMENT, containerId: "a\0b" }), ConfigError);
  assert.throws(() => deviceInfoPath({ ...ATTACHMENT, containerId: "x".repeat(300) }), ConfigError);
  // `..` inside names is harmless once `/` is replaced: the file stays in the directory.
  assert.equal(
    deviceInfoPath({ network: "../../etc", containerId: "c", ifName: "i" }, { cniDir: "/d" }),
    "/d/..-..-etc-c_i",
  );
});

Deno.test("devicePluginInfoPath() follows the spec's dp file name", () => {
  assert.equal(
    devicePluginInfoPath(DEVICE),
    "/var/run/k8s.cni.cncf.io/devinfo/dp/intel.com-sriov_netdevice-0000:18:02.5-device.json",
  );
  assert.equal(
    devicePluginInfoPath({ resourceName: "a/b", deviceId: "x/y" }, { dpDir: "/dp" }),
    "/dp/a-b-x-y-device.json",
  );
});

Deno.test("writeDeviceInfo() copies the device plugin's file, readDeviceInfo() returns it, removeDeviceInfo() deletes it", async () => {
  const { root, cniDir, dpDir } = await dirs();
  try {
    await Deno.writeTextFile(devicePluginInfoPath(DEVICE, { dpDir }), DP_INFO);
    const path = await writeDeviceInfo(ATTACHMENT, DEVICE, { cniDir, dpDir, log });
    assert.equal(path, join(cniDir, `default-sriov-net-${CID}_net1`));
    assert.equal(await Deno.readTextFile(path!), DP_INFO, "copied byte for byte");
    assert.equal((await Deno.stat(path!)).mode! & 0o777, 0o444);
    assert.equal((await Deno.stat(cniDir)).mode! & 0o777, 0o755);
    assert.deepEqual(await readDeviceInfo(ATTACHMENT, { cniDir, log }), JSON.parse(DP_INFO));

    // A second ADD for the same attachment replaces the file.
    const updated = DP_INFO.replace("1.1.0", "1.0.0");
    await Deno.writeTextFile(devicePluginInfoPath(DEVICE, { dpDir }), updated);
    await writeDeviceInfo(ATTACHMENT, DEVICE, { cniDir, dpDir, log });
    assert.equal((await readDeviceInfo(ATTACHMENT, { cniDir, log }))?.version, "1.0.0");
    assert.deepEqual(
      [...Deno.readDirSync(cniDir)].map((e) => e.name),
      [`default-sriov-net-${CID}_net1`],
      "no temporary file left",
    );

    assert.equal(await removeDeviceInfo(ATTACHMENT, { cniDir }), true);
    assert.equal(await removeDeviceInfo(ATTACHMENT, { cniDir }), false, "absent is fine");
    assert.equal(await readDeviceInfo(ATTACHMENT, { cniDir, log }), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeDeviceInfo() writes nothing when the device plugin wrote no file", async () => {
  const { root, cniDir, dpDir } = await dirs();
  try {
    assert.equal(await writeDeviceInfo(ATTACHMENT, DEVICE, { cniDir, dpDir, log }), undefined);
    await assert.rejects(Deno.stat(cniDir), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeDeviceInfo() rejects a device plugin file that is not a JSON object", async () => {
  const { root, cniDir, dpDir } = await dirs();
  try {
    await Deno.writeTextFile(devicePluginInfoPath(DEVICE, { dpDir }), "[1,2]");
    await assert.rejects(writeDeviceInfo(ATTACHMENT, DEVICE, { cniDir, dpDir, log }), (err) => {
      assert.ok(err instanceof StorageError);
      assert.match(err.message, /is not a JSON object/);
      return true;
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("readDeviceInfo() ignores a file a plugin left broken", async () => {
  const { root, cniDir } = await dirs();
  try {
    await Deno.mkdir(cniDir);
    await Deno.writeTextFile(deviceInfoPath(ATTACHMENT, { cniDir }), "{broken");
    assert.equal(await readDeviceInfo(ATTACHMENT, { cniDir, log }), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
