/**
 * The scratch cache as the record of what a container holds, attacked from the outside: a
 * second ADD for an attached container, GC of one multus network beside another one sharing
 * the cache dir, DEL with an unusable configuration or a corrupt cache, DEL of a pod whose
 * plan can never be built. For each: the plugin runs through its launcher in real network
 * namespaces with Debian's plugins, and the test checks what is left (interfaces, host-local
 * leases, cache files) and what the runtime is told.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeTestRoot, type TestRoot, uniqueSuffix } from "../helpers/plugin_run.ts";
import { deleteHostLink, HostVeth, listFiles, TestNetns } from "../helpers/netns.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import {
  assertCniError,
  assertNothingLeft,
  assertOk,
  leases,
  linkNames,
  nextOctet,
  writeScript,
} from "./_helpers.ts";

const ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1";

interface Node {
  root: TestRoot;
  veth: HostVeth;
  bridge: string;
  /** host-local's data dir of both networks. */
  leaseDir: string;
  octet: number;
  namespaces: TestNetns[];
  /** A fresh pod network namespace, removed by `cleanup`. */
  netns(): Promise<TestNetns>;
  cleanup(): Promise<void>;
}

async function node(): Promise<Node> {
  const root = await makeTestRoot();
  const veth = await HostVeth.create();
  const namespaces: TestNetns[] = [];
  const bridge = `mtbr${uniqueSuffix()}`;
  return {
    root,
    veth,
    bridge,
    leaseDir: join(root.dir, "leases"),
    octet: nextOctet(),
    namespaces,
    async netns() {
      const ns = await TestNetns.create();
      namespaces.push(ns);
      return ns;
    },
    async cleanup() {
      for (const ns of namespaces) await ns.remove();
      await veth.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
}

/** A bridge (eth0) and a macvlan (net1), both with host-local leases, in delegates mode. */
function delegatesConf(n: Node, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: "multus-records",
    type: "multus",
    cniDir: n.root.cniDir,
    binDir: n.root.binDir,
    logFile: n.root.logFile,
    logLevel: "debug",
    logToStderr: false,
    delegates: [
      {
        cniVersion: "1.0.0",
        name: "bridge-net",
        type: "bridge",
        bridge: n.bridge,
        isGateway: true,
        ipam: {
          type: "host-local",
          subnet: `10.236.${n.octet}.0/24`,
          dataDir: n.leaseDir,
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      {
        cniVersion: "1.0.0",
        name: "macvlan-net",
        type: "macvlan",
        master: n.veth.a,
        mode: "bridge",
        ipam: { type: "host-local", subnet: `10.237.${n.octet}.0/24`, dataDir: n.leaseDir },
      },
    ],
    ...extra,
  };
}

function run(
  n: Node,
  command: string,
  containerId: string,
  ns: TestNetns,
  config: string | Record<string, unknown>,
) {
  return n.root.run({ command, containerId, netns: ns.path, args: ARGS, config });
}

/** Container ids holding a host-local lease (the first line of each lease file). */
async function leaseOwners(leaseDir: string): Promise<string[]> {
  const owners: string[] = [];
  for (const file of await leases(leaseDir)) {
    owners.push((await Deno.readTextFile(join(leaseDir, file))).split(/\r?\n/)[0].trim());
  }
  return owners.sort();
}

function newContainerId(): string {
  return `rec-${uniqueSuffix()}${uniqueSuffix()}`;
}

Deno.test("a second ADD for an attached container is refused untouched; the runtime's DEL then releases everything the first ADD attached", async () => {
  const n = await node();
  try {
    const ns = await n.netns();
    const conf = delegatesConf(n);
    const id = newContainerId();
    assertOk(await run(n, "ADD", id, ns, conf), "first ADD");
    assert.deepEqual(await linkNames(ns), ["eth0", "lo", "net1"]);
    const cacheBefore = await Deno.readTextFile(join(n.root.cniDir, id));

    const again = await run(n, "ADD", id, ns, conf);
    const err = assertCniError(again, "second ADD");
    assert.match(err.msg, /already attached/);
    assert.match(err.msg, /default\/web-1/);
    assert.match(err.msg, /multus-records/);
    assert.match(String(err.details), /DEL/);
    assert.deepEqual(
      await linkNames(ns),
      ["eth0", "lo", "net1"],
      "the refused ADD touched nothing",
    );
    assert.equal((await leases(n.leaseDir)).length, 2, "both leases are still held");
    assert.equal(
      await Deno.readTextFile(join(n.root.cniDir, id)),
      cacheBefore,
      "the first ADD's record is unchanged",
    );

    assertOk(await run(n, "DEL", id, ns, conf), "the runtime's DEL");
    await assertNothingLeft(
      { namespaces: [ns], leaseDir: n.leaseDir, cniDir: n.root.cniDir },
      "after the DEL",
    );
  } finally {
    await n.cleanup();
  }
});

Deno.test("DEL without a scratch cache in delegates mode deletes the configured delegates", async () => {
  const n = await node();
  try {
    const ns = await n.netns();
    const conf = delegatesConf(n);
    const id = newContainerId();
    assertOk(await run(n, "ADD", id, ns, conf), "ADD");
    await Deno.remove(join(n.root.cniDir, id)); // lost with the node's disk, or never written
    assertOk(await run(n, "DEL", id, ns, conf), "DEL");
    await assertNothingLeft(
      { namespaces: [ns], leaseDir: n.leaseDir, cniDir: n.root.cniDir },
      "after the DEL",
    );
  } finally {
    await n.cleanup();
  }
});

Deno.test("DEL with an unusable config finds the scratch cache in the cniDir the text names, or fails so the runtime retries", async () => {
  const n = await node();
  try {
    const ns = await n.netns();
    const conf = delegatesConf(n);
    const text = JSON.stringify(conf);
    const cases: [string, string][] = [
      ["a syntax error after cniDir", text.replace('"logLevel":"debug"', '"logLevel":debug')],
      ["a truncated text that names cniDir", text.slice(0, text.indexOf('"delegates"') + 20)],
      ["a key of the wrong type", JSON.stringify({ ...conf, logToStderr: "no" })],
      [
        "cniDir spelled in another case",
        JSON.stringify({ ...conf, cniDir: undefined, CNIDIR: n.root.cniDir, logLevel: 3 }),
      ],
    ];
    for (const [label, broken] of cases) {
      const id = newContainerId();
      assertOk(await run(n, "ADD", id, ns, conf), `${label}: ADD`);
      assertOk(await run(n, "DEL", id, ns, broken), `${label}: DEL`);
      await assertNothingLeft(
        { namespaces: [ns], leaseDir: n.leaseDir, cniDir: n.root.cniDir },
        `${label}: after the DEL`,
      );
    }

    // The text ends before it says where the cache is: DEL must not claim success.
    const id = newContainerId();
    assertOk(await run(n, "ADD", id, ns, conf), "ADD");
    const unknownDir = text.slice(0, text.indexOf('"cniDir"'));
    const err = assertCniError(await run(n, "DEL", id, ns, unknownDir), "DEL without cniDir");
    assert.match(err.msg, /cniDir/);
    assert.match(err.msg, /default\/web-1/);
    assert.deepEqual(await linkNames(ns), ["eth0", "lo", "net1"], "nothing was released");
    assert.ok((await listFiles(n.root.cniDir)).includes(id), "the scratch cache is kept");
    assertOk(await run(n, "DEL", id, ns, conf), "DEL once the config is fixed");
    await assertNothingLeft(
      { namespaces: [ns], leaseDir: n.leaseDir, cniDir: n.root.cniDir },
      "after the retried DEL",
    );
  } finally {
    await n.cleanup();
  }
});

Deno.test("a corrupt scratch cache is kept; DEL releases what the config rebuilds, and fails when nothing can be rebuilt", async () => {
  const n = await node();
  try {
    const ns = await n.netns();
    const conf = delegatesConf(n);
    for (const corrupt of ["truncated", "[]"]) {
      const id = newContainerId();
      assertOk(await run(n, "ADD", id, ns, conf), `${corrupt}: ADD`);
      const path = join(n.root.cniDir, id);
      const good = await Deno.readTextFile(path);
      const bad = corrupt === "[]" ? "[]" : good.slice(0, good.length / 2);
      await Deno.writeTextFile(path, bad);

      // An unusable config (cniDir still readable from it) rebuilds nothing: DEL fails.
      const unusable = JSON.stringify({ ...conf, delegates: "none" });
      const err = assertCniError(await run(n, "DEL", id, ns, unusable), `${corrupt}: DEL`);
      assert.match(err.msg, new RegExp(id));
      assert.match(err.msg, /default\/web-1/);
      assert.deepEqual(await linkNames(ns), ["eth0", "lo", "net1"], `${corrupt}: nothing released`);
      assert.equal(await Deno.readTextFile(path), bad, `${corrupt}: the file is kept as it was`);

      // The configured delegates are what can be rebuilt: released, the file still kept.
      assertOk(await run(n, "DEL", id, ns, conf), `${corrupt}: DEL with the config`);
      await assertNothingLeft({ namespaces: [ns], leaseDir: n.leaseDir }, `${corrupt}: DEL`);
      assert.equal(await Deno.readTextFile(path), bad, `${corrupt}: kept for inspection`);
      assert.deepEqual(await listFiles(join(n.root.cniDir, "results")), [], `${corrupt}: results`);
      await Deno.remove(path);
    }
  } finally {
    await n.cleanup();
  }
});

Deno.test("a corrupt scratch cache in Kubernetes mode: DEL rebuilds the pod's networks from the API, and retries while the API is down", async () => {
  const octet = nextOctet();
  const f = await startK8sFixture({ clusterSubnet: `10.238.${octet}`, name: "multus-records" });
  try {
    const pod = f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        annotations: { "k8s.v1.cni.cncf.io/networks": "mv-rec" },
      },
    });
    f.macvlanNad("mv-rec", {
      ipam: { type: "host-local", subnet: `10.239.${octet}.0/24`, dataDir: f.leaseDir },
    });
    const conf = f.multusConf({ apiTimeoutSeconds: 2 });
    const args = (id: string) =>
      `${ARGS};K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=${pod.metadata.uid}`;
    for (const apiDown of [false, true]) {
      const id = newContainerId();
      const call = (command: string) =>
        f.root.run({ command, containerId: id, netns: f.ns.path, args: args(id), config: conf });
      assertOk(await call("ADD"), "ADD");
      assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"]);
      await Deno.writeTextFile(join(f.root.cniDir, id), '[{"Conf":{"cniVersion":"1.0');
      if (apiDown) {
        f.api.inject({ kind: "refuse" });
        const err = assertCniError(await call("DEL"), "DEL with the API down");
        assert.equal(err.code, 11, "try again later");
        assert.match(err.msg, /default\/web-1/);
        assert.ok(await f.ns.link("net1"), "the network only the API knows is not forgotten");
        f.api.clearFaults();
      }
      assertOk(await call("DEL"), `DEL (API down before: ${apiDown})`);
      assert.deepEqual(await linkNames(f.ns), ["lo"], "both networks released");
      assert.deepEqual(await leases(f.leaseDir), [], "both leases released");
      await Deno.remove(join(f.root.cniDir, id));
    }
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL of a pod whose interface names clash succeeds: the ADD failed before anything was attached", async () => {
  const octet = nextOctet();
  const f = await startK8sFixture({ clusterSubnet: `10.238.${octet}`, name: "multus-records" });
  try {
    for (const name of ["mv1", "mv2", "a", "b"]) {
      f.macvlanNad(name, { ipam: { type: "static", addresses: [{ address: "10.239.0.9/24" }] } });
    }
    const conf = f.multusConf();
    for (const annotation of ["mv1@net2,mv2", "mv1@eth0", "a@x1,b@x1"]) {
      const pod = f.api.setPod({
        metadata: {
          name: "web-1",
          namespace: "default",
          annotations: { "k8s.v1.cni.cncf.io/networks": annotation },
        },
      });
      const id = newContainerId();
      const call = (command: string) =>
        f.root.run({
          command,
          containerId: id,
          netns: f.ns.path,
          args: `${ARGS};K8S_POD_UID=${pod.metadata.uid}`,
          config: conf,
        });
      const add = assertCniError(await call("ADD"), `${annotation}: ADD`);
      assert.equal(add.code, 7, annotation);
      assert.match(add.msg, /both would get interface/, annotation);
      assert.deepEqual(await linkNames(f.ns), ["lo"], `${annotation}: nothing attached`);
      for (const attempt of [1, 2]) {
        const del = await call("DEL");
        assertOk(del, `${annotation}: DEL ${attempt}`);
        assert.equal(del.stdout, "");
      }
      await assertNothingLeft(
        { namespaces: [f.ns], leaseDir: f.leaseDir, cniDir: f.root.cniDir },
        annotation,
      );
    }
  } finally {
    await f.cleanup();
  }
});

/** A 1.1.0 delegate that attaches nothing and records every call and every GC input. */
async function writeGcProbe(n: Node): Promise<{ calls: string; gcInputs: string }> {
  const calls = join(n.root.dir, "probe-calls");
  const gcInputs = join(n.root.dir, "probe-gc");
  await writeScript(
    n.root.binDir,
    "gc-probe",
    `
input=$(cat)
echo "$CNI_COMMAND \${CNI_CONTAINERID:-} \${CNI_IFNAME:-}" >> "${calls}"
case "$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.1.0","interfaces":[],"ips":[]}' ;;
  GC) printf '%s\\n' "$input" >> "${gcInputs}" ;;
  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
esac
exit 0
`,
  );
  return { calls, gcInputs };
}

Deno.test("GC of one multus network never releases another network's attachments, nor ones it cannot attribute; a GC without the list is refused", async () => {
  const n = await node();
  try {
    const probe = await writeGcProbe(n);
    const base = delegatesConf(n, { cniVersion: "1.1.0" });
    const delegates = base.delegates as Record<string, unknown>[];
    const withProbe = [
      delegates[0],
      { cniVersion: "1.1.0", name: "probe-net", type: "gc-probe" },
    ];
    const netA = { ...base, name: "net-a", delegates: withProbe };
    const netB = { ...base, name: "net-b", delegates: withProbe };

    const listed = { id: newContainerId(), ns: await n.netns() };
    const stale = { id: newContainerId(), ns: await n.netns() };
    const other = { id: newContainerId(), ns: await n.netns() };
    const legacy = { id: newContainerId(), ns: await n.netns() };
    for (
      const [c, conf] of [[listed, netA], [stale, netA], [other, netB], [legacy, netA]] as const
    ) {
      assertOk(await run(n, "ADD", c.id, c.ns, conf), `ADD ${c.id}`);
    }
    // A cache without the network's name, as Multus and earlier versions wrote it.
    const legacyPath = join(n.root.cniDir, legacy.id);
    const entries = JSON.parse(await Deno.readTextFile(legacyPath)) as Record<string, unknown>[];
    for (const e of entries) delete e.multusNetwork;
    await Deno.writeTextFile(legacyPath, JSON.stringify(entries));
    const allFour = [listed.id, stale.id, other.id, legacy.id].sort();
    assert.deepEqual(await leaseOwners(n.leaseDir), allFour);

    // Without the runtime's list every attachment would look stale: refused, nothing released.
    const refused = assertCniError(await n.root.run({ command: "GC", config: netA }), "GC");
    assert.equal(refused.code, 7);
    assert.match(refused.msg, /cni\.dev\/valid-attachments/);
    assert.match(refused.msg, /net-a/);
    assert.deepEqual(
      await leaseOwners(n.leaseDir),
      allFour,
      "a GC without the list releases nothing",
    );

    const gc = await n.root.run({
      command: "GC",
      config: {
        ...netA,
        "cni.dev/valid-attachments": [{ containerID: listed.id, ifname: "eth0" }],
      },
    });
    assertOk(gc, "GC of net-a");
    assert.deepEqual(
      await leaseOwners(n.leaseDir),
      [listed.id, other.id, legacy.id].sort(),
      "only net-a's unlisted container is released",
    );
    for (const c of [listed, other, legacy]) {
      assert.deepEqual(await linkNames(c.ns), ["eth0", "lo"], `${c.id} keeps eth0`);
    }
    const files = await listFiles(n.root.cniDir);
    assert.deepEqual(
      files.filter((p) => !p.startsWith("results/")),
      [listed.id, other.id, legacy.id].sort(),
      "scratch caches",
    );
    for (const c of [listed, other, legacy]) {
      assert.ok(files.includes(`results/bridge-net-${c.id}-eth0`), `${c.id}: result cache kept`);
      assert.ok(files.includes(`results/probe-net-${c.id}-net1`), `${c.id}: result cache kept`);
    }
    assert.ok(!files.some((p) => p.includes(stale.id)), "the stale container's caches are gone");
    const probeDels = (await Deno.readTextFile(probe.calls)).split("\n").filter((l) =>
      l.startsWith("DEL ")
    );
    assert.deepEqual(probeDels, [`DEL ${stale.id} net1`], "the probe saw one DEL: the stale one");
    const gcInput = JSON.parse(
      (await Deno.readTextFile(probe.gcInputs)).trim().split("\n").at(-1)!,
    );
    const validForProbe = (gcInput["cni.dev/valid-attachments"] as { containerID: string }[])
      .map((a) => a.containerID);
    for (const c of [listed, other, legacy]) {
      assert.ok(validForProbe.includes(c.id), `the probe's GC keeps ${c.id}`);
    }
    assert.ok(!validForProbe.includes(stale.id));

    for (const [c, conf] of [[listed, netA], [other, netB], [legacy, netA]] as const) {
      assertOk(await run(n, "DEL", c.id, c.ns, conf), `DEL ${c.id}`);
    }
    await assertNothingLeft({ leaseDir: n.leaseDir, cniDir: n.root.cniDir }, "after the DELs");
  } finally {
    await n.cleanup();
  }
});
