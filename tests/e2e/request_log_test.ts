/**
 * The log of a Kubernetes-mode ADD as an operator reads it: the lines the API client and the
 * conf-dir lookup write during the request (a retried pod read, the forbidden status patch
 * falling back to an update, a broken file skipped in confDir) name the container and pod.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";

Deno.test("Kubernetes mode: API retries, the status-write fallback and a skipped confDir file are logged with the request's container and pod", async () => {
  const f = await startK8sFixture({
    clusterSubnet: `10.241.${60 + Math.floor(Math.random() * 50)}`,
  });
  try {
    const pod = f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        annotations: { "k8s.v1.cni.cncf.io/networks": "by-name" },
      },
    });
    // A NAD without config: its network is looked up by name in confDir, where one file is
    // broken and one is the network.
    f.api.setNad({ metadata: { name: "by-name", namespace: "default" }, spec: {} });
    await Deno.writeTextFile(join(f.root.confDir, "10-broken.conf"), "{ not json");
    await Deno.writeTextFile(
      join(f.root.confDir, "20-by-name.conf"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "by-name",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: { type: "static", addresses: [{ address: "10.249.1.10/24" }] },
      }),
    );
    f.api.inject({ kind: "status", status: 503, method: "GET", path: /\/pods\/web-1$/ });
    f.api.inject({ kind: "status", status: 403, method: "PATCH", path: /\/pods\/web-1\/status$/ });

    const containerId = `ctr-${uniqueSuffix()}${uniqueSuffix()}`;
    const add = await f.root.run({
      command: "ADD",
      containerId,
      netns: f.ns.path,
      args:
        `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_UID=${pod.metadata.uid}`,
      config: f.multusConf({ logToStderr: false }),
    });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await f.ns.ipv4("net1"), ["10.249.1.10/24"]);

    const lines = (await Deno.readTextFile(f.root.logFile)).split("\n");
    const fields = `container=${containerId.slice(0, 12)} pod=default/web-1 `;
    for (
      const what of [
        /API GET \/api\/v1\/namespaces\/default\/pods\/web-1: .*retrying in/,
        /patching pod "default\/web-1" status is forbidden; updating it instead/,
        /skipping .*10-broken\.conf while looking for network "by-name"/,
      ]
    ) {
      const line = lines.find((l) => what.test(l));
      assert.ok(line, `logged: ${what}\n${lines.join("\n")}`);
      assert.ok(line.includes(fields), `"${fields}" in: ${line}`);
    }
    const del = await f.root.run({
      command: "DEL",
      containerId,
      netns: f.ns.path,
      args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1",
      config: f.multusConf({ logToStderr: false }),
    });
    assert.equal(del.code, 0, del.stdout + del.stderr);
  } finally {
    await f.cleanup();
  }
});
