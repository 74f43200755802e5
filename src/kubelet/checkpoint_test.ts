/** Tests of the kubelet device checkpoint reader. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { StorageError } from "../cni/errors.ts";
import { checkpointEntriesOf, parseCheckpoint, readCheckpoint } from "./checkpoint.ts";
import { CHECKPOINT_POD_UID as UID, checkpointText } from "../../tests/nfv/_kubelet.ts";

Deno.test("parseCheckpoint() reads entries, NUMA nodes in ascending order", () => {
  const entries = parseCheckpoint(checkpointText(), "cp");
  assert.equal(entries.length, 3);
  assert.deepEqual(entries[0], {
    podUid: UID,
    containerName: "app",
    resourceName: "intel.com/sriov_net_A",
    deviceIds: ["0000:03:02.3", "0000:03:02.0"],
  });
  assert.deepEqual(entries[1].deviceIds, ["0000:05:00.1", "0000:05:00.2", "0000:05:00.3"]);
});

Deno.test("parseCheckpoint() reads the old list format and an empty checkpoint", () => {
  const old = JSON.stringify({
    Data: {
      PodDeviceEntries: [{
        PodUID: UID,
        ContainerName: "c",
        ResourceName: "r",
        DeviceIDs: ["b", "a"],
        AllocResp: "",
      }],
    },
    Checksum: 1,
  });
  assert.deepEqual(parseCheckpoint(old, "cp")[0].deviceIds, ["b", "a"]);
  assert.deepEqual(
    parseCheckpoint('{"Data":{"PodDeviceEntries":null,"RegisteredDevices":{}},"Checksum":0}', "cp"),
    [],
  );
});

Deno.test("parseCheckpoint() rejects data that is not a device checkpoint", () => {
  assert.throws(() => parseCheckpoint("BAD BAD DATA", "/cp"), (err: unknown) => {
    assert.ok(err instanceof StorageError);
    assert.match(err.message, /^Cannot use the kubelet device checkpoint "\/cp": invalid JSON/);
    return true;
  });
  assert.throws(() => parseCheckpoint("{}", "/cp"), /no "Data" object/);
  assert.throws(
    () => parseCheckpoint('{"Data":{"PodDeviceEntries":[{"DeviceIDs":{"0":"x"}}]}}', "/cp"),
    /Data.PodDeviceEntries\[0\].DeviceIDs is malformed/,
  );
});

Deno.test("checkpointEntriesOf() returns the pod's entries by UID", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "kubelet_internal_checkpoint");
  await Deno.writeTextFile(file, checkpointText());
  try {
    const entries = await checkpointEntriesOf(UID, { file });
    assert.deepEqual(entries.map((e) => e.resourceName), [
      "intel.com/sriov_net_A",
      "intel.com/dpdk",
    ]);
    assert.deepEqual(await checkpointEntriesOf("unknown", { file }), []);
    await assert.rejects(checkpointEntriesOf("", { file }), /the pod UID is unknown/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCheckpoint() reports a missing file", async () => {
  await assert.rejects(readCheckpoint("/nonexistent/kubelet_internal_checkpoint"), (err) => {
    assert.ok(err instanceof StorageError);
    assert.match(
      err.message,
      /^Cannot read the kubelet device checkpoint "\/nonexistent\/kubelet_internal_checkpoint": /,
    );
    return true;
  });
});
