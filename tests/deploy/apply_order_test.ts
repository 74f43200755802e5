/**
 * @module
 * The README's deploy commands, run with the real kubectl against a fake API server that
 * records what is created: `kubectl apply -f deploy/` creates the CRD, then the
 * ServiceAccount and its RBAC, then the DaemonSet that runs as that ServiceAccount (kubectl
 * applies files in name order and documents in file order), and leaves the examples alone;
 * `kubectl apply -f deploy/examples/` then creates the example NADs before the pod using them.
 * The daemon-mode command creates the same CRD and RBAC, then deploy/thick/ in name order: the
 * daemon's extra RBAC, its ConfigMap, then its DaemonSet.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/plugin_run.ts";
import { type FakeApiServer, startFakeApiServer } from "./_fake_apiserver.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `kubectl <args>` against the fake server, with a throw-away cache and no kubeconfig. */
async function kubectl(api: FakeApiServer, cacheDir: string, args: string[]): Promise<Run> {
  const out = await new Deno.Command("kubectl", {
    args: [...args, "--server", api.url, "--cache-dir", cacheDir, "--validate=false"],
    cwd: REPO_ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: cacheDir,
      KUBECONFIG: join(cacheDir, "no-kubeconfig"),
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The first `kubectl apply` commands of the README (the install sequence), in order. */
async function readmeApplyCommands(): Promise<string[][]> {
  const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));
  return [...readme.matchAll(/^kubectl apply (.+?)\s*(?:#.*)?$/gm)].slice(0, 2).map((
    m,
  ) => ["apply", ...m[1].split(/\s+/)]);
}

Deno.test("kubectl apply -f deploy/ creates the CRD, the ServiceAccount and RBAC, then the DaemonSet", async () => {
  const commands = await readmeApplyCommands();
  assert.deepEqual(commands, [
    ["apply", "-f", "deploy/"],
    ["apply", "-f", "deploy/examples/"],
  ], "the README's apply sequence");

  const api = startFakeApiServer();
  const cacheDir = await Deno.makeTempDir({ prefix: "multus-kubectl-" });
  try {
    const install = await kubectl(api, cacheDir, [...commands[0], "-o", "name"]);
    assert.equal(install.code, 0, install.stderr + api.rejected.join("\n"));
    assert.deepEqual(api.created, [
      "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io",
      "ServiceAccount kube-system/multus",
      "ClusterRole multus",
      "ClusterRoleBinding multus",
      "DaemonSet kube-system/kube-multus-ds",
    ]);
    assert.equal(install.stdout.trim().split("\n").length, 5, install.stdout);

    const examples = await kubectl(api, cacheDir, [...commands[1], "-o", "name"]);
    assert.equal(examples.code, 0, examples.stderr + api.rejected.join("\n"));
    assert.deepEqual(api.created.slice(5), [
      "NetworkAttachmentDefinition default/bridge-net",
      "NetworkAttachmentDefinition default/macvlan-net",
      "Pod default/multi-net-demo",
    ]);
    assert.deepEqual(api.rejected, []);
  } finally {
    await api.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("the fake API server serves NADs only once their CRD exists, as a cluster does", async () => {
  const api = startFakeApiServer();
  const cacheDir = await Deno.makeTempDir({ prefix: "multus-kubectl-" });
  try {
    const early = await kubectl(api, cacheDir, ["apply", "-f", "deploy/examples/nad-bridge.yaml"]);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /NetworkAttachmentDefinition/);
    assert.deepEqual(api.created, []);
  } finally {
    await api.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("the README's daemon-mode apply creates the CRD and RBAC, then the daemon's RBAC, ConfigMap and DaemonSet", async () => {
  const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));
  const line = [...readme.matchAll(/^kubectl apply (.*-f deploy\/thick\/)\s*(?:#.*)?$/gm)];
  assert.equal(line.length, 1, "the README shows one daemon-mode apply");
  const args = ["apply", ...line[0][1].split(/\s+/)];
  assert.deepEqual(args, [
    "apply",
    "-f",
    "deploy/00-crd.yaml",
    "-f",
    "deploy/10-rbac.yaml",
    "-f",
    "deploy/thick/",
  ]);

  const api = startFakeApiServer();
  const cacheDir = await Deno.makeTempDir({ prefix: "multus-kubectl-" });
  try {
    const run = await kubectl(api, cacheDir, [...args, "-o", "name"]);
    assert.equal(run.code, 0, run.stderr + api.rejected.join("\n"));
    assert.deepEqual(api.created, [
      "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io",
      "ServiceAccount kube-system/multus",
      "ClusterRole multus",
      "ClusterRoleBinding multus",
      "ClusterRole multus-daemon",
      "ClusterRoleBinding multus-daemon",
      "ConfigMap kube-system/multus-daemon-config",
      "DaemonSet kube-system/kube-multus-ds",
    ]);
    assert.deepEqual(api.rejected, []);
  } finally {
    await api.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

/** The sh block of the README section `heading`, as argument lists of its kubectl lines. */
async function readmeKubectl(heading: string): Promise<string[][]> {
  const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));
  const at = readme.indexOf(`\n### ${heading}\n`);
  assert.ok(at >= 0, `README section ${heading}`);
  const section = readme.slice(at + 1).split(/\n### /)[0];
  const block = /```sh\n([\s\S]*?)```/.exec(section.replace(/^ {3}/gm, ""));
  assert.ok(block, `a sh block in ${heading}`);
  return block[1].split("\n").map((l) => l.replace(/#.*$/, "").trim())
    .filter((l) => l.startsWith("kubectl ")).map((l) => l.split(/\s+/).slice(1));
}

Deno.test("the README's move from Multus thick replaces Multus's DaemonSet whole with ours", async () => {
  const commands = await readmeKubectl("Moving from Multus thick");
  assert.deepEqual(commands.map((c) => c[0]), ["apply", "replace", "-n"]);

  const api = startFakeApiServer();
  const cacheDir = await Deno.makeTempDir({ prefix: "multus-kubectl-" });
  try {
    // Multus's thick DaemonSet, as its deployment creates it.
    const multus = join(cacheDir, "multus-thick.yaml");
    await Deno.writeTextFile(
      multus,
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: "kube-multus-ds", namespace: "kube-system" },
        spec: {
          selector: { matchLabels: { name: "multus" } },
          template: {
            metadata: { labels: { name: "multus" } },
            spec: {
              initContainers: [{ name: "install-multus-binary", image: "multus:thick" }],
              containers: [{ name: "kube-multus", image: "multus:thick" }],
            },
          },
        },
      }),
    );
    const seeded = await kubectl(api, cacheDir, ["create", "-f", multus]);
    assert.equal(seeded.code, 0, seeded.stderr);

    for (const args of commands.slice(0, 2)) {
      const run = await kubectl(api, cacheDir, [...args, "-o", "name"]);
      assert.equal(run.code, 0, `kubectl ${args.join(" ")}: ${run.stderr}${api.rejected}`);
    }
    assert.deepEqual(api.created.slice(1), [
      "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io",
      "ServiceAccount kube-system/multus",
      "ClusterRole multus",
      "ClusterRoleBinding multus",
      "ClusterRole multus-daemon",
      "ClusterRoleBinding multus-daemon",
      "ConfigMap kube-system/multus-daemon-config",
    ]);
    assert.deepEqual(api.replaced, ["DaemonSet kube-system/kube-multus-ds"]);
    const spec = api.stored("DaemonSet kube-system/kube-multus-ds")!.spec.template.spec;
    assert.deepEqual(spec.initContainers.map((c: { name: string }) => c.name), ["install"]);
    assert.deepEqual(spec.containers.map((c: { name: string }) => c.name), ["daemon"]);
    assert.deepEqual(api.rejected, []);
  } finally {
    await api.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
