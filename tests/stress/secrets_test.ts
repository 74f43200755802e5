/**
 * Secrets never reach a log line, an error message or a cache file: with every kind of
 * credential the kubeconfig can carry (token, token file, client certificate as data and as files), ADD, DEL, CHECK and the error paths
 * run at logLevel debug, and no token, private key or certificate body may appear in a log
 * line, an error, stdout/stderr, a cache file or what we send to the API server besides the
 * Authorization header. The files we write (cache, log) are readable by root only.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeTestRoot, type PluginRun } from "../helpers/plugin_run.ts";
import { listFiles, TestNetns } from "../helpers/netns.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import { assertCompleteLogLines, assertNothingLeft, nextOctet } from "./_helpers.ts";

/** Distinctive pieces of a PEM: its body lines and slices of its base64 (`*-data`) form. */
function pemSecrets(pem: string): string[] {
  const body = pem.split("\n").filter((l) => l.length >= 24 && !l.startsWith("-----"));
  const b64 = btoa(pem);
  return [...body, b64.slice(40, 100), b64.slice(b64.length - 80, b64.length - 20)];
}

Deno.test("no token, key or certificate body reaches logs, errors, cache files or the API; our files are 0600", async () => {
  const octet = nextOctet();
  const env = await startK8sFixture({ clusterSubnet: `10.245.${octet}`, name: "multus-secrets" });
  const { root, api, ns, leaseDir } = env;
  const outputs: string[] = [];
  const cacheSnapshots: string[] = [];
  try {
    api.setPod({
      metadata: {
        name: "web",
        namespace: "default",
        annotations: { "k8s.v1.cni.cncf.io/networks": "mv" },
      },
    });
    env.macvlanNad("mv", {
      ipam: { type: "static", addresses: [{ address: `10.244.${octet}.10/24` }] },
    });
    const secrets = [
      api.token,
      ...pemSecrets(await Deno.readTextFile(api.clientKeyFile)),
      ...pemSecrets(await Deno.readTextFile(api.clientCertFile)),
      ...pemSecrets(await Deno.readTextFile(api.rogueKeyFile)),
      ...pemSecrets(api.caPem),
    ];

    let n = 0;
    const run = async (command: string, kubeconfig: string, label: string): Promise<PluginRun> => {
      const containerId = `sec-${label.replace(/\W+/g, "-")}-${n++}`;
      const conf = env.multusConf({ kubeconfig, logToStderr: true, apiTimeoutSeconds: 1 });
      const call = (cmd: string) =>
        root.run({
          command: cmd,
          containerId,
          netns: ns.path,
          args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
          config: conf,
        });
      const first = await call(command);
      outputs.push(first.stdout, first.stderr);
      for (const file of await listFiles(root.cniDir)) {
        cacheSnapshots.push(await Deno.readTextFile(join(root.cniDir, file)));
      }
      if (first.code === 0 && command === "ADD") {
        for (const next of ["CHECK", "DEL"]) {
          const r = await call(next);
          outputs.push(r.stdout, r.stderr);
          assert.equal(r.code, 0, `${label}: ${next}: ${r.stdout}`);
        }
      } else {
        const del = await call("DEL");
        outputs.push(del.stdout, del.stderr);
      }
      await assertNothingLeft({ namespaces: [ns], leaseDir, cniDir: root.cniDir }, label);
      return first;
    };

    const auths = ["token", "tokenFile", "cert", "certFile"] as const;
    for (const auth of auths) {
      const kubeconfig = await api.writeKubeconfig({ auth });
      const ok = await run("ADD", kubeconfig, `${auth}: ADD`);
      assert.equal(ok.code, 0, `${auth}: ${ok.stdout}`);
      if (auth === "tokenFile" || auth === "cert") continue; // same code paths as token, certFile

      // The same credentials on error paths that quote the API's answers.
      api.inject({ kind: "status", status: 500, path: "*", method: "GET", times: 100 });
      assert.notEqual((await run("ADD", kubeconfig, `${auth}: 500`)).code, 0);
      api.clearFaults();
      api.forbid("patch", "pods/status");
      api.forbid("update", "pods/status");
      assert.notEqual((await run("ADD", kubeconfig, `${auth}: 403 on the status`)).code, 0);
      api.allow("patch", "pods/status");
      api.allow("update", "pods/status");
      api.inject({ kind: "drop" });
      assert.notEqual((await run("ADD", kubeconfig, `${auth}: dropped`)).code, 0);
      api.clearFaults();
    }
    for (const auth of ["wrongToken", "rogueCert"] as const) {
      const kubeconfig = await api.writeKubeconfig({ auth });
      const failed = await run("ADD", kubeconfig, `${auth}: rejected`);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stdout, /401 Unauthorized/);
    }
    const stale = await api.writeKubeconfig({ auth: "token" });
    api.rotateToken();
    secrets.push(api.token);
    assert.match((await run("ADD", stale, "rotated token")).stdout, /401 Unauthorized/);

    const sent = api.requests().map((r) => JSON.stringify(r.body ?? "")).join("\n");
    const annotations = JSON.stringify(api.getPod("default", "web")?.metadata.annotations ?? {});
    const events = JSON.stringify(api.events());
    const logText = await Deno.readTextFile(root.logFile);
    const places: [string, string][] = [
      ["stdout/stderr", outputs.join("\n")],
      ["the log file", logText],
      ["cache files", cacheSnapshots.join("\n")],
      ["request bodies", sent],
      ["pod annotations", annotations],
      ["events", events],
    ];
    for (const [where, text] of places) {
      const found = secrets.filter((s) => s.length >= 16 && text.includes(s));
      assert.deepEqual(found.map((s) => `${s.slice(0, 8)}…`), [], `secrets in ${where}`);
    }
    assert.ok(cacheSnapshots.length > 0, "cache files were inspected");
    await assertCompleteLogLines(root.logFile);
    assert.equal((await Deno.stat(root.logFile)).mode! & 0o777, 0o600, "log file mode");
  } finally {
    await env.cleanup();
  }
});

Deno.test("cache files are 0600 in 0700 directories, whoever creates the directories", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  try {
    const conf = {
      cniVersion: "1.0.0",
      name: "multus-modes",
      type: "multus",
      cniDir: join(root.cniDir, "nested", "dir"),
      binDir: root.binDir,
      logFile: root.logFile,
      logLevel: "verbose",
      logToStderr: false,
      delegates: [{ cniVersion: "1.0.0", name: "lo-net", type: "loopback" }],
    };
    const oldMask = Deno.umask(0o000);
    let add: PluginRun;
    try {
      add = await root.run({
        command: "ADD",
        containerId: "modes-1",
        netns: ns.path,
        ifName: "lo",
        config: conf,
      });
    } finally {
      Deno.umask(oldMask);
    }
    assert.equal(add.code, 0, add.stdout);
    const files = await listFiles(root.cniDir);
    assert.deepEqual(files, ["nested/dir/modes-1", "nested/dir/results/lo-net-modes-1-lo"]);
    for (const file of files) {
      assert.equal((await Deno.stat(join(root.cniDir, file))).mode! & 0o777, 0o600, file);
    }
    for (const dir of ["", "nested", "nested/dir", "nested/dir/results"]) {
      assert.equal(
        (await Deno.stat(join(root.cniDir, dir))).mode! & 0o777,
        0o700,
        `dir ${dir || "."}`,
      );
    }
    assert.equal((await Deno.stat(root.logFile)).mode! & 0o777, 0o600, "log file");
    const del = await root.run({
      command: "DEL",
      containerId: "modes-1",
      netns: ns.path,
      ifName: "lo",
      config: conf,
    });
    assert.equal(del.code, 0, del.stdout);
  } finally {
    await ns.remove();
    await root.cleanup();
  }
});
