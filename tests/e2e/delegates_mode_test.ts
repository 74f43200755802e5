/**
 * End-to-end tests of delegates mode: the plugin run through its launcher by a "runtime"
 * (this test), in fresh network namespaces, with Debian's reference plugins.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  delegatesModeConf,
  makeTestRoot,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import {
  deleteHostLink,
  hostLinkExists,
  HostVeth,
  listFiles,
  TestNetns,
} from "../helpers/netns.ts";

interface Fixture {
  root: TestRoot;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  containerId: string;
  cleanup(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const veth = await HostVeth.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  return {
    root,
    ns,
    veth,
    bridge,
    leaseDir: join(root.dir, "leases"),
    containerId: `ctr-${uniqueSuffix()}${uniqueSuffix()}`,
    async cleanup() {
      await ns.remove();
      await veth.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
}

let subnetCounter = 10 + Math.floor(Math.random() * 100);

/** A bridge+host-local master and a macvlan+static extra, as in the demo. */
function demoConf(f: Fixture, version: string, extra: Record<string, unknown> = {}) {
  const subnet = subnetCounter++;
  return delegatesModeConf(
    f.root,
    [
      {
        cniVersion: version,
        name: "bridge-net",
        type: "bridge",
        bridge: f.bridge,
        isGateway: true,
        ipam: {
          type: "host-local",
          subnet: `10.231.${subnet}.0/24`,
          dataDir: f.leaseDir,
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      {
        cniVersion: version,
        name: "macvlan-net",
        type: "macvlan",
        master: f.veth.a,
        mode: "bridge",
        ipam: {
          type: "static",
          addresses: [{ address: `10.232.${subnet}.10/24`, gateway: `10.232.${subnet}.1` }],
          routes: [{ dst: `10.233.${subnet}.0/24`, gw: `10.232.${subnet}.1` }],
        },
      },
    ],
    { cniVersion: version, logLevel: "debug", ...extra },
  );
}

function call(f: Fixture, command: string, config: Record<string, unknown>) {
  return f.root.run({
    command,
    containerId: f.containerId,
    netns: f.ns.path,
    ifName: "eth0",
    args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1",
    config,
  });
}

function subnetOf(conf: ReturnType<typeof demoConf>): number {
  return Number((conf.delegates[0].ipam as { subnet: string }).subnet.split(".")[2]);
}

for (const version of ["0.3.1", "0.4.0", "1.0.0"]) {
  Deno.test(`ADD attaches eth0 (bridge) and net1 (macvlan) and returns the ${version} result`, async () => {
    const f = await fixture();
    try {
      const conf = demoConf(f, version);
      const n = subnetOf(conf);
      const add = await call(f, "ADD", conf);
      assert.equal(add.code, 0, add.stdout + add.stderr);

      assert.deepEqual(await f.ns.ipv4("eth0"), [`10.231.${n}.2/24`]);
      assert.deepEqual(await f.ns.ipv4("net1"), [`10.232.${n}.10/24`]);
      const routes = await f.ns.routes();
      assert.ok(
        routes.some((r) =>
          r.dst === "default" && r.gateway === `10.231.${n}.1` && r.dev === "eth0"
        ),
      );
      assert.ok(
        routes.some((r) =>
          r.dst === `10.233.${n}.0/24` && r.gateway === `10.232.${n}.1` && r.dev === "net1"
        ),
      );

      const result = add.json!;
      assert.equal(result.cniVersion, version);
      const ips = result.ips as Record<string, unknown>[];
      assert.equal(ips.length, 1, "only the default network's result is returned");
      assert.equal(ips[0].address, `10.231.${n}.2/24`);
      assert.equal(ips[0].gateway, `10.231.${n}.1`);
      assert.equal(
        "version" in ips[0],
        version !== "1.0.0",
        "ips[].version exists only before 1.0.0",
      );
      const ifaces = result.interfaces as Record<string, unknown>[];
      const eth0 = ifaces[ips[0].interface as number];
      assert.equal(eth0.name, "eth0");
      assert.equal(eth0.sandbox, f.ns.path);
      assert.equal(eth0.mac, (await f.ns.link("eth0"))!.address);
      assert.deepEqual(result.routes, [{ dst: "0.0.0.0/0" }]);

      const del = await call(f, "DEL", conf);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(del.stdout, "");
      assert.equal(await f.ns.link("eth0"), undefined);
      assert.equal(await f.ns.link("net1"), undefined);
      assert.deepEqual(await listFiles(f.root.cniDir), [], "no cache entry is left");
      const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
      assert.deepEqual(leases, [], "the host-local lease is released");
    } finally {
      await f.cleanup();
    }
  });
}

Deno.test("ADD converts the default network's 0.3.1 result to the multus cniVersion 1.0.0", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "0.3.1", { cniVersion: "1.0.0" });
    const add = await call(f, "ADD", conf);
    assert.equal(add.code, 0, add.stdout);
    assert.equal(add.json!.cniVersion, "1.0.0");
    assert.ok(!("version" in (add.json!.ips as Record<string, unknown>[])[0]));
    assert.equal((await call(f, "DEL", conf)).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a conflist delegate (macvlan + tuning) gets its chain with prevResult", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    const n = subnetOf(conf);
    const macvlan = conf.delegates[1];
    conf.delegates[1] = {
      cniVersion: "1.0.0",
      name: "macvlan-tuned",
      plugins: [
        { ...macvlan, name: undefined, cniVersion: undefined },
        { type: "tuning", mtu: 1280, sysctl: { "net.ipv4.conf.net1.arp_notify": "1" } },
      ],
    } as unknown as typeof macvlan;
    const add = await call(f, "ADD", conf);
    assert.equal(add.code, 0, add.stdout);
    const net1 = await f.ns.link("net1");
    assert.ok(net1, "net1 exists");
    assert.deepEqual(await f.ns.ipv4("net1"), [`10.232.${n}.10/24`]);
    const mtu = (await new Deno.Command("ip", {
      args: ["-n", f.ns.name, "-j", "link", "show", "net1"],
      stdout: "piped",
    }).output()).stdout;
    assert.equal(
      JSON.parse(new TextDecoder().decode(mtu))[0].mtu,
      1280,
      "tuning ran on the macvlan's result",
    );
    const cached = await listFiles(join(f.root.cniDir, "results"));
    assert.deepEqual(cached, [
      `bridge-net-${f.containerId}-eth0`,
      `macvlan-tuned-${f.containerId}-net1`,
    ]);
    assert.equal((await call(f, "DEL", conf)).code, 0);
    assert.equal(await f.ns.link("net1"), undefined);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a failing second delegate rolls back eth0, the lease and the cache", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    (conf.delegates[1] as Record<string, unknown>).master = "mt-no-such-if";
    const add = await call(f, "ADD", conf);
    assert.notEqual(add.code, 0);
    const err = add.json!;
    assert.equal(typeof err.code, "number");
    assert.match(String(err.msg), /macvlan-net/);
    assert.match(String(err.msg), /net1/);
    assert.match(String(err.msg), /default\/web-1/);
    assert.match(String(err.details), /rolled back/);
    assert.equal(await f.ns.link("eth0"), undefined, "eth0 is gone");
    assert.equal(await f.ns.link("net1"), undefined);
    const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.deepEqual(leases, [], "the host-local lease is released");
    assert.deepEqual(await listFiles(f.root.cniDir), [], "no cache entry survives");
    assert.doesNotMatch(add.stdout + add.stderr, /\n\s+at /, "no stack trace");

    const del = await call(f, "DEL", conf);
    assert.equal(del.code, 0, "DEL after a failed ADD succeeds: " + del.stdout);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL after the netns was removed releases the lease and succeeds", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    assert.equal((await call(f, "ADD", conf)).code, 0);
    await f.ns.remove();
    const del = await f.root.run({
      command: "DEL",
      containerId: f.containerId,
      netns: f.ns.path,
      config: conf,
    });
    assert.equal(del.code, 0, del.stdout);
    const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.deepEqual(leases, []);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
    const emptyNetns = await f.root.run({
      command: "DEL",
      containerId: f.containerId,
      config: conf,
    });
    assert.equal(emptyNetns.code, 0, "DEL with CNI_NETNS unset succeeds too: " + emptyNetns.stdout);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL twice succeeds both times", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "0.4.0");
    assert.equal((await call(f, "ADD", conf)).code, 0);
    const first = await call(f, "DEL", conf);
    const second = await call(f, "DEL", conf);
    assert.equal(first.code, 0, first.stdout);
    assert.equal(second.code, 0, second.stdout);
    assert.equal(await f.ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("CHECK after ADD succeeds, and fails once an interface is gone", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    assert.equal((await call(f, "ADD", conf)).code, 0);
    const ok = await call(f, "CHECK", conf);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(ok.stdout, "");
    await new Deno.Command("ip", { args: ["-n", f.ns.name, "link", "del", "net1"] }).output();
    const broken = await call(f, "CHECK", conf);
    assert.notEqual(broken.code, 0);
    assert.match(String(broken.json!.msg), /macvlan-net/);
    assert.equal((await call(f, "DEL", conf)).code, 0);
  } finally {
    await f.cleanup();
  }
});

Deno.test("malformed stdin gives error code 6 and changes nothing", async () => {
  const f = await fixture();
  try {
    const bad = await f.root.run({
      command: "ADD",
      containerId: f.containerId,
      netns: f.ns.path,
      config: '{"cniVersion": "1.0.0", "name": "x", "delegates": [',
    });
    assert.notEqual(bad.code, 0);
    assert.equal(bad.json!.code, 6);
    assert.equal(typeof bad.json!.msg, "string");
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("duplicate interface names are rejected before anything runs", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    const extra = { ...conf.delegates[1], name: "macvlan-two" };
    conf.delegates.push(extra);
    // delegate 2 would be net2; ask the runtime for CNI_IFNAME=net2 to force a clash
    const add = await f.root.run({
      command: "ADD",
      containerId: f.containerId,
      netns: f.ns.path,
      ifName: "net2",
      config: conf,
    });
    assert.notEqual(add.code, 0);
    assert.match(String(add.json!.msg), /both would get interface "net2"/);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.equal(await hostLinkExists(f.bridge), false, "no delegate ran");
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL with an unusable config still releases everything from the scratch cache", async () => {
  const f = await fixture();
  try {
    // The default cniDir (/var/lib/cni/multus): a broken config cannot name another one.
    const conf = demoConf(f, "1.0.0", { cniDir: undefined });
    assert.equal((await call(f, "ADD", conf)).code, 0);
    assert.ok(await Deno.stat(`/var/lib/cni/multus/${f.containerId}`));
    const del = await f.root.run({
      command: "DEL",
      containerId: f.containerId,
      netns: f.ns.path,
      config: '{"cniVersion": "1.0.0", "name": broken',
    });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.deepEqual(leases, []);
    const left = (await listFiles("/var/lib/cni/multus")).filter((p) => p.includes(f.containerId));
    assert.deepEqual(left, []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL reads a scratch cache written by Multus (upgrade in place) and releases it", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "0.4.0");
    const bridge = conf.delegates[0];
    // What Multus v4 left behind for a pod it added: its delegate attached by libcni, and
    // the scratch cache in its format (a JSON array of delegate configs, `Bytes` base64).
    const direct = await new Deno.Command("/usr/lib/cni/bridge", {
      env: {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: f.containerId,
        CNI_NETNS: f.ns.path,
        CNI_IFNAME: "eth0",
        CNI_PATH: "/usr/lib/cni",
      },
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const writer = direct.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(bridge)));
    await writer.close();
    assert.equal((await direct.output()).code, 0);
    assert.ok(await f.ns.link("eth0"));
    const multusEntry = {
      Conf: { cniVersion: "0.4.0", name: "bridge-net", type: "bridge", ipam: {}, dns: {} },
      ConfList: {},
      Name: "bridge-net",
      IsFilterV4Gateway: false,
      IsFilterV6Gateway: false,
      Bytes: new TextEncoder().encode(JSON.stringify(bridge)).toBase64(),
    };
    await Deno.mkdir(f.root.cniDir, { recursive: true });
    await Deno.writeTextFile(join(f.root.cniDir, f.containerId), JSON.stringify([multusEntry]));

    const del = await call(f, "DEL", conf);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(await f.ns.link("eth0"), undefined);
    const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
    assert.deepEqual(leases, [], "the lease Multus's delegate took is released");
    assert.deepEqual(await listFiles(f.root.cniDir), []);
  } finally {
    await f.cleanup();
  }
});

Deno.test("a bad field in the config is a CNI error naming the field, the network and the pod", async () => {
  const f = await fixture();
  try {
    const conf = demoConf(f, "1.0.0");
    (conf.delegates[1] as Record<string, unknown>).type = "../../bin/sh";
    const add = await call(f, "ADD", conf);
    assert.notEqual(add.code, 0);
    assert.equal(add.json!.code, 7);
    assert.match(String(add.json!.msg), /delegates\[1\]/);
    assert.match(String(add.json!.msg), /"\.\.\/\.\.\/bin\/sh" is not a plugin name/);
    assert.match(String(add.json!.msg), /pod "default\/web-1"/);
    assert.doesNotMatch(add.stdout + add.stderr, /\n\s+at /);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    assert.equal(await hostLinkExists(f.bridge), false, "nothing ran");
  } finally {
    await f.cleanup();
  }
});

Deno.test("GC releases containers the runtime no longer lists and keeps the listed ones", async () => {
  for (const key of ["cni.dev/valid-attachments", "cni.dev/attachments"]) {
    const f = await fixture();
    const other = await TestNetns.create();
    try {
      const conf = demoConf(f, "1.0.0", { cniVersion: "1.1.0" });
      const n = subnetOf(conf);
      // the macvlan's static address would clash between two pods: bridge only
      conf.delegates = [conf.delegates[0]];
      const keep = { ...f, containerId: `${f.containerId}k` };
      const stale = { ...f, containerId: `${f.containerId}s`, ns: other };
      assert.equal((await call(keep, "ADD", conf)).code, 0);
      assert.equal((await call(stale, "ADD", conf)).code, 0);
      const gc = await f.root.run({
        command: "GC",
        config: { ...conf, [key]: [{ containerID: keep.containerId, ifname: "eth0" }] },
      });
      assert.equal(gc.code, 0, gc.stdout + gc.stderr);
      assert.deepEqual(await f.ns.ipv4("eth0"), [`10.231.${n}.2/24`], "the listed pod keeps eth0");
      const leases = (await listFiles(f.leaseDir)).filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p));
      assert.equal(leases.length, 1, `${key}: the stale pod's lease is released`);
      const cache = await listFiles(f.root.cniDir);
      assert.ok(cache.includes(keep.containerId));
      assert.ok(!cache.some((p) => p.includes(stale.containerId)), `${key}: stale cache removed`);
      assert.equal((await call(keep, "DEL", conf)).code, 0);
    } finally {
      await other.remove();
      await f.cleanup();
    }
  }
});

Deno.test("STATUS asks the default network's plugins (1.1.0) and passes on their answer", async () => {
  const f = await fixture();
  try {
    const script = join(f.root.binDir, "status-probe");
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\ncat >/dev/null\necho "$CNI_COMMAND" >> "${f.root.dir}/status-calls"\n` +
        `[ -e "${f.root.dir}/down" ] && { echo '{"cniVersion":"1.1.0","code":50,"msg":"the pod network is not ready"}'; exit 1; }\n` +
        `exit 0\n`,
    );
    await Deno.chmod(script, 0o755);
    const conf = {
      ...demoConf(f, "1.1.0"),
      delegates: [{ cniVersion: "1.1.0", name: "probe-net", type: "status-probe" }],
    };
    const ok = await f.root.run({ command: "STATUS", config: conf });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(ok.stdout, "");
    await Deno.writeTextFile(join(f.root.dir, "down"), "");
    const down = await f.root.run({ command: "STATUS", config: conf });
    assert.notEqual(down.code, 0);
    assert.equal(down.json!.code, 50);
    assert.match(String(down.json!.msg), /not ready/);
    assert.equal(
      (await Deno.readTextFile(join(f.root.dir, "status-calls"))).trim(),
      "STATUS\nSTATUS",
    );
    const old = await f.root.run({ command: "STATUS", config: { ...conf, cniVersion: "1.0.0" } });
    assert.equal(old.json!.code, 1, "STATUS needs cniVersion 1.1.0");
  } finally {
    await f.cleanup();
  }
});

Deno.test("ADD waits for the readiness indicator file, and fails clearly when it never comes", async () => {
  const f = await fixture();
  try {
    const indicator = join(f.root.dir, "ready");
    const conf = demoConf(f, "1.0.0", {
      readinessindicatorfile: indicator,
      readinessIndicatorTimeoutSeconds: 1,
    });
    const late = await call(f, "ADD", conf);
    assert.equal(late.json!.code, 11);
    assert.match(String(late.json!.msg), /default network is not ready/);
    assert.match(String(late.json!.msg), /default\/web-1/);
    assert.deepEqual((await f.ns.links()).map((l) => l.ifname), ["lo"]);
    setTimeout(() => Deno.writeTextFileSync(indicator, ""), 300);
    const add = await call(f, "ADD", { ...conf, readinessIndicatorTimeoutSeconds: 10 });
    assert.equal(add.code, 0, add.stdout);
    assert.ok(await f.ns.link("eth0"));
    assert.equal((await call(f, "DEL", conf)).code, 0);
  } finally {
    await f.cleanup();
  }
});
