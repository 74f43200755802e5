/**
 * Tests of the `sriov` stand-in delegate (tests/nfv/sriov_standin.sh) run directly as a CNI
 * plugin in a fresh network namespace: it is what the end-to-end tests attach for SR-IOV
 * networks.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TestNetns } from "../helpers/netns.ts";
import { runPlugin } from "../helpers/plugin_run.ts";

const STANDIN = join(dirname(fileURLToPath(import.meta.url)), "sriov_standin.sh");

Deno.test("sriov stand-in: ADD records its input and creates CNI_IFNAME in the netns, DEL removes it", async () => {
  const ns = await TestNetns.create();
  const dir = await Deno.makeTempDir({ prefix: "nfv-standin-" });
  const record = join(dir, "calls.jsonl");
  const config = {
    cniVersion: "1.0.0",
    name: "sriov-net",
    type: "sriov",
    deviceID: "0000:03:02.3",
    pciBusID: "0000:03:02.3",
    runtimeConfig: { deviceID: "0000:03:02.3" },
  };
  const call = {
    containerId: "ctr-standin-1",
    netns: ns.path,
    ifName: "net1",
    args: "IgnoreUnknown=true;K8S_POD_NAME=p",
    config,
    env: { SRIOV_STANDIN_RECORD: record },
  };
  try {
    const add = await runPlugin(STANDIN, { command: "ADD", ...call });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const result = add.json as { cniVersion: string; interfaces: Record<string, string>[] };
    assert.equal(result.cniVersion, "1.0.0");
    assert.equal(result.interfaces[1].name, "net1");
    assert.equal(result.interfaces[1].sandbox, ns.path);
    const link = await ns.link("net1");
    assert.ok(link, "net1 exists in the netns");
    assert.equal(link.address, result.interfaces[1].mac);

    const check = await runPlugin(STANDIN, { command: "CHECK", ...call });
    assert.equal(check.code, 0, check.stdout);

    const del = await runPlugin(STANDIN, { command: "DEL", ...call });
    assert.equal(del.code, 0);
    assert.equal(await ns.link("net1"), undefined);
    const again = await runPlugin(STANDIN, { command: "DEL", ...call });
    assert.equal(again.code, 0, "DEL is idempotent");

    const lines = (await Deno.readTextFile(record)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.command), ["ADD", "CHECK", "DEL", "DEL"]);
    assert.deepEqual(lines[0].config, config);
    assert.equal(lines[0].ifName, "net1");
    assert.equal(lines[0].args, "IgnoreUnknown=true;K8S_POD_NAME=p");
  } finally {
    await ns.remove();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sriov stand-in: ADD without deviceID fails as sriov-cni does; recordFile key wins", async () => {
  const ns = await TestNetns.create();
  const dir = await Deno.makeTempDir({ prefix: "nfv-standin-" });
  const record = join(dir, "by-key.jsonl");
  try {
    const add = await runPlugin(STANDIN, {
      command: "ADD",
      containerId: "ctr-standin-2",
      netns: ns.path,
      ifName: "net1",
      config: { cniVersion: "1.0.0", name: "n", type: "sriov", recordFile: record },
      env: { SRIOV_STANDIN_RECORD: join(dir, "by-env.jsonl") },
    });
    assert.equal(add.code, 1);
    assert.deepEqual(add.json, { cniVersion: "1.0.0", code: 7, msg: "VF pci addr is required" });
    assert.equal(await ns.link("net1"), undefined);
    assert.equal((await Deno.readTextFile(record)).trim().split("\n").length, 1);
    await assert.rejects(Deno.stat(join(dir, "by-env.jsonl")), Deno.errors.NotFound);
  } finally {
    await ns.remove();
    await Deno.remove(dir, { recursive: true });
  }
});
