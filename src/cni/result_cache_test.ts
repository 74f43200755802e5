import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CachedAttachment,
  listCachedAttachments,
  readCachedResult,
  removeCachedResult,
  resultCachePath,
  writeCachedResult,
} from "./result_cache.ts";
import { CniError } from "./errors.ts";
import { Logger } from "../log/logger.ts";

const log = new Logger();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "result_cache_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CONFIG = '{"cniVersion":"1.0.0","name":"dbnet","plugins":[{"type":"bridge"}]}';

const ENTRY: CachedAttachment = {
  containerId: "ctr1",
  ifName: "eth0",
  networkName: "dbnet",
  config: CONFIG,
  netns: "/var/run/netns/blue",
  cniArgs: [["IgnoreUnknown", "true"], ["K8S_POD_NAME", "p"]],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
  result: {
    cniVersion: "1.0.0",
    interfaces: [{ name: "eth0", mac: "c2:11:22:33:44:55", sandbox: "/var/run/netns/blue" }],
    ips: [{ interface: 0, address: "10.1.0.5/16", gateway: "10.1.0.1" }],
  },
};

Deno.test("resultCachePath() builds libcni's path", () => {
  assert.equal(
    resultCachePath("/var/lib/cni/multus", ENTRY),
    "/var/lib/cni/multus/results/dbnet-ctr1-eth0",
  );
});

Deno.test("resultCachePath() rejects components that could escape the directory", () => {
  const bad: Pick<CachedAttachment, "networkName" | "containerId" | "ifName">[] = [
    { networkName: "../etc", containerId: "ctr1", ifName: "eth0" },
    { networkName: "", containerId: "ctr1", ifName: "eth0" },
    { networkName: "a/b", containerId: "ctr1", ifName: "eth0" },
    { networkName: "net", containerId: "../../x", ifName: "eth0" },
    { networkName: "net", containerId: "", ifName: "eth0" },
    { networkName: "net", containerId: "ctr1", ifName: ".." },
    { networkName: "net", containerId: "ctr1", ifName: "a/b" },
    { networkName: "net", containerId: "ctr1", ifName: "" },
  ];
  for (const key of bad) {
    assert.throws(() => resultCachePath("/cache", key), CniError, JSON.stringify(key));
  }
});

Deno.test("writeCachedResult() writes libcni's cniCacheV1 JSON exactly", async () => {
  await withTempDir(async (dir) => {
    await writeCachedResult(dir, ENTRY);
    const path = join(dir, "results", "dbnet-ctr1-eth0");
    assert.equal(
      await Deno.readTextFile(path),
      '{"kind":"cniCacheV1","containerId":"ctr1",' +
        '"config":"eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoiZGJuZXQiLCJwbHVnaW5zIjpbeyJ0eXBlIjoiYnJpZGdlIn1dfQ==",' +
        '"ifName":"eth0","networkName":"dbnet","netns":"/var/run/netns/blue",' +
        '"cniArgs":[["IgnoreUnknown","true"],["K8S_POD_NAME","p"]],' +
        '"capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},' +
        '"result":{"cniVersion":"1.0.0","interfaces":[{"mac":"c2:11:22:33:44:55","name":"eth0",' +
        '"sandbox":"/var/run/netns/blue"}],"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1",' +
        '"interface":0}]}}',
    );
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(join(dir, "results"))).mode! & 0o777, 0o700);
  });
});

Deno.test("writeCachedResult() omits empty optional fields", async () => {
  await withTempDir(async (dir) => {
    await writeCachedResult(dir, {
      containerId: "c",
      ifName: "net1",
      networkName: "n",
      config: "{}",
      netns: "",
      cniArgs: [],
      capabilityArgs: {},
    });
    assert.equal(
      await Deno.readTextFile(join(dir, "results", "n-c-net1")),
      '{"kind":"cniCacheV1","containerId":"c","config":"e30=","ifName":"net1","networkName":"n"}',
    );
  });
});

Deno.test("writeCachedResult() escapes HTML characters as Go does", async () => {
  await withTempDir(async (dir) => {
    await writeCachedResult(dir, { ...ENTRY, config: "<&>", cniArgs: [["A", "<b>&"]] });
    const text = await Deno.readTextFile(join(dir, "results", "dbnet-ctr1-eth0"));
    assert.match(text, /"cniArgs":\[\["A","\\u003cb\\u003e\\u0026"\]\]/);
    const read = await readCachedResult(dir, ENTRY, log);
    assert.equal(read?.config, "<&>");
    assert.deepEqual(read?.cniArgs, [["A", "<b>&"]]);
  });
});

Deno.test("readCachedResult(, log) reads back what was written", async () => {
  await withTempDir(async (dir) => {
    await writeCachedResult(dir, ENTRY);
    assert.deepEqual(await readCachedResult(dir, ENTRY, log), ENTRY);
  });
});

Deno.test("readCachedResult(, log) accepts a legacy bare result", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "results"));
    const result = { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.2/24" }] };
    await Deno.writeTextFile(join(dir, "results", "dbnet-ctr1-eth0"), JSON.stringify(result));
    assert.deepEqual(await readCachedResult(dir, ENTRY, log), {
      containerId: "ctr1",
      ifName: "eth0",
      networkName: "dbnet",
      config: "",
      result,
    });
  });
});

Deno.test("readCachedResult(, log) returns undefined for absent or unreadable files", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await readCachedResult(dir, ENTRY, log), undefined);
    await Deno.mkdir(join(dir, "results"));
    const path = join(dir, "results", "dbnet-ctr1-eth0");
    for (const text of ["{not json", "[1,2]", '{"kind":"cniCacheV1","config":5}']) {
      await Deno.writeTextFile(path, text);
      assert.equal(await readCachedResult(dir, ENTRY, log), undefined, text);
    }
  });
});

Deno.test("removeCachedResult() removes the entry and accepts an absent one", async () => {
  await withTempDir(async (dir) => {
    await writeCachedResult(dir, ENTRY);
    await removeCachedResult(dir, ENTRY);
    assert.equal(await readCachedResult(dir, ENTRY, log), undefined);
    await removeCachedResult(dir, ENTRY);
  });
});

Deno.test("listCachedAttachments() lists valid entries sorted, optionally by container", async () => {
  await withTempDir(async (dir) => {
    assert.deepEqual(await listCachedAttachments(dir), []);
    await writeCachedResult(dir, { ...ENTRY, networkName: "zeta" });
    await writeCachedResult(dir, { ...ENTRY, networkName: "alpha", ifName: "net1" });
    await writeCachedResult(dir, { ...ENTRY, containerId: "other" });
    const results = join(dir, "results");
    // Not cniCacheV1, empty networkName, mismatching containerId: all skipped.
    await Deno.writeTextFile(join(results, "legacy-ctr1-eth1"), '{"cniVersion":"0.4.0"}');
    await Deno.writeTextFile(
      join(results, "x-ctr1-eth2"),
      '{"kind":"cniCacheV1","containerId":"ctr1","config":"","ifName":"eth2","networkName":""}',
    );
    await Deno.writeTextFile(
      join(results, "y-ctr1-eth3"),
      '{"kind":"cniCacheV1","containerId":"ctr2","config":"","ifName":"eth3","networkName":"y"}',
    );
    await Deno.writeTextFile(join(results, "broken-ctr1-eth4"), "{");

    const all = await listCachedAttachments(dir);
    assert.deepEqual(all.map((e) => `${e.networkName}/${e.containerId}/${e.ifName}`), [
      "alpha/ctr1/net1",
      "dbnet/other/eth0",
      "y/ctr2/eth3",
      "zeta/ctr1/eth0",
    ]);
    const mine = await listCachedAttachments(dir, { containerId: "ctr1" });
    assert.deepEqual(mine.map((e) => e.networkName), ["alpha", "zeta"]);
    assert.deepEqual(mine[1], { ...ENTRY, networkName: "zeta" });
  });
});
