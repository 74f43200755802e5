/**
 * Faults around the plugin: the API server down, refusing, hanging, dropping connections or
 * answering 401, 403, 429, 500 and 503 at each step of ADD (pod read, NAD read, status
 * write) and during DEL; the cache dir read-only or on a full file system; the log file
 * unwritable. For each: what the runtime gets back (exit code, CNI error JSON naming the pod
 * and network) and proof that nothing is left half-attached.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  delegatesModeConf,
  makeTestRoot,
  type PluginRun,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import { deleteHostLink, HostVeth, listFiles, sh, TestNetns } from "../helpers/netns.ts";
import { type TestApiServer } from "../k8s_api/server.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import {
  assertCniError,
  assertNothingLeft,
  assertOk,
  linkNames,
  nextOctet,
  writeScript,
} from "./_helpers.ts";

const STATUS = "k8s.v1.cni.cncf.io/network-status";
const POD_PATH = "/api/v1/namespaces/default/pods/web-1";
const NAD_PATH =
  "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/mv-fault";
const STATUS_PATH = `${POD_PATH}/status`;
/** Every API call gives up after this; hangs and retries are bounded by it. */
const API_TIMEOUT_SECONDS = 5; // generous: a loaded 2-core machine must not turn a slow answer into a timeout

interface Fixture {
  root: TestRoot;
  api: TestApiServer;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  kubeconfig: string;
  conf: Record<string, unknown>;
  containerId: string;
  run(command: "ADD" | "DEL", conf?: Record<string, unknown>): Promise<PluginRun>;
  assertClean(label: string): Promise<void>;
  cleanup(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const octet = nextOctet();
  const env = await startK8sFixture({ clusterSubnet: `10.254.${octet}`, name: "multus-faults" });
  const { root, api, ns, veth, bridge, leaseDir, kubeconfig } = env;
  api.setPod({
    metadata: {
      name: "web-1",
      namespace: "default",
      annotations: { "k8s.v1.cni.cncf.io/networks": "mv-fault" },
    },
  });
  env.macvlanNad("mv-fault", {
    ipam: { type: "static", addresses: [{ address: `10.249.${octet}.10/24` }] },
  });
  const conf = env.multusConf({ apiTimeoutSeconds: API_TIMEOUT_SECONDS });
  const containerId = `flt-${uniqueSuffix()}${uniqueSuffix()}`;
  const f: Fixture = {
    root,
    api,
    ns,
    veth,
    bridge,
    leaseDir,
    kubeconfig,
    conf,
    containerId,
    run: (command, c = conf) =>
      root.run({
        command,
        containerId,
        netns: ns.path,
        args:
          `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
        config: c,
      }),
    async assertClean(label) {
      await assertNothingLeft({ namespaces: [ns], leaseDir, cniDir: root.cniDir, bridge }, label);
      assert.equal(
        api.getPod("default", "web-1")?.metadata.annotations?.[STATUS],
        undefined,
        `${label}: no network-status`,
      );
    },
    cleanup: env.cleanup,
  };
  return f;
}

/** A port on 127.0.0.1 with nothing listening. */
function deadPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface FaultCase {
  label: string;
  /** Makes the API misbehave on `path`/`method`; may replace the multus config. */
  apply(
    f: Fixture,
    path: string,
    method: string,
  ): Promise<Record<string, unknown> | void> | Record<string, unknown> | void;
  /** CNI error code the runtime must get. */
  code: number;
  /** What the message or details must say besides the pod. */
  says: RegExp;
}

const FAULTS: Record<string, FaultCase> = {
  refuse: {
    label: "connections refused",
    apply: (f) => f.api.inject({ kind: "refuse" }),
    code: 11,
    says: /connection refused|closed before it answered/,
  },
  hang: {
    label: "hanging",
    apply: (f, path, method) => f.api.inject({ kind: "hang", path, method }),
    code: 11,
    says: /did not answer within/,
  },
  drop: {
    label: "dropping connections",
    apply: (f, path, method) => f.api.inject({ kind: "drop", path, method }),
    code: 11,
    says: /closed before it answered|connection/,
  },
  401: {
    label: "401 Unauthorized",
    apply: (f, path, method) =>
      f.api.inject({ kind: "status", status: 401, path, method, times: 100 }),
    code: 999,
    says: /401 Unauthorized[\s\S]*Renew the token or client certificate/,
  },
  403: {
    label: "403 Forbidden",
    apply: (f, path) => {
      if (path === POD_PATH) f.api.forbid("get", "pods");
      else if (path === NAD_PATH) f.api.forbid("get", "network-attachment-definitions");
      else {
        f.api.forbid("patch", "pods/status");
        f.api.forbid("update", "pods/status");
      }
    },
    code: 999,
    says: /403 Forbidden[\s\S]*RBAC/,
  },
  429: {
    label: "429 with Retry-After",
    apply: (f, path, method) =>
      f.api.inject({ kind: "status", status: 429, retryAfter: 1, path, method, times: 100 }),
    code: 11,
    says: /429 Too Many Requests/,
  },
  500: {
    label: "500",
    apply: (f, path, method) =>
      f.api.inject({ kind: "status", status: 500, path, method, times: 100 }),
    code: 11,
    says: /500 Internal Server Error/,
  },
  503: {
    label: "503",
    apply: (f, path, method) =>
      f.api.inject({ kind: "status", status: 503, path, method, times: 100 }),
    code: 11,
    says: /503 Service Unavailable/,
  },
};

/** Runs `check` for every case at once (each with its own fixture) and reports all failures. */
async function allCases<T>(cases: [string, T][], check: (name: string, c: T) => Promise<void>) {
  const results = await Promise.allSettled(cases.map(([name, c]) => check(name, c)));
  const failures = results.flatMap((r, i) =>
    r.status === "rejected" ? [`${cases[i][0]}: ${(r.reason as Error)?.message ?? r.reason}`] : []
  );
  assert.deepEqual(failures, [], failures.join("\n\n"));
}

/** ADD fails with `c`, nothing is attached, and DEL with the fault still there succeeds. */
async function addFailsCleanly(
  f: Fixture,
  c: FaultCase,
  conf: Record<string, unknown>,
  stage: string,
  names: RegExp[],
) {
  const label = `${c.label} at the ${stage}`;
  const add = await f.run("ADD", conf);
  const err = assertCniError(add, label);
  assert.equal(err.code, c.code, `${label}: ${add.stdout}`);
  for (const name of names) assert.match(err.msg, name, `${label}: ${add.stdout}`);
  assert.match(`${err.msg} ${err.details ?? ""}`, c.says, `${label}: ${add.stdout}`);
  await f.assertClean(`${label}: after ADD`);
  const del = await f.run("DEL", conf);
  assertOk(del, `${label}: DEL with the fault still there`);
  await f.assertClean(`${label}: after DEL`);
}

Deno.test("API faults while reading the pod: ADD fails before anything is attached, naming the pod; DEL succeeds", async () => {
  const cases: [string, FaultCase][] = [
    ["down", {
      label: "API server down",
      apply: (f) => ({ ...f.conf, kubeconfig: f.kubeconfig }),
      code: 11,
      says: /connection refused/,
    }],
    ...Object.entries(FAULTS),
  ];
  await allCases(cases, async (name, c) => {
    const f = await fixture();
    try {
      let conf = f.conf;
      if (name === "down") {
        const path = join(f.root.dir, "down.kubeconfig");
        await f.api.writeKubeconfig({ path, server: `https://127.0.0.1:${deadPort()}` });
        conf = { ...f.conf, kubeconfig: path };
      } else {
        await c.apply(f, POD_PATH, "GET");
      }
      await addFailsCleanly(f, c, conf, "pod read", [/pod "default\/web-1"/]);
    } finally {
      await f.cleanup();
    }
  });
});

Deno.test("API faults while reading the NetworkAttachmentDefinition: ADD names the pod and the network, attaches nothing", async () => {
  const cases = ["hang", "drop", "401", "403", "500", "clusterNetwork"].map((k) =>
    [k, FAULTS[k] ?? FAULTS[500]] as [string, FaultCase]
  );
  await allCases(cases, async (name, c) => {
    const f = await fixture();
    try {
      if (name === "clusterNetwork") {
        // The cluster network named by clusterNetwork, a NAD in multusNamespace.
        const path =
          "/apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions/cluster-net";
        await c.apply(f, path, "GET");
        const conf = { ...f.conf, clusterNetwork: "cluster-net" };
        await addFailsCleanly(f, c, conf, "cluster network read", [
          /default\/web-1/,
          /kube-system\/cluster-net/,
        ]);
      } else {
        await c.apply(f, NAD_PATH, "GET");
        await addFailsCleanly(f, c, f.conf, "NAD read", [/default\/web-1/, /default\/mv-fault/]);
      }
    } finally {
      await f.cleanup();
    }
  });
});

Deno.test("API faults on the status write after the delegates ran: ADD rolls every network back and says so", async () => {
  const cases: [string, FaultCase][] = [
    ["gone", {
      label: "API server going down",
      apply: () => {},
      code: 11,
      says: /connection refused|closed before it answered/,
    }],
    ...["hang", "drop", "401", "403", "429", "500", "503"].map((k) =>
      [k, FAULTS[k]] as [string, FaultCase]
    ),
  ];
  await allCases(cases, async (name, c) => {
    const f = await fixture();
    try {
      if (name === "gone") {
        // Hold the status write, then stop the server under it.
        f.api.inject({ kind: "latency", ms: 60_000, path: STATUS_PATH });
        const closing = (async () => {
          while (!f.api.requests().some((r) => r.path === STATUS_PATH)) {
            await new Promise((r) => setTimeout(r, 10));
          }
          await f.api.close();
        })();
        await addFailsCleanly(f, c, f.conf, "status write", [/default\/web-1/, /network status/]);
        await closing;
      } else {
        await c.apply(f, STATUS_PATH, "PATCH");
        await addFailsCleanly(f, c, f.conf, "status write", [/default\/web-1/, /network status/]);
      }
    } finally {
      await f.cleanup();
    }
  });
});

Deno.test("transient API errors are retried: 429 with Retry-After is honoured, 503 twice then success", async () => {
  const f = await fixture();
  try {
    f.api.inject({
      kind: "status",
      status: 429,
      retryAfter: 1,
      path: POD_PATH,
      method: "GET",
      times: 1,
    });
    f.api.inject({ kind: "status", status: 503, path: NAD_PATH, method: "GET", times: 2 });
    const add = await f.run("ADD");
    assertOk(add, "ADD through transient errors");
    assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"]);
    const gets = f.api.requests().filter((r) => r.method === "GET" && r.path === POD_PATH);
    assert.deepEqual(gets.map((g) => g.status), [429, 200]);
    assert.ok(gets[1].time - gets[0].time >= 950, "waited for Retry-After");
    const nads = f.api.requests().filter((r) => r.path === NAD_PATH);
    assert.deepEqual(nads.map((g) => g.status), [503, 503, 200]);
    assertOk(await f.run("DEL"));
    await assertNothingLeft({
      namespaces: [f.ns],
      cniDir: f.root.cniDir,
      leaseDir: f.leaseDir,
      bridge: f.bridge,
    });
  } finally {
    await f.cleanup();
  }
});

Deno.test("DEL after a successful ADD succeeds from the cache whatever the API does, without calling it", async () => {
  const cases: [string, FaultCase | undefined][] = [
    ["down", undefined],
    ...Object.entries(FAULTS).map(([k, c]) => [k, c] as [string, FaultCase]),
  ];
  await allCases(cases, async (name, c) => {
    const f = await fixture();
    try {
      assertOk(await f.run("ADD"), `${name}: ADD`);
      assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"]);
      f.api.clearRequests();
      if (name === "down") await f.api.close();
      else {
        for (const path of [POD_PATH, NAD_PATH, STATUS_PATH]) {
          await c!.apply(f, path, path === STATUS_PATH ? "PATCH" : "GET");
        }
      }
      const del = await f.run("DEL");
      assertOk(del, `${name}: DEL`);
      await assertNothingLeft({
        namespaces: [f.ns],
        cniDir: f.root.cniDir,
        leaseDir: f.leaseDir,
        bridge: f.bridge,
      }, name);
      if (name !== "down") {
        assert.equal(
          f.api.requests().filter((r) => r.method !== "").length,
          0,
          `${name}: no API call`,
        );
      }
    } finally {
      await f.cleanup();
    }
  });
});

// File system faults (delegates mode: the API plays no part).

interface DelegatesFixture {
  root: TestRoot;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  mounts: string[];
  conf(extra?: Record<string, unknown>): Record<string, unknown>;
  run(
    command: "ADD" | "DEL",
    conf: Record<string, unknown>,
    containerId: string,
  ): Promise<PluginRun>;
  /** A tmpfs of 64 KiB at a new dir, filled up but `freePages` pages of 4 KiB. */
  smallTmpfs(freePages: number): Promise<string>;
  /** A new dir, bind-mounted read-only onto itself. */
  readOnlyDir(): Promise<string>;
  cleanup(): Promise<void>;
}

async function delegatesFixture(): Promise<DelegatesFixture> {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const veth = await HostVeth.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  const leaseDir = join(root.dir, "leases");
  const octet = nextOctet();
  const mounts: string[] = [];
  return {
    root,
    ns,
    veth,
    bridge,
    leaseDir,
    mounts,
    conf: (extra = {}) =>
      delegatesModeConf(root, [
        {
          cniVersion: "1.0.0",
          name: "fs-bridge",
          type: "bridge",
          bridge,
          isGateway: true,
          ipam: { type: "host-local", subnet: `10.248.${octet}.0/24`, dataDir: leaseDir },
        },
        {
          cniVersion: "1.0.0",
          name: "fs-macvlan",
          type: "macvlan",
          master: veth.a,
          mode: "bridge",
          ipam: { type: "static", addresses: [{ address: `10.247.${octet}.10/24` }] },
        },
      ], { name: "multus-fs", logLevel: "debug", ...extra }),
    run: (command, conf, containerId) =>
      root.run({
        command,
        containerId,
        netns: ns.path,
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1",
        config: conf,
      }),
    async smallTmpfs(freePages) {
      const dir = await Deno.makeTempDir({ dir: root.dir, prefix: "tmpfs-" });
      await sh(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", dir]);
      mounts.push(dir);
      await sh(["dd", "if=/dev/zero", `of=${dir}/filler`, "bs=4096", `count=${16 - freePages}`]);
      return dir;
    },
    async readOnlyDir() {
      const dir = await Deno.makeTempDir({ dir: root.dir, prefix: "ro-" });
      await sh(["mount", "--bind", dir, dir]);
      mounts.push(dir);
      await sh(["mount", "-o", "remount,bind,ro", dir]);
      return dir;
    },
    async cleanup() {
      for (const dir of mounts.reverse()) await sh(["umount", "-l", dir], { allowFail: true });
      await ns.remove();
      await veth.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
}

const newId = () => `fs-${uniqueSuffix()}${uniqueSuffix()}`;

Deno.test("cache dir read-only: ADD fails before any delegate, naming the pod and the dir; DEL still releases everything", async () => {
  const f = await delegatesFixture();
  try {
    const ro = await f.readOnlyDir();
    const conf = f.conf({ cniDir: ro });
    const id = newId();
    const add = await f.run("ADD", conf, id);
    const err = assertCniError(add, "read-only cache dir");
    assert.equal(err.code, 5, add.stdout);
    assert.match(err.msg, /pod "default\/web-1"/, add.stdout);
    assert.match(err.msg, new RegExp(`${ro}.*[Rr]ead-only file system`), add.stdout);
    assert.match(err.details ?? "", /writable and not full/);
    await assertNothingLeft(
      { namespaces: [f.ns], leaseDir: f.leaseDir, bridge: f.bridge },
      "read-only",
    );
    assertOk(await f.run("DEL", conf, id), "DEL without a cache on a read-only dir");

    // Attached while writable; the disk turns read-only before the pod is deleted.
    const rw = join(f.root.dir, "rw-then-ro");
    await Deno.mkdir(rw);
    await sh(["mount", "--bind", rw, rw]);
    f.mounts.push(rw);
    const conf2 = f.conf({ cniDir: rw });
    const id2 = newId();
    assertOk(await f.run("ADD", conf2, id2), "ADD while writable");
    await sh(["mount", "-o", "remount,bind,ro", rw]);
    const del = await f.run("DEL", conf2, id2);
    assertOk(del, "DEL on a read-only cache dir releases what is real and succeeds");
    await assertNothingLeft(
      { namespaces: [f.ns], leaseDir: f.leaseDir, bridge: f.bridge },
      "DEL read-only",
    );
    assert.match(
      await Deno.readTextFile(f.root.logFile),
      new RegExp(`cannot remove|Cannot remove`),
      "the stale cache file is logged",
    );
    await sh(["mount", "-o", "remount,bind,rw", rw]);
    assertOk(await f.run("DEL", conf2, id2), "DEL again once writable");
    assert.deepEqual(await listFiles(rw), [], "the second DEL removes the cache");
  } finally {
    await f.cleanup();
  }
});

Deno.test("cache dir on a full file system: ADD fails cleanly whether the scratch cache or a result cannot be written; DEL works", async () => {
  const f = await delegatesFixture();
  try {
    const full = await f.smallTmpfs(0);
    const conf = f.conf({ cniDir: join(full, "cni") });
    const id = newId();
    const add = await f.run("ADD", conf, id);
    const err = assertCniError(add, "full file system");
    assert.equal(err.code, 5, add.stdout);
    assert.match(err.msg, /pod "default\/web-1"/, add.stdout);
    assert.match(err.msg, /No space left on device/, add.stdout);
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      bridge: f.bridge,
      cniDir: join(full, "cni"),
    }, "full");
    assertOk(await f.run("DEL", conf, id), "DEL on a full file system");

    // Room for the scratch cache (one page), none for the first result.
    const almost = await f.smallTmpfs(1);
    const conf2 = f.conf({ cniDir: join(almost, "cni") });
    const id2 = newId();
    const add2 = await f.run("ADD", conf2, id2);
    const err2 = assertCniError(add2, "full after the scratch cache");
    assert.equal(err2.code, 5, add2.stdout);
    assert.match(
      err2.msg,
      /Cannot attach network "fs-bridge" as eth0 to pod "default\/web-1"/,
      add2.stdout,
    );
    assert.match(err2.msg, /No space left on device/, add2.stdout);
    assert.match(err2.details ?? "", /rolled back/, add2.stdout);
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      bridge: f.bridge,
      cniDir: join(almost, "cni"),
    }, "almost full");
    assertOk(await f.run("DEL", conf2, id2), "DEL after the failed ADD");

    // Attached with room to spare; the file system fills up before the pod is deleted.
    const roomy = await f.smallTmpfs(8);
    const conf3 = f.conf({ cniDir: join(roomy, "cni") });
    const id3 = newId();
    assertOk(await f.run("ADD", conf3, id3), "ADD with room");
    await sh(["dd", "if=/dev/zero", `of=${roomy}/more`, "bs=4096"], { allowFail: true });
    assertOk(await f.run("DEL", conf3, id3), "DEL on the now full file system");
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      bridge: f.bridge,
      cniDir: join(roomy, "cni"),
    }, "filled later");
  } finally {
    await f.cleanup();
  }
});

Deno.test("log file unwritable (a directory at its path, or on a full file system): ADD and DEL still work, errors still reach the runtime", async () => {
  const f = await delegatesFixture();
  try {
    const asDir = join(f.root.dir, "log-is-a-dir");
    await Deno.mkdir(asDir);
    const full = await f.smallTmpfs(0);
    for (
      const [label, logFile] of [["a directory", asDir], [
        "a full file system",
        join(full, "multus.log"),
      ]]
    ) {
      const conf = f.conf({ logFile });
      const id = newId();
      const add = await f.run("ADD", conf, id);
      assertOk(add, `${label}: ADD`);
      assert.match(add.stderr, /cannot write log file/, `${label}: said once on stderr`);
      assert.equal(add.stderr.match(/cannot write log file/g)!.length, 1, label);
      assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"], label);
      assertOk(await f.run("DEL", conf, id), `${label}: DEL`);
      await assertNothingLeft({
        namespaces: [f.ns],
        leaseDir: f.leaseDir,
        bridge: f.bridge,
        cniDir: f.root.cniDir,
      }, label);

      await writeScript(
        f.root.binDir,
        "fail-add",
        `[ "$CNI_COMMAND" = ADD ] || exit 0\necho '{"code":7,"msg":"no way"}'; exit 1`,
      );
      const failing = f.conf({ logFile });
      (failing.delegates as unknown[]).push({
        cniVersion: "1.0.0",
        name: "failing",
        type: "fail-add",
      });
      const bad = await f.run("ADD", failing, newId());
      const err = assertCniError(bad, `${label}: failing ADD`);
      assert.match(err.msg, /no way/);
      await assertNothingLeft({
        namespaces: [f.ns],
        leaseDir: f.leaseDir,
        bridge: f.bridge,
        cniDir: f.root.cniDir,
      }, label);
    }
  } finally {
    await f.cleanup();
  }
});
