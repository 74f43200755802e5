/**
 * The plugin's /proc paths under the permissions the compiled binary really has (the
 * launcher, `scripts/permission_flags`): a `/proc/<pid>/ns/net` netns as cri-dockerd passes
 * it, the guard against acting on the host's own netns (and what happens when that guard
 * cannot run), the stale temp-file cleanup that must spare live writers, and `/dev/stdin`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  delegatesModeConf,
  makeTestRoot,
  REPO_ROOT,
  startPlugin,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import {
  deleteHostLink,
  hostLinkExists,
  HostVeth,
  listFiles,
  sh,
  TestNetns,
} from "../helpers/netns.ts";

const ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1";

let subnetCounter = 10 + Math.floor(Math.random() * 100);

/** Delegates mode with one bridge + host-local network. */
function bridgeConf(root: TestRoot, bridge: string) {
  return delegatesModeConf(root, [{
    cniVersion: "1.0.0",
    name: "bridge-net",
    type: "bridge",
    bridge,
    ipam: {
      type: "host-local",
      subnet: `10.241.${subnetCounter++}.0/24`,
      dataDir: join(root.dir, "leases"),
    },
  }], { logLevel: "debug" });
}

/** Delegates mode with one macvlan + static network on `master`. */
function macvlanConf(root: TestRoot, master: string) {
  return delegatesModeConf(root, [{
    cniVersion: "1.0.0",
    name: "macvlan-net",
    type: "macvlan",
    master,
    mode: "bridge",
    ipam: { type: "static", addresses: [{ address: `10.242.${subnetCounter++}.10/24` }] },
  }]);
}

async function leases(root: TestRoot): Promise<string[]> {
  return (await listFiles(join(root.dir, "leases"))).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
}

/** A bind mount of the test's own (the host's) network namespace under /var/run/netns. */
async function bindHostNetns(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = `/var/run/netns/mt-host-${uniqueSuffix()}`;
  await Deno.mkdir("/var/run/netns", { recursive: true });
  await Deno.writeTextFile(path, "");
  await sh(["mount", "--bind", "/proc/self/ns/net", path]);
  return {
    path,
    async remove() {
      await sh(["umount", path], { allowFail: true });
      await Deno.remove(path).catch(() => {});
    },
  };
}

/**
 * Runs the plugin through its launcher in a mount namespace whose /proc is an empty tmpfs:
 * the plugin cannot see its own network namespace.
 */
function runWithoutProc(root: TestRoot, call: Parameters<TestRoot["run"]>[0]) {
  return startPlugin(
    join(root.binDir, "multus"),
    { path: [root.binDir, "/usr/lib/cni"], ...call },
    ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none /proc && exec "$0"'],
  ).done;
}

/** Starts `sleep` inside `ns` and returns it once it runs there. */
async function sleeperIn(ns: TestNetns): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, "sleep", "120"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  // `ip netns exec` enters the namespace, then becomes `sleep` (same pid).
  for (let i = 0; i < 500; i++) {
    const comm = await Deno.readTextFile(`/proc/${child.pid}/comm`).catch(() => "");
    if (comm.trim() === "sleep") return child;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill("SIGKILL");
  throw new Error("ip netns exec did not start sleep");
}

Deno.test("ADD and DEL with CNI_NETNS=/proc/<pid>/ns/net (as cri-dockerd passes it)", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  const sleeper = await sleeperIn(ns);
  try {
    const conf = bridgeConf(root, bridge);
    const netns = `/proc/${sleeper.pid}/ns/net`;
    const call = { containerId: `ctr-${uniqueSuffix()}`, netns, args: ARGS, config: conf };
    const add = await root.run({ command: "ADD", ...call });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const subnet = conf.delegates[0].ipam.subnet.replace(".0/24", "");
    assert.deepEqual(await ns.ipv4("eth0"), [`${subnet}.2/24`]);
    const result = add.json as { ips: { address: string }[]; interfaces: { sandbox?: string }[] };
    assert.deepEqual(result.ips.map((ip) => ip.address), [`${subnet}.2/24`]);
    assert.ok(result.interfaces.some((i) => i.sandbox === netns), JSON.stringify(result));

    const del = await root.run({ command: "DEL", ...call });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(await ns.link("eth0"), undefined, "eth0 is gone");
    assert.deepEqual(await leases(root), [], "the lease is released");
    assert.deepEqual(await listFiles(root.cniDir), [], "no cache is left");
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await ns.remove();
    await deleteHostLink(bridge);
    await root.cleanup();
  }
});

Deno.test("ADD into a bind mount of the host's own netns is refused and creates nothing", async () => {
  const root = await makeTestRoot();
  const veth = await HostVeth.create();
  const host = await bindHostNetns();
  const ifName = `mth${uniqueSuffix()}`;
  try {
    const add = await root.run({
      command: "ADD",
      containerId: `ctr-${uniqueSuffix()}`,
      netns: host.path,
      ifName,
      args: ARGS,
      config: macvlanConf(root, veth.a),
    });
    assert.equal(add.code, 1, add.stdout);
    assert.equal(add.json?.code, 4, add.stdout);
    assert.match(
      String(add.json?.msg),
      /^plugin's netns and netns from CNI_NETNS should not be the same \(ADD of pod "default\/web-1"\)$/,
    );
    assert.match(String(add.json?.details), /is the host's own network namespace/);
    assert.equal(await hostLinkExists(ifName), false, "no interface was added to the host");
    assert.deepEqual(await listFiles(root.cniDir), [], "no cache was written");
  } finally {
    await deleteHostLink(ifName);
    await host.remove();
    await veth.remove();
    await root.cleanup();
  }
});

Deno.test("DEL without a cache into a bind mount of the host's netns leaves host interfaces alone", async () => {
  const root = await makeTestRoot();
  const veth = await HostVeth.create();
  const host = await bindHostNetns();
  try {
    // The runtime names a host interface as CNI_IFNAME: a delegate's DEL would delete it.
    const del = await root.run({
      command: "DEL",
      containerId: `ctr-${uniqueSuffix()}`,
      netns: host.path,
      ifName: veth.a,
      args: ARGS,
      config: macvlanConf(root, veth.b),
    });
    assert.equal(del.json?.code, 4, del.stdout);
    assert.match(String(del.json?.msg), /should not be the same/);
    assert.equal(await hostLinkExists(veth.a), true, `${veth.a} is still there`);
  } finally {
    await host.remove();
    await veth.remove();
    await root.cleanup();
  }
});

Deno.test("without its own netns to compare, ADD fails saying why and attaches nothing", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  try {
    const add = await runWithoutProc(root, {
      command: "ADD",
      containerId: `ctr-${uniqueSuffix()}`,
      netns: ns.path,
      args: ARGS,
      config: bridgeConf(root, bridge),
    });
    assert.equal(add.code, 1, add.stdout);
    assert.equal(add.json?.code, 4, add.stdout);
    assert.equal(
      add.json?.msg,
      `Cannot add networks: cannot tell whether CNI_NETNS=${ns.path} is the host's own network ` +
        `namespace (cannot read /proc/self/ns/net: it does not exist) ` +
        `(ADD of pod "default/web-1")`,
    );
    assert.match(String(add.json?.details), /needs \/proc mounted and readable/);
    assert.equal(await ns.link("eth0"), undefined);
    assert.equal(await hostLinkExists(bridge), false, "no delegate ran");
    assert.deepEqual(await listFiles(root.cniDir), []);
  } finally {
    await ns.remove();
    await deleteHostLink(bridge);
    await root.cleanup();
  }
});

Deno.test("without its own netns to compare, DEL releases addresses but enters no netns", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  try {
    const conf = bridgeConf(root, bridge);
    const call = { containerId: `ctr-${uniqueSuffix()}`, netns: ns.path, args: ARGS, config: conf };
    const add = await root.run({ command: "ADD", ...call });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.equal((await leases(root)).length, 1);

    const del = await runWithoutProc(root, { command: "DEL", ...call });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await leases(root), [], "the lease is released");
    assert.deepEqual(await listFiles(root.cniDir), [], "the caches are gone");
    assert.ok(await ns.link("eth0"), "eth0 is untouched: no delegate entered the namespace");
    const log = await Deno.readTextFile(root.logFile);
    assert.match(log, /running the delegates without CNI_NETNS/);
  } finally {
    await ns.remove();
    await deleteHostLink(bridge);
    await root.cleanup();
  }
});

Deno.test("DEL removes the temp files of dead writers and keeps a live writer's", async () => {
  const root = await makeTestRoot();
  const live = new Deno.Command("sleep", { args: ["120"], stdout: "null", stderr: "null" }).spawn();
  try {
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const containerId = `ctr-${uniqueSuffix()}`;
    await Deno.mkdir(root.cniDir, { recursive: true });
    const liveTemp = `.${containerId}.tmp-${live.pid}-0123abcd`;
    const deadTemp = `.${containerId}.tmp-${dead.pid}-89abcdef`;
    for (const name of [liveTemp, deadTemp]) await Deno.writeTextFile(join(root.cniDir, name), "{");

    const del = await root.run({
      command: "DEL",
      containerId,
      args: ARGS,
      config: bridgeConf(root, `mtbr${uniqueSuffix()}`),
    });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await listFiles(root.cniDir), [liveTemp]);
  } finally {
    live.kill("SIGKILL");
    await live.status;
    await root.cleanup();
  }
});

Deno.test("multus validate reads /dev/stdin like any file, without Deno's permission hints", async () => {
  const config = {
    cniVersion: "1.0.0",
    name: "multus-cni-network",
    type: "multus",
    namespaceIsolation: true,
    delegates: [{ cniVersion: "1.0.0", name: "d", type: "bridge" }],
  };
  const child = new Deno.Command(join(REPO_ROOT, "scripts", "dev-multus"), {
    args: ["validate", "--bin-dir", "/usr/lib/cni", "/dev/stdin"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(config)));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.doesNotMatch(text, /allow-all|--allow-|NotCapable/);
  assert.equal(out.code, 0, text);
  assert.match(text, /checked 1 Multus config/);
});
