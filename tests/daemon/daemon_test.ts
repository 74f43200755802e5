/**
 * The node daemon (`multus daemon`) through its socket, as a runtime and Multus's shim use
 * it: ADD/DEL through our shim in real network namespaces, the thin plugin's exact results
 * and caches, the health endpoints, request checks, and Go Multus v4.0.2's own multus-shim.
 */

import assert from "node:assert/strict";
import { unpackGoPeers } from "../helpers/go_peers.ts";
import { join } from "node:path";
import { listFiles } from "../helpers/netns.ts";
import {
  cniBody,
  containerId,
  fallbackRecord,
  makeNode,
  metricValue,
  type Node,
  podNetns,
  shimCall,
  shimConf,
  socketRequest,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

/** A result or cache text with what differs between two pods replaced. */
function normalise(text: string, pod: { id: string; netns: string; name: string }): string {
  return text
    .replaceAll(pod.id, "<ctr>")
    .replaceAll(pod.netns, "<netns>")
    .replaceAll(pod.name, "<pod>")
    .replace(/([0-9a-f]{2}:){5}[0-9a-f]{2}/g, "<mac>")
    .replace(/veth[0-9a-f]{8}/g, "<veth>")
    .replace(/(10\.241\.\d+\.)(\d+)/g, "$1<n>");
}

async function scratchCache(node: Node, id: string): Promise<string> {
  return await Deno.readTextFile(join(node.root.cniDir, id));
}

Deno.test("ADD and DEL through the shim run in the daemon and give the thin plugin's result and caches", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    const thinNs = await podNetns(node);
    const shimNs = await podNetns(node);
    const thinPod = { ns: thinNs, containerId: containerId() };
    const shimPod = { ns: shimNs, containerId: containerId() };
    const thinConf = {
      ...JSON.parse(await Deno.readTextFile(node.thinConfig)),
      cniVersion: "0.4.0",
      logLevel: "verbose",
    };

    const viaThin = await node.root.run({
      command: "ADD",
      containerId: thinPod.containerId,
      netns: thinNs.path,
      ifName: "eth0",
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${thinPod.containerId}`,
      config: thinConf,
    });
    assert.equal(viaThin.code, 0, viaThin.stdout + viaThin.stderr);
    const viaShim = await shimCall(node, "ADD", shimPod);
    assert.equal(viaShim.code, 0, viaShim.stdout + viaShim.stderr);

    // The daemon ran it: counted there, no fallback recorded, no warning from the shim.
    const metrics = await daemon.metrics();
    assert.equal(
      metricValue(metrics, 'multus_daemon_requests_total{command="ADD",result="success"}'),
      1,
    );
    assert.deepEqual(await fallbackRecord(node), []);
    assert.doesNotMatch(viaShim.stderr, /did not run/);

    assert.equal(viaShim.json!.cniVersion, "0.4.0");
    assert.equal((await shimNs.ipv4("eth0")).length, 1);
    const thinLabels = { id: thinPod.containerId, netns: thinNs.path, name: thinPod.containerId };
    const shimLabels = { id: shimPod.containerId, netns: shimNs.path, name: shimPod.containerId };
    assert.equal(normalise(viaShim.stdout, shimLabels), normalise(viaThin.stdout, thinLabels));
    assert.equal(
      normalise(await scratchCache(node, shimPod.containerId), shimLabels),
      normalise(await scratchCache(node, thinPod.containerId), thinLabels),
    );
    assert.deepEqual(
      (await listFiles(join(node.root.cniDir, "results"))).map((f) =>
        f.replace(shimPod.containerId, "<ctr>").replace(thinPod.containerId, "<ctr>")
      ),
      ["slow-net-<ctr>-eth0", "slow-net-<ctr>-eth0"],
    );

    const del = await shimCall(node, "DEL", shimPod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(del.stdout, "");
    assert.equal(await shimNs.link("eth0"), undefined);
    const thinDel = await node.root.run({
      command: "DEL",
      containerId: thinPod.containerId,
      netns: thinNs.path,
      ifName: "eth0",
      config: thinConf,
    });
    assert.equal(thinDel.code, 0, thinDel.stdout);
    assert.deepEqual(await listFiles(node.root.cniDir), [], "no cache entry is left");
    const leases = (await listFiles(node.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.deepEqual(leases, [], "the host-local leases are released");
    assert.equal(
      metricValue(
        await daemon.metrics(),
        'multus_daemon_requests_total{command="DEL",result="success"}',
      ),
      1,
    );
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("a failing ADD through the daemon gives the thin plugin's error JSON", async () => {
  const node = await makeNode();
  const missing = [{ cniVersion: "0.3.1", name: "nope", type: "no-such-plugin" }];
  const daemon = await startDaemon(node, { delegates: missing });
  try {
    const ns = await podNetns(node);
    const pod = { ns, containerId: containerId() };
    const viaShim = await shimCall(node, "ADD", pod, shimConf(node, { cniVersion: "0.3.1" }));
    const viaThin = await node.root.run({
      command: "ADD",
      containerId: pod.containerId,
      netns: ns.path,
      ifName: "eth0",
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.containerId}`,
      config: {
        cniVersion: "0.3.1",
        name: "multus-cni-network",
        type: "multus",
        ...node.netconf,
        delegates: missing,
      },
    });
    assert.equal(viaShim.code, 1);
    assert.equal(viaShim.stdout, viaThin.stdout);
    assert.equal(viaShim.json!.cniVersion, "0.3.1");
    assert.match(String(viaShim.json!.msg), /no-such-plugin/);
    assert.equal(
      metricValue(
        await daemon.metrics(),
        'multus_daemon_requests_total{command="ADD",result="error"}',
      ),
      1,
    );
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("healthz and readyz answer; other paths and methods are refused as Multus does", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    for (const method of ["GET", "POST"] as const) {
      assert.equal((await socketRequest(node.socketPath, method, "/healthz")).status, 200);
      assert.equal((await socketRequest(node.socketPath, method, "/readyz")).status, 200);
    }
    assert.equal((await socketRequest(node.socketPath, "GET", "/cni")).status, 405);
    assert.equal((await socketRequest(node.socketPath, "GET", "/nothing")).status, 404);
    const delegate = await socketRequest(node.socketPath, "POST", "/delegate", {});
    // Multus's hot-plug API: an empty request is refused with a CNI error naming what lacks.
    assert.equal(delegate.status, 400);
    assert.match(JSON.parse(delegate.text).msg, /CNI_COMMAND/);
    const socket = await Deno.stat(node.socketPath);
    assert.equal(socket.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(node.socketDir)).mode! & 0o777, 0o700);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("requests are checked like the plugin's stdin and get the same CNI errors", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    const env = { CNI_COMMAND: "ADD", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0" };
    const config = shimConf(node);
    const direct = await socketRequest(node.socketPath, "POST", "/cni", cniBody(env, config));
    assert.equal(direct.status, 400);
    const error = JSON.parse(direct.text);
    assert.equal(error.code, 4);
    assert.equal(error.msg, "required env variables [CNI_CONTAINERID,CNI_PATH] missing");

    // The thin plugin says the same for the same environment.
    const thin = await node.root.run({
      command: "ADD",
      netns: "/var/run/netns/x",
      path: [],
      config: { ...JSON.parse(await Deno.readTextFile(node.thinConfig)), cniVersion: "0.4.0" },
    });
    assert.equal(thin.json!.msg, error.msg);

    const notJson = await socketRequest(node.socketPath, "POST", "/cni", "{not json");
    assert.equal(notJson.status, 400);
    assert.equal(JSON.parse(notJson.text).code, 6);
    const badBase64 = await socketRequest(node.socketPath, "POST", "/cni", {
      env: {},
      config: "%%%",
    });
    assert.equal(JSON.parse(badBase64.text).code, 6);
    assert.match(JSON.parse(badBase64.text).msg, /base64/);
    const badEnv = await socketRequest(node.socketPath, "POST", "/cni", {
      env: { CNI_COMMAND: 1 },
    });
    assert.equal(JSON.parse(badEnv.text).code, 4);
    assert.match(JSON.parse(badEnv.text).msg, /"CNI_COMMAND" must be a string/);
    const huge = await socketRequest(
      node.socketPath,
      "POST",
      "/cni",
      new Uint8Array(5 * 1024 * 1024).fill(32),
    );
    assert.equal(huge.status, 413);
    assert.equal(JSON.parse(huge.text).code, 7);

    // Our shim's answers carry exactly what the plugin prints.
    const ours = await socketRequest(
      node.socketPath,
      "POST",
      "/cni",
      cniBody(env, config),
      { "X-Multus-Output": "plugin" },
    );
    assert.equal(ours.headers.get("x-multus-output"), "plugin");
    assert.equal(ours.text, thin.stdout.trimEnd());
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

Deno.test("the daemon runs a Kubernetes-mode request itself: a kubeconfig it cannot read is the thin plugin's CNI error", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    const env = {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: containerId(),
      CNI_NETNS: (await podNetns(node)).path,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
    };
    const res = await socketRequest(
      node.socketPath,
      "POST",
      "/cni",
      cniBody(env, shimConf(node, { kubeconfig: "/etc/cni/net.d/multus.d/multus.kubeconfig" })),
    );
    assert.equal(res.status, 400, res.text);
    assert.equal(res.headers.get("x-multus-fallback"), undefined, "not handed back to the shim");
    const error = JSON.parse(res.text);
    assert.match(error.msg, /\/etc\/cni\/net\.d\/multus\.d\/multus\.kubeconfig/);
    assert.match(error.msg, /does not exist/);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

const peers = await unpackGoPeers(await Deno.makeTempDir({ prefix: "multus-peers-" }));
const skipPeers = typeof peers !== "string" && Deno.env.get("CI") !== undefined;
if (skipPeers) {
  Deno.stderr.writeSync(
    new TextEncoder().encode(
      `skipping the Multus v4.0.2 multus-shim test: ${(peers as { missing: string }).missing}\n`,
    ),
  );
}

Deno.test({
  name: "Go Multus v4.0.2's own multus-shim works against the daemon (ADD result, DEL)",
  ignore: skipPeers,
  fn: async () => {
    if (typeof peers !== "string") throw new Error(peers.missing);
    const node = await makeNode();
    const daemon = await startDaemon(node);
    try {
      const ns = await podNetns(node);
      const pod = { ns, containerId: containerId() };
      const conf = {
        cniVersion: "0.3.1",
        name: "multus-cni-network",
        type: "multus-shim",
        daemonSocketDir: node.socketDir,
      };
      const { binaryCall } = await import("./_helpers.ts");
      const add = await binaryCall(node, join(peers, "multus-shim"), "ADD", pod, conf);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      // Multus's shim prints the daemon's 1.0.0 result in its own configuration's version.
      assert.equal(add.json!.cniVersion, "0.3.1");
      const ips = add.json!.ips as { version: string; address: string }[];
      assert.equal(ips[0].version, "4");
      assert.deepEqual(await ns.ipv4("eth0"), [ips[0].address]);

      const del = await binaryCall(node, join(peers, "multus-shim"), "DEL", pod, conf);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(await ns.link("eth0"), undefined);
      assert.deepEqual(await listFiles(node.root.cniDir), [], "no cache entry is left");
      const metrics = await daemon.metrics();
      assert.equal(
        metricValue(
          metrics,
          'multus_server_request_total{handler="/cni",code="200",method="post"}',
        ),
        2,
      );
    } finally {
      await stopDaemon(daemon);
      await node.cleanup();
      await Deno.remove(peers, { recursive: true }).catch(() => {});
    }
  },
});
