/**
 * Hostile input, the named attacks: plugin types that are paths, container ids and interface
 * names built to escape the cache dir, a NAD of another namespace under isolation, a 10 MB
 * annotation, JSON nested 100k levels deep everywhere JSON is read, kubeconfigs that point
 * at files whose content must never reach a log or an error or that never end (FIFOs, devices,
 * hung files), and API answers of the wrong shape. Each runs the real binary
 * through its launcher and checks what the runtime gets back and that nothing was touched.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type PluginRun, type TestRoot, uniqueSuffix } from "../helpers/plugin_run.ts";
import { hostLinkExists, listFiles, type TestNetns } from "../helpers/netns.ts";
import { startTestApiServer, type TestApiServer } from "../k8s_api/server.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import {
  assertCniError,
  assertCompleteLogLines,
  assertNothingLeft,
  assertOk,
  linkNames,
  nextOctet,
  startPlugin,
  writeScript,
} from "./_helpers.ts";

const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const DEPTH = 100_000;

interface Fixture {
  root: TestRoot;
  api: TestApiServer;
  ns: TestNetns;
  bridge: string;
  leaseDir: string;
  kubeconfig: string;
  clusterFile: string;
  containerId: string;
  /** Files that exist under the test root, for before/after comparisons. */
  files(): Promise<string[]>;
  conf(extra?: Record<string, unknown>): Record<string, unknown>;
  setAnnotation(value: string): void;
  run(
    command: string,
    config: unknown,
    options?: { containerId?: string; ifName?: string },
  ): Promise<PluginRun>;
  assertClean(label: string): Promise<void>;
  cleanup(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const env = await startK8sFixture({
    clusterSubnet: `10.246.${nextOctet()}`,
    name: "multus-hostile",
  });
  const { root, api, ns, bridge, leaseDir, kubeconfig } = env;
  const clusterFile = env.clusterNetworkFile;
  await writeScript(
    root.binDir,
    "fake",
    `cat >/dev/null; [ "$CNI_COMMAND" = ADD ] || exit 0; echo '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}'`,
  );
  api.setPod({ metadata: { name: "web", namespace: "default", annotations: {} } });
  const containerId = `hst-${uniqueSuffix()}${uniqueSuffix()}`;
  const f: Fixture = {
    root,
    api,
    ns,
    bridge,
    leaseDir,
    kubeconfig,
    clusterFile,
    containerId,
    files: async () => (await listFiles(root.dir)).filter((p) => !p.startsWith("leases/")).sort(),
    conf: (extra = {}) => env.multusConf(extra),
    setAnnotation: (value) =>
      void api.setPod({
        metadata: { name: "web", namespace: "default", annotations: { [NETWORKS]: value } },
      }),
    run: (command, config, options = {}) =>
      root.run({
        command,
        containerId: options.containerId ?? containerId,
        netns: ns.path,
        ifName: options.ifName ?? "eth0",
        args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
        config: config as Record<string, unknown>,
      }),
    async assertClean(label) {
      await assertNothingLeft({ namespaces: [ns], leaseDir, cniDir: root.cniDir }, label);
    },
    cleanup: env.cleanup,
  };
  return f;
}

Deno.test("plugin types that are paths are refused before anything runs, in the multus config, a conflist and a NAD", async () => {
  const f = await fixture();
  try {
    const marker = join(f.root.dir, "canary-ran");
    await writeScript(f.root.dir, "canary", `touch ${marker}; echo '{"cniVersion":"1.0.0"}'`);
    const types = [
      "../canary",
      join(f.root.dir, "canary"),
      "sub/../../canary",
      "..",
      ".",
      "canary\\x",
      `${f.root.binDir}/../canary`,
    ];
    for (const type of types) {
      const label = `type ${JSON.stringify(type)}`;
      const delegatesMode = f.conf({
        kubeconfig: undefined,
        clusterNetwork: undefined,
        delegates: [
          { cniVersion: "1.0.0", name: "first", type: "fake" },
          { cniVersion: "1.0.0", name: "evil", type },
        ],
      });
      const err = assertCniError(await f.run("ADD", delegatesMode), label);
      assert.equal(err.code, 7, label);
      assert.match(err.msg, /is not a plugin name/, label);

      const list = f.conf({
        kubeconfig: undefined,
        clusterNetwork: undefined,
        delegates: [{
          cniVersion: "1.0.0",
          name: "evil-list",
          plugins: [{ type: "fake" }, { type }],
        }],
      });
      assert.match(
        assertCniError(await f.run("ADD", list), `${label} in a conflist`).msg,
        /is not a plugin name/,
      );

      f.api.setNad({
        metadata: { name: "evil", namespace: "default" },
        spec: { config: JSON.stringify({ cniVersion: "1.0.0", type }) },
      });
      f.setAnnotation("evil");
      const nad = assertCniError(await f.run("ADD", f.conf()), `${label} in a NAD`);
      assert.match(nad.msg, /is not a plugin name/, label);
      assert.match(nad.msg, /default\/evil/, label);
      assert.match(nad.msg, /default\/web/, label);

      await assert.rejects(
        Deno.stat(marker),
        Deno.errors.NotFound,
        `${label}: the canary never ran`,
      );
      await f.assertClean(label);
      assert.deepEqual(await linkNames(f.ns), ["lo"]);
    }
  } finally {
    await f.cleanup();
  }
});

Deno.test("container ids, interface names and network names built to escape the cache dir are refused; nothing outside it is touched", async () => {
  const f = await fixture();
  try {
    const deepCni = join(f.root.dir, "a", "b", "cni");
    await Deno.mkdir(deepCni, { recursive: true });
    // Where "../../etc/x" would land from the cache dir and from its results/ dir.
    for (
      const decoy of [join(f.root.dir, "a", "etc", "x"), join(f.root.dir, "a", "b", "etc", "x")]
    ) {
      await Deno.mkdir(join(decoy, ".."), { recursive: true });
      await Deno.writeTextFile(decoy, "decoy");
    }
    const conf = f.conf({
      cniDir: deepCni,
      kubeconfig: undefined,
      clusterNetwork: undefined,
      delegates: [{ cniVersion: "1.0.0", name: "fake-net", type: "fake" }],
    });
    const before = await f.files();
    for (const id of ["../../etc/x", "..", "a/../../b", "/etc/x", "x/..", "-x", `x${"\u00a0"}y`]) {
      for (const command of ["ADD", "DEL", "CHECK"]) {
        const err = assertCniError(
          await f.run(command, conf, { containerId: id }),
          `${command} container id ${JSON.stringify(id)}`,
        );
        assert.equal(err.code, 4, `${command} ${id}: ${err.msg}`);
        assert.match(err.msg, /invalid characters in containerID/);
      }
    }
    for (const ifName of ["../../x", "a/b", "..", "x".repeat(16), "eth0:1", "a b", "é".repeat(8)]) {
      for (const command of ["ADD", "DEL"]) {
        const err = assertCniError(
          await f.run(command, conf, { ifName }),
          `${command} ifname ${JSON.stringify(ifName)}`,
        );
        assert.equal(err.code, 4, `${command} ${ifName}: ${err.msg}`);
        assert.match(err.msg, /interface name/);
      }
    }
    const logLines = (files: string[]) => files.filter((p) => p !== "multus.log");
    assert.deepEqual(logLines(await f.files()), logLines(before), "no file was created or removed");

    // Through the pod: requested interface names and the network name inside a NAD.
    f.api.setNad({
      metadata: { name: "ok-nad", namespace: "default" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", type: "fake" }) },
    });
    const annotations = [
      '[{"name":"ok-nad","interface":"../../x"}]',
      "ok-nad@../../x",
      '[{"name":"ok-nad","interface":"a/b"}]',
      '[{"name":"../../ok-nad"}]',
      '[{"name":"ok-nad","namespace":"../.."}]',
      // Dot segments: URL normalisation would send these to other resources.
      '[{"name":"ok-nad","namespace":".."}]',
      '[{"name":"..","namespace":"default"}]',
      '[{"name":".","namespace":"default"}]',
    ];
    const expectedPath = new RegExp(
      "^/api/v1/namespaces/default/(pods/web|events)$|" +
        "^/apis/k8s\\.cni\\.cncf\\.io/v1/namespaces/[^/]+/network-attachment-definitions/[^/]+$",
    );
    for (const annotation of annotations) {
      f.setAnnotation(annotation);
      f.api.clearRequests();
      const err = assertCniError(await f.run("ADD", f.conf({ cniDir: deepCni })), annotation);
      assert.equal(err.code, 7, `${annotation}: ${err.msg}`);
      assert.match(err.msg, /default\/web/, annotation);
      await f.assertClean(annotation);
      for (const r of f.api.requests()) {
        assert.match(
          r.path,
          expectedPath,
          `${annotation}: unexpected API request ${r.method} ${r.path}`,
        );
        assert.ok(!r.path.split("/").some((seg) => seg === "." || seg === ".."), r.path);
      }
    }
    f.api.setNad({
      metadata: { name: "escaping", namespace: "default" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "../../etc/x", type: "fake" }) },
    });
    f.setAnnotation("escaping");
    const named = assertCniError(
      await f.run("ADD", f.conf({ cniDir: deepCni })),
      "network name ../../etc/x",
    );
    assert.match(named.msg, /invalid characters found in network name/);
    assert.match(named.msg, /default\/escaping/);
    assert.equal(await hostLinkExists(f.bridge), false, "refused before the cluster network ran");
    await assertNothingLeft({
      namespaces: [f.ns],
      leaseDir: f.leaseDir,
      cniDir: deepCni,
      bridge: f.bridge,
    }, "escaping network name");
    for (
      const decoy of [join(f.root.dir, "a", "etc", "x"), join(f.root.dir, "a", "b", "etc", "x")]
    ) {
      assert.equal(await Deno.readTextFile(decoy), "decoy", `${decoy} untouched`);
    }
    assertOk(await f.run("DEL", f.conf({ cniDir: deepCni })), "DEL");
  } finally {
    await f.cleanup();
  }
});

Deno.test("a NAD of another namespace under namespace isolation is refused without even being read", async () => {
  const f = await fixture();
  try {
    f.api.setNad({
      metadata: { name: "privileged", namespace: "kube-system" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", type: "fake" }) },
    });
    for (
      const annotation of [
        "kube-system/privileged",
        '[{"name":"privileged","namespace":"kube-system"}]',
        "default/fine-but-missing, kube-system/privileged",
      ]
    ) {
      f.api.clearRequests();
      f.setAnnotation(annotation);
      const err = assertCniError(
        await f.run("ADD", f.conf({ namespaceIsolation: true })),
        annotation,
      );
      assert.equal(err.code, 7);
      assert.match(err.msg, /kube-system\/privileged/);
      assert.match(err.msg, /namespace isolation/);
      assert.match(err.msg, /default\/web/);
      assert.deepEqual(
        f.api.requests().filter((r) => r.path.includes("network-attachment-definitions")).map((r) =>
          r.path
        ),
        [],
        "no NAD was read",
      );
      await f.assertClean(annotation);
    }
  } finally {
    await f.cleanup();
  }
});

Deno.test("a 10 MB annotation and one listing 20000 networks fail fast and clearly, with a bounded number of API reads", async () => {
  const f = await fixture();
  try {
    const cases: [string, string, RegExp, number][] = [
      ["10 MB short form", "a,".repeat(5 * 1024 * 1024), /more than Kubernetes allows/, 1],
      [
        "10 MB JSON form",
        JSON.stringify(Array.from({ length: 400_000 }, (_, i) => ({ name: `net-${i}` }))),
        /more than Kubernetes allows/,
        1,
      ],
      ["10 MB name", "x".repeat(10 * 1024 * 1024), /more than Kubernetes allows/, 1],
      [
        "20000 missing networks",
        Array.from({ length: 20_000 }, (_, i) => `n${i}`).join(","),
        /does not exist/,
        40,
      ],
    ];
    for (const [label, annotation, message, maxRequests] of cases) {
      f.setAnnotation(annotation);
      f.api.clearRequests();
      const run = await f.run("ADD", f.conf());
      const err = assertCniError(run, label);
      assert.equal(err.code, 7, `${label}: ${err.msg.slice(0, 300)}`);
      assert.match(err.msg, message, label);
      assert.match(err.msg, /default\/web/, label);
      assert.ok(
        err.msg.length < 2000,
        `${label}: the message does not quote the annotation (${err.msg.length} chars)`,
      );
      const requests = f.api.requests().length;
      assert.ok(requests <= maxRequests, `${label}: ${requests} API requests`);
      await f.assertClean(label);
      assertOk(await f.run("DEL", f.conf()), `${label}: DEL`);
    }
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    await f.cleanup();
  }
});

function nested(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

Deno.test("JSON nested 100000 levels deep in the config, a NAD, the annotation, a kubeconfig and a delegate's output", async () => {
  const f = await fixture();
  try {
    const deepValue = nested(DEPTH);
    const check = async (label: string, config: unknown, annotation?: string) => {
      if (annotation !== undefined) f.setAnnotation(annotation);
      const run = await f.run("ADD", config);
      const err = assertCniError(run, label);
      assert.ok(err.msg.length < 3000, `${label}: short message`);
      await f.assertClean(label);
      assertOk(await f.run("DEL", config), `${label}: DEL`);
      return err;
    };

    const conf = JSON.stringify(f.conf()).slice(0, -1);
    let err = await check("multus config", `${conf},"deep":${deepValue}}`);
    assert.equal(err.code, 6);
    assert.match(err.msg, /nesting too deep/);
    err = await check(
      "multus config delegate",
      JSON.stringify(
        f.conf({
          kubeconfig: undefined,
          clusterNetwork: undefined,
          delegates: [{ cniVersion: "1.0.0", name: "d", type: "fake", x: 1 }],
        }),
      ).replace('"x":1', `"x":${deepValue}`),
    );
    assert.match(err.msg, /nesting too deep/);

    f.api.setNad({
      metadata: { name: "deep", namespace: "default" },
      spec: { config: `{"cniVersion":"1.0.0","type":"fake","x":${deepValue}}` },
    });
    err = await check("NAD spec.config", f.conf(), "deep");
    assert.match(err.msg, /default\/deep/);
    assert.match(err.msg, /default\/web/);
    assert.match(err.msg, /nesting too deep/);

    f.api.setNad({
      metadata: { name: "plain", namespace: "default" },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", type: "fake" }) },
    });
    err = await check("annotation", f.conf(), deepValue);
    assert.match(err.msg, /default\/web/);
    err = await check(
      "annotation cni-args",
      f.conf(),
      `[{"name":"plain","cni-args":{"x":${deepValue}}}]`,
    );
    assert.match(err.msg, /default\/web/);
    f.setAnnotation("");

    const deepJsonKubeconfig = join(f.root.dir, "deep.json");
    await Deno.writeTextFile(deepJsonKubeconfig, `{"apiVersion":"v1","clusters":${deepValue}}`);
    err = await check("kubeconfig (JSON)", f.conf({ kubeconfig: deepJsonKubeconfig }));
    assert.match(err.msg, /deep\.json/);
    const deepYamlKubeconfig = join(f.root.dir, "deep.yaml");
    await Deno.writeTextFile(deepYamlKubeconfig, `apiVersion: v1\nclusters: ${deepValue}\n`);
    err = await check("kubeconfig (YAML)", f.conf({ kubeconfig: deepYamlKubeconfig }));
    assert.match(err.msg, /deep\.yaml/);

    const out = join(f.root.dir, "deep-output.json");
    await Deno.writeTextFile(
      out,
      `{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.3/24"}],"dns":{"options":${deepValue}},"x":${deepValue}}`,
    );
    await writeScript(
      f.root.binDir,
      "deep-out",
      `cat >/dev/null; [ "$CNI_COMMAND" = ADD ] || exit 0; cat ${out}`,
    );
    err = await check(
      "delegate output",
      f.conf({
        kubeconfig: undefined,
        clusterNetwork: undefined,
        delegates: [JSON.parse(await Deno.readTextFile(f.clusterFile)), {
          cniVersion: "1.0.0",
          name: "deep-out",
          type: "deep-out",
        }],
      }),
    );
    assert.match(err.msg, /deep-out/);
    assert.match(err.details ?? "", /rolled back/);
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    await f.cleanup();
  }
});

Deno.test("kubeconfigs pointing at secret files: their content never reaches the log, the error or the cache", async () => {
  const f = await fixture();
  try {
    const shadow = join(f.root.dir, "shadow");
    await Deno.writeTextFile(
      shadow,
      "root:$6$SHADOWSECRET$Qx9hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
      { mode: 0o600 },
    );
    const oneLine = join(f.root.dir, "one-line-secret");
    await Deno.writeTextFile(oneLine, "ONELINESECRET-4f2a9c\n", { mode: 0o600 });
    const secrets = ["SHADOWSECRET", "Qx9hash", "ONELINESECRET"];
    const user = (entries: Record<string, string>) =>
      Object.entries(entries).map(([k, v]) => `    ${k}: ${v}`).join("\n");
    const write = async (
      name: string,
      userLines: string,
      cluster = `    certificate-authority-data: ${btoa(f.api.caPem)}`,
    ) => {
      const path = join(f.root.dir, name);
      await Deno.writeTextFile(
        path,
        `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${f.api.url}\n${cluster}\nusers:\n- name: u\n  user:\n${userLines}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n`,
      );
      return path;
    };
    const kubeconfigs = [
      ["tokenFile: a multi-line secret", await write("k1", user({ tokenFile: shadow }))],
      ["token-file: a multi-line secret", await write("k2", user({ "token-file": shadow }))],
      ["tokenFile: a one-line secret", await write("k3", user({ tokenFile: oneLine }))],
      [
        "client-key: a secret",
        await write(
          "k4",
          user({ "client-certificate": f.api.clientCertFile, "client-key": shadow }),
        ),
      ],
      [
        "client-certificate: a secret",
        await write(
          "k5",
          user({ "client-certificate": shadow, "client-key": f.api.clientKeyFile }),
        ),
      ],
      [
        "certificate-authority: a secret",
        await write("k6", user({ token: "x" }), `    certificate-authority: ${shadow}`),
      ],
      [
        "an alias bomb",
        await write(
          "k7",
          user({ token: "x" }) +
            "\nbomb: &a [x, x, x, x, x, x, x, x, x, x]\nb2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nb3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nb4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nb5: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
        ),
      ],
    ];
    for (const [label, kubeconfig] of kubeconfigs) {
      const run = await f.run("ADD", f.conf({ kubeconfig }));
      const err = assertCniError(run, label);
      assert.match(
        err.msg,
        new RegExp(`${kubeconfig}|default/web`),
        `${label}: names the kubeconfig or the pod: ${err.msg}`,
      );
      for (const secret of secrets) {
        assert.ok(
          !run.stdout.includes(secret) && !run.stderr.includes(secret),
          `${label}: ${secret} in the output: ${run.stdout}`,
        );
      }
      await f.assertClean(label);
    }
    const everything = [await Deno.readTextFile(f.root.logFile)];
    for (const file of await listFiles(f.root.cniDir)) {
      everything.push(await Deno.readTextFile(join(f.root.cniDir, file)));
    }
    for (const secret of secrets) {
      const where = everything.join("\n").split("\n").filter((l) => l.includes(secret));
      assert.deepEqual(where, [], `${secret} reached the log or the cache`);
    }
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    await f.cleanup();
  }
});

Deno.test("API answers of the wrong shape fail ADD naming the pod and what came back; nothing is attached or written", async () => {
  const f = await fixture();
  try {
    const pod = f.api.getPod("default", "web")!;
    const fakeConfig = JSON.stringify({ cniVersion: "1.0.0", type: "fake" });
    const nad = f.api.setNad({
      metadata: { name: "net-a", namespace: "default" },
      spec: { config: fakeConfig },
    });
    const podPath = "/api/v1/namespaces/default/pods/web";
    const cases: [string, () => void, RegExp[]][] = [
      [
        "a PodList for the pod",
        () =>
          f.api.inject({
            kind: "status",
            status: 200,
            path: podPath,
            body: { kind: "PodList", apiVersion: "v1", metadata: {}, items: [pod] },
            times: 10,
          }),
        [/pod "default\/web"/, /a PodList/],
      ],
      [
        "a NAD served as the pod",
        () => f.api.inject({ kind: "status", status: 200, path: podPath, body: nad, times: 10 }),
        [/pod "default\/web"/, /a NetworkAttachmentDefinition "default\/net-a"/],
      ],
      [
        "a numeric networks annotation",
        () =>
          void f.api.setPod({
            metadata: {
              name: "web",
              namespace: "default",
              annotations: { [NETWORKS]: 5 as unknown as string },
            },
          }),
        [
          /pod "default\/web"/,
          /metadata\.annotations\["k8s\.v1\.cni\.cncf\.io\/networks"\] is a number/,
        ],
      ],
      [
        "an object spec.config",
        () => {
          f.setAnnotation("net-b");
          f.api.setNad({
            metadata: { name: "net-b", namespace: "default" },
            spec: { config: { cniVersion: "1.0.0", type: "fake" } as unknown as string },
          });
        },
        [/default\/web/, /"default\/net-b"/, /spec\.config is an object instead of a string/],
      ],
    ];
    for (const [label, arrange, messages] of cases) {
      f.api.clearFaults();
      f.setAnnotation("net-a");
      arrange();
      f.api.clearRequests();
      const err = assertCniError(await f.run("ADD", f.conf()), label);
      for (const message of messages) assert.match(err.msg, message, `${label}: ${err.msg}`);
      assert.equal(
        await hostLinkExists(f.bridge),
        false,
        `${label}: the cluster network never ran`,
      );
      const writes = f.api.requests().filter((r) =>
        r.method !== "GET" && r.path !== "/api/v1/namespaces/default/events"
      );
      assert.deepEqual(writes.map((r) => `${r.method} ${r.path}`), [], `${label}: nothing written`);
      await f.assertClean(label);
      assertOk(await f.run("DEL", f.conf()), `${label}: DEL`);
    }
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    await f.cleanup();
  }
});

/**
 * Runs ADD and returns its result; a run that has not ended after `guardMs` is killed and
 * fails the test (the plugin must bound every wait itself).
 */
async function runGuarded(f: Fixture, config: unknown, label: string, guardMs = 60_000) {
  const running = startPlugin(f.root, {
    command: "ADD",
    containerId: f.containerId,
    netns: f.ns.path,
    ifName: "eth0",
    args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
    config: config as Record<string, unknown>,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<"hung">((resolve) => {
    timer = setTimeout(() => resolve("hung"), guardMs);
  });
  const outcome = await Promise.race([running.done, guard]);
  clearTimeout(timer);
  if (outcome === "hung") {
    running.kill();
    await running.done;
    assert.fail(`${label}: ADD still running after ${guardMs / 1000} s; killed`);
  }
  return outcome;
}

/**
 * Holds a write lease on `path` from another process (python3): until it ends, opening the
 * file blocks, as on a hung network mount.
 */
async function holdLease(path: string): Promise<{ release(): Promise<void> }> {
  const script = [
    "import fcntl, os, signal, sys",
    "signal.signal(signal.SIGIO, signal.SIG_IGN)",
    "fd = os.open(sys.argv[1], os.O_RDONLY)",
    "fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)  # F_SETLEASE",
    "print('held', flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const child = new Deno.Command("python3", {
    args: ["-c", script, path],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value).trim(), "held", "the lease is held");
  reader.releaseLock();
  return {
    release: async () => {
      await child.stdin.close();
      await child.stdout.cancel();
      await child.status;
    },
  };
}

Deno.test("kubeconfigs that never end, never open or mix insecure with a CA fail ADD at once, naming the file; nothing attached", async () => {
  const f = await fixture();
  try {
    f.setAnnotation("");
    const fifo = join(f.root.dir, "kubeconfig.fifo");
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    const base = await Deno.readTextFile(f.kubeconfig);
    const withUser = async (name: string, user: string) => {
      const path = join(f.root.dir, name);
      await Deno.writeTextFile(path, base.replace(/ {2}user:\n( {4}.*\n)+/, `  user:\n${user}\n`));
      return path;
    };
    const zeroToken = await withUser("zero-token", "    tokenFile: /dev/zero");
    const fifoToken = await withUser("fifo-token", `    tokenFile: ${fifo}`);
    const insecureWithCa = join(f.root.dir, "insecure-with-ca");
    await Deno.writeTextFile(
      insecureWithCa,
      base.replace(
        "    certificate-authority-data:",
        "    insecure-skip-tls-verify: true\n    certificate-authority-data:",
      ),
    );
    const leased = join(f.root.dir, "leased-kubeconfig");
    await Deno.writeTextFile(leased, base);
    const lease = await holdLease(leased);
    try {
      const cases: [string, string, RegExp, number?][] = [
        [
          "a FIFO kubeconfig",
          fifo,
          /^Cannot read kubeconfig "[^"]*kubeconfig\.fifo": it is a FIFO \(named pipe\), not a regular file$/,
        ],
        [
          "tokenFile /dev/zero",
          zeroToken,
          /^Cannot read "\/dev\/zero" named by user "multus" in kubeconfig "[^"]*zero-token": it is a character device, not a regular file$/,
        ],
        [
          "tokenFile a FIFO",
          fifoToken,
          /^Cannot read "[^"]*kubeconfig\.fifo" named by user "multus" in kubeconfig "[^"]*fifo-token": it is a FIFO/,
        ],
        [
          "insecure-skip-tls-verify with a CA",
          insecureWithCa,
          /^Cannot use kubeconfig "[^"]*insecure-with-ca": cluster "local" sets both "insecure-skip-tls-verify" and "certificate-authority-data": specifying a root certificates file with the insecure flag is not allowed$/,
        ],
        [
          "a kubeconfig whose open never returns",
          leased,
          /^Cannot read kubeconfig "[^"]*leased-kubeconfig": reading it did not finish within 1 s/,
          1,
        ],
      ];
      for (const [label, kubeconfig, message, apiTimeoutSeconds] of cases) {
        f.api.clearRequests();
        const conf = f.conf({ kubeconfig, ...(apiTimeoutSeconds ? { apiTimeoutSeconds } : {}) });
        const err = assertCniError(await runGuarded(f, conf, label), label);
        assert.equal(err.code, 7, `${label}: ${err.msg}`);
        assert.match(err.msg, message, label);
        assert.deepEqual(f.api.requests(), [], `${label}: the API was not called`);
        assert.equal(await hostLinkExists(f.bridge), false, `${label}: nothing ran`);
        await f.assertClean(label);
      }
    } finally {
      await lease.release();
    }
    const missing = join(f.root.dir, "multus.d", "multus.kubeconfig");
    const err = assertCniError(await runGuarded(f, f.conf({ kubeconfig: missing }), "missing"));
    assert.equal(err.msg, `Cannot read kubeconfig "${missing}": the file does not exist`);
    assert.match(err.details ?? "", /multus install writes it/);
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    await f.cleanup();
  }
});

Deno.test("TLS failures name the kubeconfig, the setting at fault and what to do; nothing is attached", async () => {
  const f = await fixture();
  const other = await startTestApiServer();
  const { createServer } = await import("node:http");
  const plain = createServer((_req, res) => res.end("{}"));
  await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", () => resolve()));
  try {
    f.setAnnotation("");
    const base = await Deno.readTextFile(f.kubeconfig);
    const caData = /certificate-authority-data: "?([^"\n]+)"?/.exec(base)![1];
    const variant = async (name: string, text: string) => {
      const path = join(f.root.dir, name);
      await Deno.writeTextFile(path, text);
      return path;
    };
    const junkCa = btoa(
      "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n",
    );
    const port = (plain.address() as { port: number }).port;
    const cases: [string, string, RegExp, RegExp, number][] = [
      [
        "a CA that is not a certificate",
        await variant("junk-ca", base.replace(caData, junkCa)),
        /^Cannot get pod "default\/web": cannot use kubeconfig "[^"]*junk-ca": the certificate authority in "certificate-authority-data" of cluster "local" is not a valid certificate \(BadEncoding\)$/,
        /the cluster's CA certificate in PEM form/,
        7,
      ],
      [
        "another cluster's CA",
        await variant("other-ca", base.replace(caData, btoa(other.caPem))),
        /^Cannot get pod "default\/web": the TLS connection to the API server at https:\/\/127\.0\.0\.1:\d+ \(from kubeconfig "[^"]*other-ca"\) failed: its certificate is not signed by the certificate authority in "certificate-authority-data" of cluster "local" \((UnknownIssuer|BadSignature)\)$/,
        /Put the cluster's CA certificate in "certificate-authority-data" of kubeconfig "[^"]*other-ca"/,
        999,
      ],
      [
        "a server that does not speak TLS",
        await variant("plain", base.replace(f.api.url, `https://127.0.0.1:${port}`)),
        /^Cannot get pod "default\/web": the TLS connection to the API server at https:\/\/127\.0\.0\.1:\d+ \(from kubeconfig "[^"]*plain"\) failed: the server does not speak TLS there \(InvalidContentType\)$/,
        /Check the port of "server"/,
        999,
      ],
    ];
    for (const [label, kubeconfig, message, details, code] of cases) {
      const run = await f.run("ADD", f.conf({ kubeconfig }));
      const err = assertCniError(run, label);
      assert.match(err.msg, message, label);
      assert.match(err.details ?? "", details, label);
      assert.equal(err.code, code, label);
      assert.equal(await hostLinkExists(f.bridge), false, `${label}: nothing ran`);
      await f.assertClean(label);
      assertOk(await f.run("DEL", f.conf({ kubeconfig })), `${label}: DEL`);
    }
    await assertCompleteLogLines(f.root.logFile);
  } finally {
    plain.close();
    await other.close();
    await f.cleanup();
  }
});
