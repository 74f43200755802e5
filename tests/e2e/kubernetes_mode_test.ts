/**
 * End-to-end tests of Kubernetes mode: the plugin (through its launcher) reads the pod and
 * its NetworkAttachmentDefinitions from the test API server over TLS, attaches the networks
 * with Debian's reference plugins in a fresh network namespace, and writes network-status.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { listFiles, type TestNetns } from "../helpers/netns.ts";
import { type K8sFixture, startK8sFixture } from "../helpers/k8s_fixture.ts";

const STATUS = "k8s.v1.cni.cncf.io/network-status";

interface Fixture extends K8sFixture {
  containerId: string;
  subnet: number;
  podUid: string;
}

let subnetCounter = 120 + Math.floor(Math.random() * 100);

async function fixture(
  options: { annotations?: Record<string, string>; auth?: "token" | "cert"; namespace?: string } =
    {},
): Promise<Fixture> {
  const subnet = subnetCounter++;
  const env = await startK8sFixture({ clusterSubnet: `10.241.${subnet}`, auth: options.auth });
  const pod = env.api.setPod({
    metadata: {
      name: "web-1",
      namespace: options.namespace ?? "default",
      annotations: options.annotations ?? {},
    },
  });
  return {
    ...env,
    containerId: `ctr-${uniqueSuffix()}${uniqueSuffix()}`,
    subnet,
    podUid: pod.metadata.uid!,
  };
}

function multusConf(f: Fixture, extra: Record<string, unknown> = {}) {
  return f.multusConf(extra);
}

function macvlanNad(
  f: Fixture,
  name: string,
  options: { namespace?: string; octet?: number; config?: Record<string, unknown> | null } = {},
) {
  const octet = options.octet ?? 10;
  const config = options.config === null ? undefined : JSON.stringify(
    options.config ?? {
      cniVersion: "1.0.0",
      type: "macvlan",
      master: f.veth.a,
      mode: "bridge",
      ipam: { type: "static", addresses: [{ address: `10.242.${f.subnet}.${octet}/24` }] },
    },
  );
  f.api.setNad({
    metadata: { name, namespace: options.namespace ?? "default" },
    spec: config === undefined ? {} : { config },
  });
}

function call(f: Fixture, command: string, config: Record<string, unknown>, podUid?: string) {
  return f.root.run({
    command,
    containerId: f.containerId,
    netns: f.ns.path,
    args:
      `IgnoreUnknown=1;K8S_POD_NAMESPACE=${"default"};K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=${f.containerId};K8S_POD_UID=${
        podUid ?? f.podUid
      }`,
    config,
  });
}

function statusOf(f: Fixture, namespace = "default"): Record<string, unknown>[] | undefined {
  const value = f.api.getPod(namespace, "web-1")?.metadata.annotations?.[STATUS];
  return value === undefined ? undefined : JSON.parse(value);
}

async function linkNames(ns: TestNetns): Promise<string[]> {
  return (await ns.links()).map((l) => l.ifname).sort();
}

async function leases(f: Fixture): Promise<string[]> {
  return (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
}

Deno.test("cluster network from a file + one NAD (short form): interfaces, status, requests", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "macvlan-conf" } });
  try {
    macvlanNad(f, "macvlan-conf");
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await f.ns.ipv4("eth0"), [`10.241.${f.subnet}.2/24`]);
    assert.deepEqual(await f.ns.ipv4("net1"), [`10.242.${f.subnet}.10/24`]);

    const status = statusOf(f)!;
    assert.equal(status.length, 2);
    const eth0Mac = (await f.ns.link("eth0"))!.address;
    const net1Mac = (await f.ns.link("net1"))!.address;
    assert.deepEqual(status[0], {
      name: "cluster-bridge",
      interface: "eth0",
      ips: [`10.241.${f.subnet}.2`],
      mac: eth0Mac,
      default: true,
      dns: {},
      gateway: [`10.241.${f.subnet}.1`],
    });
    assert.deepEqual(status[1], {
      name: "default/macvlan-conf",
      interface: "net1",
      ips: [`10.242.${f.subnet}.10`],
      mac: net1Mac,
      dns: {},
    });

    const requests = f.api.requests().filter((r) => r.auth !== "none" || r.method);
    const podGets = requests.filter((r) =>
      r.method === "GET" && r.path === "/api/v1/namespaces/default/pods/web-1"
    );
    const nadGets = requests.filter((r) =>
      r.method === "GET" && r.path.includes("network-attachment-definitions")
    );
    const writes = requests.filter((r) =>
      r.path.startsWith("/api/v1/namespaces/default/pods/web-1") && r.method !== "GET"
    );
    assert.equal(podGets.length, 1, "one pod GET");
    assert.equal(nadGets.length, 1, "one NAD GET");
    assert.equal(writes.length, 1, "one status write");
    assert.equal(writes[0].method, "PATCH");
    assert.equal(writes[0].auth, "token");
    const added = f.api.events().filter((e) => e.reason === "AddedInterface").map((e) => e.message)
      .sort();
    assert.deepEqual(added, [
      `Add eth0 [10.241.${f.subnet}.2/24] from cluster-bridge`,
      `Add net1 [10.242.${f.subnet}.10/24] from default/macvlan-conf`,
    ]);

    f.api.clearRequests();
    const del = await call(f, "DEL", multusConf(f));
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await leases(f), []);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
    assert.equal(f.api.requests().length, 0, "DEL works from the cache without the API");
  } finally {
    await f.cleanup();
  }
});

Deno.test("client-certificate kubeconfig; two NADs, one with @ifname", async () => {
  const f = await fixture({
    auth: "cert",
    annotations: { "k8s.v1.cni.cncf.io/networks": "mv-a@data0, default/mv-b" },
  });
  try {
    macvlanNad(f, "mv-a", { octet: 11 });
    macvlanNad(f, "mv-b", { octet: 12 });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await linkNames(f.ns), ["data0", "eth0", "lo", "net2"]);
    assert.deepEqual(await f.ns.ipv4("data0"), [`10.242.${f.subnet}.11/24`]);
    assert.deepEqual(await f.ns.ipv4("net2"), [`10.242.${f.subnet}.12/24`]);
    assert.ok(
      f.api.requests().every((r) => r.auth === "cert"),
      "every request used the client certificate",
    );
    assert.deepEqual(statusOf(f)!.map((s) => [s.name, s.interface]), [
      ["cluster-bridge", "eth0"],
      ["default/mv-a", "data0"],
      ["default/mv-b", "net2"],
    ]);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("JSON form with interface, ips and mac on a static + mac capable macvlan", async () => {
  const f = await fixture();
  try {
    macvlanNad(f, "mv-caps", {
      config: {
        cniVersion: "1.0.0",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        capabilities: { ips: true, mac: true },
        ipam: { type: "static" },
      },
    });
    f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        uid: f.podUid,
        annotations: {
          "k8s.v1.cni.cncf.io/networks": JSON.stringify([
            {
              name: "mv-caps",
              interface: "fast0",
              ips: [`10.242.${f.subnet}.77/24`],
              mac: "c2:11:22:33:44:55",
            },
          ]),
        },
      },
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const fast0 = await f.ns.link("fast0");
    assert.equal(fast0?.address, "c2:11:22:33:44:55");
    assert.deepEqual(await f.ns.ipv4("fast0"), [`10.242.${f.subnet}.77/24`]);
    const status = statusOf(f)!;
    assert.deepEqual(status[1], {
      name: "default/mv-caps",
      interface: "fast0",
      ips: [`10.242.${f.subnet}.77`],
      mac: "c2:11:22:33:44:55",
      dns: {},
    });
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("ips on a static network without the ips capability are applied through CNI_ARGS", async () => {
  const f = await fixture();
  try {
    macvlanNad(f, "mv-static", {
      config: {
        cniVersion: "1.0.0",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: { type: "static" },
      },
    });
    f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        uid: f.podUid,
        annotations: {
          "k8s.v1.cni.cncf.io/networks":
            `[{"name":"mv-static","ips":["10.242.${f.subnet}.88/24"]}]`,
        },
      },
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await f.ns.ipv4("net1"), [`10.242.${f.subnet}.88/24`]);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("ips on a network without IPAM fail clearly and roll everything back", async () => {
  const f = await fixture();
  try {
    macvlanNad(f, "mv-noipam", {
      config: { cniVersion: "1.0.0", type: "macvlan", master: f.veth.a, mode: "bridge" },
    });
    f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        uid: f.podUid,
        annotations: {
          "k8s.v1.cni.cncf.io/networks":
            `[{"name":"mv-noipam","ips":["10.242.${f.subnet}.99/24"]}]`,
        },
      },
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.notEqual(add.code, 0);
    const err = add.json!;
    assert.match(String(err.msg), /default\/mv-noipam/);
    assert.match(String(err.msg), /default\/web-1/);
    assert.match(String(err.msg), /requested IP 10\.242\.\d+\.99/);
    assert.match(String(err.details), /static/);
    assert.deepEqual(await linkNames(f.ns), ["lo"], "eth0 and net1 rolled back");
    assert.deepEqual(await leases(f), []);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
    assert.equal(statusOf(f), undefined, "no status written");
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a NAD without config is resolved from confDir; a NAD with a conflist", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "from-disk,tuned" } });
  try {
    await Deno.writeTextFile(
      join(f.root.confDir, "50-from-disk.conf"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "from-disk",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: { type: "static", addresses: [{ address: `10.242.${f.subnet}.21/24` }] },
      }),
    );
    macvlanNad(f, "from-disk", { config: null });
    macvlanNad(f, "tuned", {
      config: {
        cniVersion: "1.0.0",
        name: "tuned",
        plugins: [
          {
            type: "macvlan",
            master: f.veth.a,
            mode: "bridge",
            ipam: { type: "static", addresses: [{ address: `10.242.${f.subnet}.22/24` }] },
          },
          { type: "tuning", mtu: 1300 },
        ],
      },
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await f.ns.ipv4("net1"), [`10.242.${f.subnet}.21/24`]);
    assert.deepEqual(await f.ns.ipv4("net2"), [`10.242.${f.subnet}.22/24`]);
    const out = new TextDecoder().decode(
      (await new Deno.Command("ip", {
        args: ["-n", f.ns.name, "-j", "link", "show", "net2"],
        stdout: "piped",
      }).output()).stdout,
    );
    assert.equal(JSON.parse(out)[0].mtu, 1300);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
  } finally {
    await f.cleanup();
  }
});

Deno.test("the default-network annotation replaces the cluster network", async () => {
  const f = await fixture({
    annotations: { "v1.multus-cni.io/default-network": "kube-system/alt-default" },
  });
  try {
    macvlanNad(f, "alt-default", { namespace: "kube-system", octet: 31 });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await linkNames(f.ns), ["eth0", "lo"]);
    assert.deepEqual(await f.ns.ipv4("eth0"), [`10.242.${f.subnet}.31/24`]);
    assert.equal((add.json!.ips as { address: string }[])[0].address, `10.242.${f.subnet}.31/24`);
    assert.deepEqual(await leases(f), [], "the cluster bridge never ran");
    const status = statusOf(f)!;
    assert.equal(status[0].name, "kube-system/alt-default");
    assert.equal(status[0].default, true);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("namespace isolation blocks other namespaces and allows globalNamespaces", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "shared/mv-shared" } });
  try {
    macvlanNad(f, "mv-shared", { namespace: "shared", octet: 41 });
    const blocked = await call(f, "ADD", multusConf(f, { namespaceIsolation: true }));
    assert.notEqual(blocked.code, 0);
    assert.match(String(blocked.json!.msg), /namespace isolation/);
    assert.match(String(blocked.json!.msg), /shared\/mv-shared/);
    assert.match(String(blocked.json!.details), /globalNamespaces/);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await listFiles(f.root.cniDir), []);

    const allowed = await call(
      f,
      "ADD",
      multusConf(f, { namespaceIsolation: true, globalNamespaces: "default, shared" }),
    );
    assert.equal(allowed.code, 0, allowed.stdout);
    assert.deepEqual(await f.ns.ipv4("net1"), [`10.242.${f.subnet}.41/24`]);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("missing NAD, missing pod, malformed annotation and UID mismatch fail before anything is attached", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "no-such-nad" } });
  try {
    const cases: [string, () => void, RegExp, string | undefined][] = [
      [
        "missing NAD",
        () => {},
        /NetworkAttachmentDefinition "no-such-nad" does not exist in namespace "default"/,
        undefined,
      ],
      [
        "malformed annotation",
        () => {
          f.api.setPod({
            metadata: {
              name: "web-1",
              namespace: "default",
              uid: f.podUid,
              annotations: { "k8s.v1.cni.cncf.io/networks": '[{"name": 5}]' },
            },
          });
        },
        /"name" must be a string/,
        undefined,
      ],
      [
        "UID mismatch",
        () => {},
        /expected pod UID "00000000-0000-0000-0000-000000000000"/,
        "00000000-0000-0000-0000-000000000000",
      ],
      ["missing pod", () => f.api.deletePod("default", "web-1"), /pod does not exist/, undefined],
    ];
    for (const [label, prepare, message, uid] of cases) {
      prepare();
      const add = await call(f, "ADD", multusConf(f), uid);
      assert.notEqual(add.code, 0, label);
      assert.match(String(add.json!.msg), message, label);
      assert.match(String(add.json!.msg), /default\/web-1/, `${label}: names the pod`);
      assert.deepEqual(await linkNames(f.ns), ["lo"], `${label}: nothing attached`);
      assert.deepEqual(await leases(f), [], `${label}: no lease`);
      assert.deepEqual(await listFiles(f.root.cniDir), [], `${label}: no cache`);
      assert.equal((await call(f, "DEL", multusConf(f))).code, 0, `${label}: DEL succeeds`);
    }
    assert.ok(
      f.api.events().some((e) => e.reason === "NoNetworkFound"),
      "NoNetworkFound event sent",
    );
  } finally {
    await f.cleanup();
  }
});

Deno.test("the status write falls back to an update when the API forbids patch", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "mv-x" } });
  try {
    macvlanNad(f, "mv-x", { octet: 51 });
    f.api.forbid("patch", "pods/status");
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const writes = f.api.requests().filter((r) =>
      r.path === "/api/v1/namespaces/default/pods/web-1/status"
    );
    assert.deepEqual(writes.map((w) => [w.method, w.status]), [["PATCH", 403], ["PUT", 200]]);
    assert.equal(statusOf(f)!.length, 2);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL with the API server down releases every interface and lease", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "mv-y" } });
  try {
    macvlanNad(f, "mv-y", { octet: 61 });
    assert.equal((await call(f, "ADD", multusConf(f))).code, 0);
    f.api.inject({ kind: "refuse" });
    const del = await call(f, "DEL", multusConf(f));
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await leases(f), []);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("the API answering 500 twice then 200 succeeds", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "mv-z" } });
  try {
    macvlanNad(f, "mv-z", { octet: 71 });
    f.api.inject({
      kind: "status",
      status: 500,
      times: 2,
      path: "/api/v1/namespaces/default/pods/web-1",
      method: "GET",
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const gets = f.api.requests().filter((r) =>
      r.method === "GET" && r.path === "/api/v1/namespaces/default/pods/web-1"
    );
    assert.deepEqual(gets.map((g) => g.status), [500, 500, 200]);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("the API hanging fails ADD within the configured timeout, with nothing attached", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "mv-h" } });
  try {
    macvlanNad(f, "mv-h", { octet: 81 });
    f.api.inject({ kind: "hang" });
    const add = await call(f, "ADD", multusConf(f, { apiTimeoutSeconds: 2 }));
    assert.notEqual(add.code, 0);
    assert.equal(add.json!.code, 11, "try again later");
    assert.match(String(add.json!.msg), /default\/web-1/);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    f.api.clearFaults();
  } finally {
    await f.cleanup();
  }
});

Deno.test("default-route moves the pod's default route to the requested network; CHECK agrees", async () => {
  const f = await fixture();
  try {
    macvlanNad(f, "mv-gw", {
      config: {
        cniVersion: "1.0.0",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: {
          type: "static",
          addresses: [{ address: `10.242.${f.subnet}.90/24`, gateway: `10.242.${f.subnet}.1` }],
        },
      },
    });
    f.api.setPod({
      metadata: {
        name: "web-1",
        namespace: "default",
        uid: f.podUid,
        annotations: {
          "k8s.v1.cni.cncf.io/networks":
            `[{"name":"mv-gw","default-route":["10.242.${f.subnet}.1"]}]`,
        },
      },
    });
    const conf = multusConf(f);
    const add = await call(f, "ADD", conf);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const defaults = (await f.ns.routes()).filter((r) => r.dst === "default");
    assert.deepEqual(defaults.map((r) => [r.gateway, r.dev]), [[`10.242.${f.subnet}.1`, "net1"]]);
    const check = await call(f, "CHECK", conf);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal((await call(f, "DEL", conf)).code, 0);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await leases(f), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("two default routes of one family are refused before anything runs", async () => {
  const f = await fixture({
    annotations: {
      "k8s.v1.cni.cncf.io/networks": JSON.stringify([
        { name: "mv-1", "default-route": ["10.242.1.1"] },
        { name: "mv-2", "default-route": ["10.242.2.1"] },
      ]),
    },
  });
  try {
    macvlanNad(f, "mv-1", { octet: 91 });
    macvlanNad(f, "mv-2", { octet: 92 });
    const add = await call(f, "ADD", multusConf(f));
    assert.notEqual(add.code, 0);
    assert.match(String(add.json!.msg), /more than one IPv4 default route/);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("two attachments to one network cost one NAD read", async () => {
  const f = await fixture({
    annotations: { "k8s.v1.cni.cncf.io/networks": "mv-twice@a0,mv-twice@a1" },
  });
  try {
    macvlanNad(f, "mv-twice", {
      config: {
        cniVersion: "1.0.0",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: { type: "host-local", subnet: `10.243.${f.subnet}.0/24`, dataDir: f.leaseDir },
      },
    });
    const add = await call(f, "ADD", multusConf(f));
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await f.ns.ipv4("a0"), [`10.243.${f.subnet}.2/24`]);
    assert.deepEqual(await f.ns.ipv4("a1"), [`10.243.${f.subnet}.3/24`]);
    const nadGets = f.api.requests().filter((r) =>
      r.path.endsWith("/network-attachment-definitions/mv-twice")
    );
    assert.equal(nadGets.length, 1);
    assert.equal((await call(f, "DEL", multusConf(f))).code, 0);
    assert.deepEqual(await leases(f), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL without a scratch cache rebuilds the networks from the API and releases them", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "mv-lost" } });
  try {
    macvlanNad(f, "mv-lost", { octet: 44 });
    assert.equal((await call(f, "ADD", multusConf(f))).code, 0);
    await Deno.remove(join(f.root.cniDir, f.containerId)); // the node lost the cache
    const del = await call(f, "DEL", multusConf(f));
    assert.equal(del.code, 0, del.stdout);
    assert.deepEqual(await linkNames(f.ns), ["lo"]);
    assert.deepEqual(await leases(f), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL of a pod that was never added succeeds even when its network cannot be deleted", async () => {
  const f = await fixture({ annotations: { "k8s.v1.cni.cncf.io/networks": "broken" } });
  try {
    macvlanNad(f, "broken", { config: { cniVersion: "1.0.0", type: "no-such-plugin" } });
    const del = await call(f, "DEL", multusConf(f));
    assert.equal(del.code, 0, del.stdout);
    assert.equal(del.stdout, "");
  } finally {
    await f.cleanup();
  }
});
