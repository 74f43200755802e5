/**
 * `multus install --mode=daemon` as the thick DaemonSet runs it: the binary also as
 * `multus-shim`, the shim config in front of the primary, `multus.d/thin.conf` (exactly what
 * thin mode writes as 00-multus.conf) and the daemon configuration when asked; and the shim
 * run by the runtime with the written config attaches and releases a pod from thin.conf while
 * no daemon runs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeRoot,
  readOrUndefined,
  removeRoot,
  runInstallOnce,
  RunningInstall,
  tree,
  waitFor,
  writeJson,
} from "./_helpers.ts";
import { runPlugin, SYSTEM_CNI_DIR, uniqueSuffix } from "../helpers/plugin_run.ts";
import { deleteHostLink, listFiles, TestNetns } from "../helpers/netns.ts";
import { startTestApiServer } from "../k8s_api/server.ts";

let subnet = 60 + Math.floor(Math.random() * 120);

/** An install root whose primary config is a bridge with host-local leases in the root. */
async function daemonRoot(cniVersion = "0.4.0") {
  const root = await makeRoot();
  const bridge = `mtbr${uniqueSuffix()}`;
  const leaseDir = join(root.dir, "leases");
  const socketDir = join(root.dir, "run", "multus");
  const n = subnet++;
  await writeJson(join(root.conf, "10-bridge.conf"), {
    cniVersion,
    name: "cluster-bridge",
    type: "bridge",
    bridge,
    isGateway: true,
    capabilities: { portMappings: true },
    ipam: {
      type: "host-local",
      subnet: `10.243.${n}.0/24`,
      dataDir: leaseDir,
      routes: [{ dst: "0.0.0.0/0" }],
    },
  });
  root.args.push("--mode=daemon", `--daemon-socket-dir=${socketDir}`);
  return { root, bridge, leaseDir, socketDir, subnet: n };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("install --mode=daemon writes multus-shim, the shim config and thin.conf", async () => {
  const { root, socketDir } = await daemonRoot();
  try {
    const run = await runInstallOnce(root, ["--skip-config-watch"]);
    assert.equal(run.code, 0, run.stderr);

    // The same binary (here the launcher) under both names.
    assert.deepEqual(await tree(root.bin), ["multus", "multus-shim"]);
    assert.equal(
      await Deno.readTextFile(join(root.bin, "multus-shim")),
      await Deno.readTextFile(join(root.bin, "multus")),
    );
    assert.equal(((await Deno.stat(join(root.bin, "multus-shim"))).mode ?? 0) & 0o777, 0o755);

    const thinPath = join(root.conf, "multus.d", "thin.conf");
    const kubeconfig = join(root.conf, "multus.d", "multus.kubeconfig");
    const primary = join(root.conf, "10-bridge.conf");
    assert.deepEqual(await readJson(join(root.conf, "00-multus.conf")), {
      cniVersion: "0.4.0",
      name: "multus-cni-network",
      type: "multus-shim",
      capabilities: { portMappings: true },
      daemonSocketDir: socketDir,
      thinConfig: thinPath,
      confDir: root.multusNetd,
      clusterNetwork: primary,
    });
    assert.deepEqual(await readJson(thinPath), {
      cniVersion: "0.4.0",
      name: "multus-cni-network",
      type: "multus",
      capabilities: { portMappings: true },
      confDir: root.multusNetd,
      kubeconfig,
      clusterNetwork: primary,
    });
    assert.deepEqual(await tree(root.conf), [
      "00-multus.conf",
      "10-bridge.conf",
      "multus.d/",
      "multus.d/multus.kubeconfig",
      "multus.d/thin.conf",
    ]);
    // The fallback is written before the config that needs it.
    assert.match(run.stderr, /Wrote .*thin\.conf:(.|\n)*Wrote .*00-multus\.conf:/);

    // thin.conf is byte for byte what thin mode writes as 00-multus.conf.
    const thinText = await Deno.readTextFile(thinPath);
    const thin = await runInstallOnce(root, ["--skip-config-watch", "--mode=thin"]);
    assert.equal(thin.code, 0, thin.stderr);
    assert.equal(await Deno.readTextFile(join(root.conf, "00-multus.conf")), thinText);
    // And back: the shim config replaces the thin one in place.
    const again = await runInstallOnce(root, ["--skip-config-watch", "--mode=thick"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((await readJson(join(root.conf, "00-multus.conf"))).type, "multus-shim");
    assert.match(again.stderr, /thin\.conf is up to date/);
  } finally {
    await removeRoot(root);
  }
});

Deno.test("install --mode=daemon with cniVersion 1.0.0 writes 00-multus.conflist and a flat thin.conf; host-only keys stay in thin.conf", async () => {
  const { root } = await daemonRoot("1.0.0");
  try {
    const run = await runInstallOnce(root, [
      "--skip-config-watch",
      "--skip-multus-binary-copy",
      "--readiness-indicator-file=/run/flannel/subnet.env",
      "--namespace-isolation",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const list = await readJson(join(root.conf, "00-multus.conflist"));
    assert.equal(list.cniVersion, "1.0.0");
    const plugins = list.plugins as Record<string, unknown>[];
    assert.equal(plugins.length, 1);
    assert.equal(plugins[0].type, "multus-shim");
    assert.equal(plugins[0].kubeconfig, undefined);
    assert.equal(plugins[0].readinessindicatorfile, undefined);
    assert.equal(plugins[0].namespaceIsolation, true);
    // The shim lays thin.conf's top-level keys over the request: never a list.
    const thin = await readJson(join(root.conf, "multus.d", "thin.conf"));
    assert.equal(thin.type, "multus");
    assert.equal(thin.plugins, undefined);
    assert.equal(thin.clusterNetwork, join(root.conf, "10-bridge.conf"));
    assert.equal(thin.readinessindicatorfile, "/run/flannel/subnet.env");
    assert.equal(thin.namespaceIsolation, true);
    assert.equal(await readOrUndefined(join(root.conf, "00-multus.conf")), undefined);
  } finally {
    await removeRoot(root);
  }
});

Deno.test("with no daemon, the shim run with the written config attaches and releases the pod from thin.conf", async () => {
  const api = await startTestApiServer();
  const { root, bridge, leaseDir, socketDir, subnet } = await daemonRoot();
  const ns = await TestNetns.create();
  const containerId = `ctr-${uniqueSuffix()}${uniqueSuffix()}`;
  try {
    // The DaemonSet pod's service account, pointing at the test API server.
    await Deno.writeTextFile(join(root.sa, "token"), api.token);
    await Deno.writeTextFile(join(root.sa, "ca.crt"), api.caPem);
    root.env.KUBERNETES_SERVICE_HOST = "127.0.0.1";
    root.env.KUBERNETES_SERVICE_PORT = String(api.port);
    const install = await runInstallOnce(root, ["--skip-config-watch"]);
    assert.equal(install.code, 0, install.stderr);
    const pod = api.setPod({ metadata: { name: "web-1", namespace: "default" } });

    // As the runtime runs it: the plugin named by the first config's type, that config on stdin.
    const shimConfig = await Deno.readTextFile(join(root.conf, "00-multus.conf"));
    const call = (command: string) =>
      runPlugin(join(root.bin, "multus-shim"), {
        command,
        containerId,
        netns: ns.path,
        ifName: "eth0",
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;` +
          `K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${pod.metadata.uid}`,
        path: [root.bin, SYSTEM_CNI_DIR],
        config: shimConfig,
      });

    const add = await call("ADD");
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.equal(add.json!.cniVersion, "0.4.0");
    const addresses = await ns.ipv4("eth0");
    assert.equal(addresses.length, 1);
    assert.ok(addresses[0].startsWith(`10.243.${subnet}.`), addresses[0]);
    assert.match(
      add.stderr,
      /the multus daemon did not run ADD of pod "default\/web-1" \(no-socket: .*multus\.sock does not exist\); running it here with .*multus\.d\/thin\.conf/,
    );
    // Run as the thin plugin would: with thin.conf's kubeconfig, the status written.
    const status = api.getPod("default", "web-1")!.metadata.annotations?.[
      "k8s.v1.cni.cncf.io/network-status"
    ];
    assert.ok(status, "network-status written");
    assert.equal(JSON.parse(status)[0].name, "cluster-bridge");

    const del = await call("DEL");
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(await ns.link("eth0"), undefined);
    assert.deepEqual(
      (await listFiles(leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p)),
      [],
    );
    assert.deepEqual(
      (await listFiles("/var/lib/cni/multus")).filter((p) => p.includes(containerId)),
      [],
    );

    const record = (await Deno.readTextFile(join(socketDir, "fallbacks.log"))).trim().split("\n")
      .map((line) => JSON.parse(line));
    assert.deepEqual(record.map((r) => [r.command, r.reason, r.containerId]), [
      ["ADD", "no-socket", containerId],
      ["DEL", "no-socket", containerId],
    ]);
  } finally {
    await ns.remove();
    await deleteHostLink(bridge);
    await api.close();
    await removeRoot(root);
  }
});

Deno.test("install --daemon-config-file installs the daemon configuration; cleanup removes what daemon mode wrote", async () => {
  const { root, socketDir } = await daemonRoot();
  try {
    const source = join(root.dir, "daemon-config.json");
    const text = JSON.stringify({ socketDir, chrootDir: "/", logLevel: "verbose" }, null, 2);
    await Deno.writeTextFile(source, text);
    const child = new RunningInstall(root, [
      "--skip-config-watch",
      "--cleanup-config-on-exit",
      `--daemon-config-file=${source}`,
    ]);
    try {
      await child.waitForLog("Waiting for SIGTERM");
      const target = join(root.conf, "multus.d", "daemon-config.json");
      assert.equal(await Deno.readTextFile(target), text);
      assert.match(child.stderr, /Wrote .*daemon-config\.json \(restart the daemon to use it\)/);
      assert.doesNotMatch(child.stderr, /Warning/);
      assert.deepEqual(await tree(root.conf), [
        "00-multus.conf",
        "10-bridge.conf",
        "multus.d/",
        "multus.d/daemon-config.json",
        "multus.d/multus.kubeconfig",
        "multus.d/thin.conf",
      ]);
      const end = await child.stop("SIGTERM");
      assert.equal(end.code, 0, end.stderr);
    } finally {
      await child.dispose();
    }
    // Exactly the primary is left; both binaries stay for the DEL of running pods.
    assert.deepEqual(await tree(root.conf), ["10-bridge.conf"]);
    assert.deepEqual(await tree(root.bin), ["multus", "multus-shim"]);
  } finally {
    await removeRoot(root);
  }
});

Deno.test("install --mode=daemon keeps watching: the shim config follows the primary, and goes with it", async () => {
  const { root } = await daemonRoot();
  const child = new RunningInstall(root, ["--skip-multus-binary-copy"]);
  try {
    const shimPath = join(root.conf, "00-multus.conf");
    const thinPath = join(root.conf, "multus.d", "thin.conf");
    await child.waitForLog(/Wrote .*00-multus\.conf/);
    const primary = join(root.conf, "10-bridge.conf");
    const conf = await readJson(primary);

    // A new capability reaches both files, thin.conf first.
    await writeJson(primary, { ...conf, capabilities: { portMappings: true, bandwidth: true } });
    await waitFor(
      async () =>
        (await readOrUndefined(shimPath) ?? "").includes('"bandwidth": true') &&
        (await readOrUndefined(thinPath) ?? "").includes('"bandwidth": true'),
      {
        what: "bandwidth in both configs",
        detail: () => child.stderr,
      },
    );
    await child.waitForLog(/Updated .*thin\.conf:(.|\n)*Updated .*00-multus\.conf:/);

    // The primary goes: the shim config goes (the node reports its network not ready).
    await Deno.remove(primary);
    await waitFor(async () => (await readOrUndefined(shimPath)) === undefined, {
      what: "removal of the shim config",
      detail: () => child.stderr,
    });
    await child.waitForLog(/is gone: removed .*00-multus\.conf/);

    // It comes back: so does the shim config.
    await writeJson(primary, conf);
    await waitFor(async () => (await readOrUndefined(shimPath)) !== undefined, {
      what: "the shim config again",
      detail: () => child.stderr,
    });
    assert.equal((await readJson(shimPath)).type, "multus-shim");
    const end = await child.stop("SIGTERM");
    assert.equal(end.code, 0, end.stderr);
  } finally {
    await child.dispose();
    await removeRoot(root);
  }
});

Deno.test("a later run removes the shim config an earlier run wrote once the primary is gone", async () => {
  const { root } = await daemonRoot();
  try {
    const first = await runInstallOnce(root, ["--skip-config-watch", "--skip-multus-binary-copy"]);
    assert.equal(first.code, 0, first.stderr);
    await Deno.remove(join(root.conf, "10-bridge.conf"));
    const again = await runInstallOnce(root, ["--skip-config-watch", "--skip-multus-binary-copy"]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /No primary CNI config: removed .*00-multus\.conf/);
    assert.equal(await readOrUndefined(join(root.conf, "00-multus.conf")), undefined);
  } finally {
    await removeRoot(root);
  }
});

Deno.test("install --mode=daemon refuses what it cannot use, naming the flag, the file and the key", async (t) => {
  const { root, socketDir } = await daemonRoot();
  try {
    await t.step("an unknown mode", async () => {
      const run = await runInstallOnce(root, ["--mode=fat"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /Invalid value "fat" for --mode: use thin or daemon/);
    });
    await t.step("a copied config", async () => {
      const run = await runInstallOnce(root, [`--multus-conf-file=${root.dir}/x.conf`]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /--mode=daemon writes the shim config .*--multus-conf-file=auto/);
    });
    await t.step("a daemon configuration the daemon would refuse", async () => {
      const bad = join(root.dir, "bad.json");
      await Deno.writeTextFile(bad, JSON.stringify({ socketDir, maxParallelRequests: "many" }));
      const run = await runInstallOnce(root, [
        "--skip-config-watch",
        `--daemon-config-file=${bad}`,
      ]);
      assert.equal(run.code, 1);
      assert.match(
        run.stderr,
        /--daemon-config-file: Cannot use the daemon configuration .*bad\.json: "maxParallelRequests" must be an integer/,
      );
      assert.equal(
        await readOrUndefined(join(root.conf, "multus.d", "daemon-config.json")),
        undefined,
      );
    });
    await t.step("a daemon socket elsewhere than the shim's is said", async () => {
      const other = join(root.dir, "other.json");
      await Deno.writeTextFile(other, JSON.stringify({ socketDir: "/run/elsewhere/" }));
      const run = await runInstallOnce(root, [
        "--skip-config-watch",
        `--daemon-config-file=${other}`,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stderr,
        /socketDir \/run\/elsewhere but the shim config says daemonSocketDir/,
      );
    });
    await t.step("a daemon configuration in thin mode", async () => {
      const run = await runInstallOnce(root, ["--mode=thin", "--daemon-config-file=/x.json"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /--daemon-config-file needs --mode=daemon/);
    });
  } finally {
    await removeRoot(root);
  }
});
