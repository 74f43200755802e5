/**
 * Crashes: the plugin SIGKILLed at chosen points of ADD (before the first delegate, between
 * delegates, inside a delegate, before the status write, inside a cache write, and at random
 * moments), and delegates that hang, crash or print garbage. After each, the runtime's next
 * DEL must leave nothing behind and the next ADD must work.
 *
 * No test hooks in the plugin: stand-in delegates in the test bin dir kill their parent (the
 * launcher `exec`s Deno, so the parent is the plugin), the test API server holds the status
 * write while the test kills the plugin, and strace holds the cache file's fdatasync.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  delegatesModeConf,
  makeTestRoot,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import { deleteHostLink, HostVeth, listFiles, TestNetns } from "../helpers/netns.ts";
import { startTestApiServer } from "../k8s_api/server.ts";
import {
  assertCacheFilesComplete,
  assertCniError,
  assertNothingLeft,
  assertOk,
  leases,
  linkNames,
  nextOctet,
  processAlive,
  Rng,
  startPlugin,
  tempFiles,
  waitFor,
  writeCrashWrappers,
  writeScript,
} from "./_helpers.ts";

interface Fixture {
  root: TestRoot;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  eth0Net: number;
  net1Net: number;
  cleanup(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const root = await makeTestRoot();
  await writeCrashWrappers(root.binDir, ["bridge", "macvlan"]);
  const ns = await TestNetns.create();
  const veth = await HostVeth.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  return {
    root,
    ns,
    veth,
    bridge,
    leaseDir: join(root.dir, "leases"),
    eth0Net: nextOctet(),
    net1Net: nextOctet(),
    async cleanup() {
      await ns.remove();
      await veth.remove();
      await deleteHostLink(bridge);
      await root.cleanup();
    },
  };
}

function bridgeNet(f: Fixture) {
  return {
    cniVersion: "1.0.0",
    name: "crash-bridge",
    type: "bridge",
    bridge: f.bridge,
    isGateway: true,
    ipam: {
      type: "host-local",
      subnet: `10.252.${f.eth0Net}.0/24`,
      dataDir: f.leaseDir,
      routes: [{ dst: "0.0.0.0/0" }],
    },
  };
}

function macvlanNet(f: Fixture) {
  return {
    cniVersion: "1.0.0",
    name: "crash-macvlan",
    type: "macvlan",
    master: f.veth.a,
    mode: "bridge",
    ipam: { type: "host-local", subnet: `10.253.${f.net1Net}.0/24`, dataDir: f.leaseDir },
  };
}

function multusConf(f: Fixture, delegates: unknown[], extra: Record<string, unknown> = {}) {
  return delegatesModeConf(f.root, delegates, {
    name: "multus-crash",
    logLevel: "debug",
    ...extra,
  });
}

const ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=stress;K8S_POD_NAME=web";

function newContainerId(): string {
  return `crash-${uniqueSuffix()}${uniqueSuffix()}`;
}

async function del(f: Fixture, containerId: string, conf: unknown, ns = f.ns) {
  return await f.root.run({
    command: "DEL",
    containerId,
    netns: ns.path,
    args: ARGS,
    config: conf as Record<string, unknown>,
  });
}

async function add(f: Fixture, containerId: string, conf: unknown, ns = f.ns) {
  return await f.root.run({
    command: "ADD",
    containerId,
    netns: ns.path,
    args: ARGS,
    config: conf as Record<string, unknown>,
  });
}

/** The runtime's DEL after a crash, then an ADD and DEL of a new container. */
async function recoverAndReuse(f: Fixture, containerId: string, conf: unknown, label: string) {
  await assertCacheFilesComplete(f.root.cniDir, label);
  const cleanup = await del(f, containerId, conf);
  assertOk(cleanup, `${label}: DEL after the crash`);
  await assertNothingLeft(
    { namespaces: [f.ns], leaseDir: f.leaseDir, cniDir: f.root.cniDir, bridge: f.bridge },
    `${label}: after the runtime's DEL`,
  );
  const next = newContainerId();
  const again = await add(f, next, conf);
  assertOk(again, `${label}: the next ADD`);
  assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"], `${label}: the next ADD`);
  assertOk(await del(f, next, conf), `${label}: DEL of the next container`);
  await assertNothingLeft(
    { namespaces: [f.ns], leaseDir: f.leaseDir, cniDir: f.root.cniDir, bridge: f.bridge },
    `${label}: after the next container`,
  );
}

Deno.test("SIGKILL before the first delegate, between delegates and inside the last one: DEL cleans up, the next ADD works", async () => {
  const f = await fixture();
  try {
    const conf = multusConf(f, [bridgeNet(f), macvlanNet(f)]);
    const points: [string, string, string[]][] = [
      ["before the first delegate", "before:bridge:ADD", ["lo"]],
      ["between the delegates", "before:macvlan:ADD", ["eth0", "lo"]],
      ["after the last delegate attached, before its result was read", "after:macvlan:ADD", [
        "eth0",
        "lo",
        "net1",
      ]],
    ];
    for (const [label, crash, links] of points) {
      const containerId = newContainerId();
      const run = startPlugin(f.root, {
        command: "ADD",
        containerId,
        netns: f.ns.path,
        args: ARGS,
        config: conf,
        env: { STRESS_CRASH: crash },
      });
      const out = await run.done;
      assert.equal(out.signal, "SIGKILL", `${label}: the plugin itself was killed (${out.code})`);
      assert.equal(out.stdout, "", label);
      assert.deepEqual(await linkNames(f.ns), links, `${label}: attached when it died`);
      assert.ok(
        (await listFiles(f.root.cniDir)).includes(containerId),
        `${label}: the scratch cache was written before the first delegate`,
      );
      await recoverAndReuse(f, containerId, conf, label);
    }
  } finally {
    await f.cleanup();
  }
});

Deno.test("SIGKILL after the delegates, while the status write is in flight: DEL cleans up without the API", async () => {
  const f = await fixture();
  const api = await startTestApiServer();
  try {
    const clusterFile = join(f.root.dir, "10-bridge.conf");
    await Deno.writeTextFile(clusterFile, JSON.stringify(bridgeNet(f)));
    api.setPod({
      metadata: {
        name: "web",
        namespace: "stress",
        annotations: { "k8s.v1.cni.cncf.io/networks": "crash-macvlan" },
      },
    });
    api.setNad({
      metadata: { name: "crash-macvlan", namespace: "stress" },
      spec: { config: JSON.stringify(macvlanNet(f)) },
    });
    // Kubernetes mode: no delegates key at all.
    const conf = {
      ...multusConf(f, [], {
        kubeconfig: await api.writeKubeconfig(),
        clusterNetwork: clusterFile,
        confDir: f.root.confDir,
      }),
      delegates: undefined,
    };
    const statusPath = "/api/v1/namespaces/stress/pods/web/status";
    api.inject({ kind: "latency", ms: 60_000, path: statusPath });
    const containerId = newContainerId();
    const run = startPlugin(f.root, {
      command: "ADD",
      containerId,
      netns: f.ns.path,
      args: ARGS,
      config: conf,
    });
    const seen = await waitFor(() => api.requests().some((r) => r.path === statusPath), 20_000);
    assert.ok(seen, "the status write reached the API server");
    run.kill("SIGKILL");
    const out = await run.done;
    assert.equal(out.signal, "SIGKILL");
    assert.deepEqual(await linkNames(f.ns), ["eth0", "lo", "net1"], "both networks were attached");
    assert.equal(
      api.getPod("stress", "web")?.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"],
      undefined,
    );

    api.clearFaults();
    api.clearRequests();
    api.inject({ kind: "refuse" });
    await assertCacheFilesComplete(f.root.cniDir);
    assertOk(await del(f, containerId, conf), "DEL after the crash, API refusing");
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      cniDir: f.root.cniDir,
      bridge: f.bridge,
    });
    assert.equal(api.requests().length, 0, "DEL worked from the cache alone");

    api.clearFaults();
    const next = newContainerId();
    assertOk(await add(f, next, conf), "the next ADD");
    assert.equal(
      JSON.parse(
        api.getPod("stress", "web")!.metadata.annotations!["k8s.v1.cni.cncf.io/network-status"],
      ).length,
      2,
    );
    assertOk(await del(f, next, conf), "DEL of the next container");
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      cniDir: f.root.cniDir,
      bridge: f.bridge,
    });
  } finally {
    await api.close();
    await f.cleanup();
  }
});

Deno.test("SIGKILL at random moments of ADD never leaves a partial cache file; DEL always cleans up", async () => {
  const f = await fixture();
  const rng = new Rng(20260101);
  try {
    const conf = multusConf(f, [bridgeNet(f), macvlanNet(f)]);
    const warm = newContainerId();
    const started = performance.now();
    assertOk(await add(f, warm, conf), "a normal ADD");
    const addMs = performance.now() - started;
    assertOk(await del(f, warm, conf), "a normal DEL");

    const kills = 16;
    const outcomes = { beforeCache: 0, midway: 0, finished: 0 };
    for (let i = 0; i < kills; i++) {
      const containerId = newContainerId();
      const run = startPlugin(f.root, {
        command: "ADD",
        containerId,
        netns: f.ns.path,
        args: ARGS,
        config: conf,
      });
      await new Promise((r) => setTimeout(r, rng.next() * addMs));
      run.kill("SIGKILL");
      const out = await run.done;
      const label = `kill ${i}`;
      if (out.code === 0) outcomes.finished++;
      else if ((await listFiles(f.root.cniDir)).length === 0) outcomes.beforeCache++;
      else outcomes.midway++;
      await assertCacheFilesComplete(f.root.cniDir, label);
      assertOk(await del(f, containerId, conf), `${label}: DEL`);
      await assertNothingLeft(
        { namespaces: [f.ns], leaseDir: f.leaseDir, cniDir: f.root.cniDir, bridge: f.bridge },
        `${label} (${JSON.stringify(outcomes)})`,
      );
    }
    assert.ok(outcomes.midway > 0, `some kills landed inside ADD: ${JSON.stringify(outcomes)}`);
    const next = newContainerId();
    assertOk(await add(f, next, conf), "ADD after the kills");
    assertOk(await del(f, next, conf), "DEL after the kills");
  } finally {
    await f.cleanup();
  }
});

const hasStrace =
  (await new Deno.Command("sh", { args: ["-c", "command -v strace"], stdout: "null" }).output())
    .success;

Deno.test({
  name:
    "SIGKILL inside a cache write (strace holds its fdatasync): no partial file, DEL removes the temp file too",
  ignore: !hasStrace,
  async fn() {
    const f = await fixture();
    try {
      const conf = multusConf(f, [bridgeNet(f), macvlanNet(f)]);
      const cases: [string, (cid: string) => string][] = [
        ["the scratch cache", (cid) => `.${cid}.tmp-`],
        ["a result cache", () => "results/.crash-bridge-"],
      ];
      for (const [label, prefix] of cases) {
        const containerId = newContainerId();
        // Every fdatasync waits 0.4 s: long enough to see the temp file and kill its writer.
        const strace = [
          "strace",
          "-f",
          "-qq",
          "-o",
          "/dev/null",
          "-e",
          "trace=fdatasync",
          "-e",
          "inject=fdatasync:delay_enter=400000",
        ];
        const run = startPlugin(f.root, {
          command: "ADD",
          containerId,
          netns: f.ns.path,
          args: ARGS,
          config: conf,
        }, strace);
        let temp: string | undefined;
        await waitFor(
          async () => {
            temp = (await tempFiles(f.root.cniDir)).find((p) => p.startsWith(prefix(containerId)));
            return temp !== undefined;
          },
          20_000,
          5,
        );
        assert.ok(temp, `${label}: the temp file of the write appeared`);
        const pid = Number(/\.tmp-(\d+)-/.exec(temp)![1]);
        Deno.kill(pid, "SIGKILL");
        await run.done;
        assert.equal(await processAlive(pid), false);
        assert.deepEqual(
          await tempFiles(f.root.cniDir),
          [temp],
          `${label}: killed inside the write`,
        );
        await recoverAndReuse(f, containerId, conf, `killed inside the write of ${label}`);
      }
    } finally {
      await f.cleanup();
    }
  },
});

Deno.test("a delegate that hangs is killed at delegateTimeoutSeconds with its children; ADD fails clearly and rolls back", async () => {
  const f = await fixture();
  try {
    const pids = join(f.root.dir, "hang.pids");
    await writeScript(
      f.root.binDir,
      "hang",
      `
sleep 60 &
echo $$ >> ${pids}
echo $! >> ${pids}
wait
`,
    );
    const conf = multusConf(f, [bridgeNet(f), {
      cniVersion: "1.0.0",
      name: "hang-net",
      type: "hang",
    }], {
      delegateTimeoutSeconds: 1,
    });
    const containerId = newContainerId();
    const run = await add(f, containerId, conf);
    const err = assertCniError(run, "hanging delegate");
    assert.equal(err.code, 11, "try again later");
    assert.match(err.msg, /"hang-net"/);
    assert.match(err.msg, /stress\/web/);
    assert.match(err.msg, /did not finish within 1s and was killed/);
    assert.match(err.details ?? "", /rolled back/);
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      cniDir: f.root.cniDir,
      bridge: f.bridge,
    });
    const hung = (await Deno.readTextFile(pids)).trim().split("\n").map(Number);
    assert.ok(hung.length >= 2);
    for (const pid of hung) {
      assert.equal(await processAlive(pid), false, `process ${pid} was killed`);
    }
    assertOk(await del(f, containerId, conf), "the runtime's DEL");
  } finally {
    await f.cleanup();
  }
});

Deno.test("a delegate that crashes or prints garbage: clear error, full rollback, DEL succeeds", async () => {
  const f = await fixture();
  try {
    const cases: [string, string, RegExp, number | undefined][] = [
      [
        "exits 2 without output",
        "exit 2",
        /netplugin failed with no error message: exit status 2/,
        999,
      ],
      [
        "dies of SIGSEGV",
        "kill -SEGV $$",
        /netplugin failed with no error message: signal SIGSEGV/,
        999,
      ],
      [
        "prints garbage and exits 0",
        "printf 'garbage{{\\001\\377'",
        /succeeded but printed output that is not JSON/,
        6,
      ],
      [
        "prints garbage and exits 1",
        "printf 'oops<html>'; exit 1",
        /error parsing its diagnostic message "oops<html>"/,
        999,
      ],
      [
        "prints JSON that is not a result",
        `echo '{"cniVersion":"1.0.0","ips":"many"}'`,
        /ips/,
        undefined,
      ],
      [
        "prints a CNI error",
        `echo '{"cniVersion":"1.0.0","code":7,"msg":"bad master","details":"no such link"}'; exit 1`,
        /bad master; no such link/,
        7,
      ],
    ];
    for (const [label, body, message, code] of cases) {
      const type = `bad${uniqueSuffix()}`;
      await writeScript(
        f.root.binDir,
        type,
        `[ "$CNI_COMMAND" = ADD ] || exit 0\ncat >/dev/null\n${body}`,
      );
      const conf = multusConf(f, [bridgeNet(f), { cniVersion: "1.0.0", name: "bad-net", type }]);
      const containerId = newContainerId();
      const run = await add(f, containerId, conf);
      const err = assertCniError(run, label);
      if (code !== undefined) assert.equal(err.code, code, label);
      assert.match(err.msg, message, label);
      assert.match(err.msg, /Cannot attach network "bad-net" as net1 to pod "stress\/web"/, label);
      assert.match(err.details ?? "", /rolled back/, label);
      await assertNothingLeft(
        { namespaces: [f.ns], leaseDir: f.leaseDir, cniDir: f.root.cniDir, bridge: f.bridge },
        label,
      );
      assertOk(await del(f, containerId, conf), `${label}: DEL`);
    }
    assert.deepEqual(await leases(f.leaseDir), []);
  } finally {
    await f.cleanup();
  }
});
