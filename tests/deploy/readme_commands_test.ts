/**
 * @module
 * The operator commands in the README and docs/ name what deploy/ really ships: the
 * DaemonSet's name, namespace and labels, the CRD's name, and a plugin log file that the
 * documented DaemonSet patch really configures (the patch is applied to the shipped DaemonSet
 * and its command parsed by the installer's own flag parser).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { parseInstallFlags } from "../../src/install/flags.ts";
import { REPO_ROOT } from "../helpers/plugin_run.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

async function manifest(file: string, kind: string): Promise<Obj> {
  const docs = parseAllDocuments(await Deno.readTextFile(join(REPO_ROOT, "deploy", file)));
  const found = (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as Obj)
    .find((o) => o?.kind === kind);
  assert.ok(found, `${kind} in deploy/${file}`);
  return found;
}

/** README.md and every docs/*.md, by name. */
async function operatorDocs(): Promise<Map<string, string>> {
  const docs = new Map([["README.md", await Deno.readTextFile(join(REPO_ROOT, "README.md"))]]);
  for await (const entry of Deno.readDir(join(REPO_ROOT, "docs"))) {
    if (entry.name.endsWith(".md")) {
      docs.set(`docs/${entry.name}`, await Deno.readTextFile(join(REPO_ROOT, "docs", entry.name)));
    }
  }
  return docs;
}

/** The lines of the docs' sh blocks that run kubectl. */
function kubectlLines(docs: Map<string, string>): { file: string; line: string }[] {
  const out: { file: string; line: string }[] = [];
  for (const [file, text] of docs) {
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const line of block[1].split("\n")) {
        if (/^kubectl\b/.test(line.trim())) out.push({ file, line: line.trim() });
      }
    }
  }
  return out;
}

Deno.test("README and docs name the DaemonSet, its namespace, labels and the CRD as deploy/ ships them", async () => {
  const ds = await manifest("20-daemonset.yaml", "DaemonSet");
  const crd = await manifest("00-crd.yaml", "CustomResourceDefinition");
  const docs = await operatorDocs();
  const lines = kubectlLines(docs);
  assert.ok(lines.length >= 10, "the docs show kubectl commands");
  let daemonSetCommands = 0;
  for (const { file, line } of lines) {
    for (const m of line.matchAll(/\bds\/([\w.-]+)/g)) {
      daemonSetCommands++;
      assert.equal(m[1], ds.metadata.name, `${file}: ${line}`);
      assert.match(line, new RegExp(`-n ${ds.metadata.namespace}\\b`), `${file}: ${line}`);
    }
    for (const m of line.matchAll(/-l ([\w.-]+)=([\w.-]+)/g)) {
      assert.equal(ds.spec.template.metadata.labels[m[1]], m[2], `${file}: ${line}`);
      assert.match(line, new RegExp(`-n ${ds.metadata.namespace}\\b`), `${file}: ${line}`);
    }
    for (const m of line.matchAll(/\bcrd\/([\w.-]+)/g)) {
      assert.equal(m[1], crd.metadata.name, `${file}: ${line}`);
    }
  }
  assert.ok(daemonSetCommands >= 3, "rollout status, patch and edit name the DaemonSet");
});

Deno.test("the plugin log file the docs read is the one the documented DaemonSet patch configures", async () => {
  const ds = await manifest("20-daemonset.yaml", "DaemonSet");
  const docs = await operatorDocs();
  const patchLine = kubectlLines(docs).find((l) => / patch ds\//.test(l.line));
  assert.ok(patchLine, "the README shows how to turn the plugin's log file on");
  const patch = JSON.parse(/-p '(\[.*\])'/.exec(patchLine.line)![1]) as Obj[];
  const command = [...ds.spec.template.spec.containers[0].command];
  for (const op of patch) {
    assert.equal(op.op, "add");
    assert.equal(op.path, "/spec/template/spec/containers/0/command/-");
    command.push(op.value);
  }
  assert.deepEqual(command.slice(0, 2), ["/usr/bin/multus", "install"]);
  const flags = parseInstallFlags(command.slice(2));
  assert.equal(flags.multusLogLevel, "verbose");
  const logFile = flags.multusLogFile;
  assert.match(logFile, /^\/var\/log\/[\w.-]+\.log$/);
  // Without the patch there is no log file: the docs must not promise one.
  assert.equal(
    parseInstallFlags(ds.spec.template.spec.containers[0].command.slice(2))
      .multusLogFile,
    "",
  );

  let reads = 0;
  for (const [file, text] of docs) {
    for (const m of text.matchAll(/\/var\/log\/[\w.-]+\.log/g)) {
      reads++;
      assert.equal(m[0], logFile, `${file} reads ${m[0]}`);
    }
  }
  assert.ok(reads >= 2, "the docs read the log file they configure");
});

Deno.test("every deploy/ path the README's and docs' commands name exists, and the daemon's ConfigMap is named as shipped", async () => {
  const docs = await operatorDocs();
  const named = new Set<string>();
  for (const [file, text] of docs) {
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const m of block[1].matchAll(/(?<![\w/])deploy\/[\w./-]*/g)) {
        named.add(`${file}: ${m[0]}`);
      }
    }
  }
  for (const entry of named) {
    const path = entry.slice(entry.indexOf(": ") + 2);
    await Deno.stat(join(REPO_ROOT, path)).catch(() => assert.fail(`${entry} does not exist`));
  }
  for (
    const path of [
      "deploy/thick/",
      "deploy/thick/20-daemonset-thick.yaml",
      "deploy/systemd/multus-daemon.service",
    ]
  ) {
    assert.ok([...named].some((e) => e.endsWith(`: ${path}`)), `the docs use ${path}`);
  }

  const configMap = await manifest("thick/15-daemon-config.yaml", "ConfigMap");
  const thick = await manifest("thick/20-daemonset-thick.yaml", "DaemonSet");
  const ds = await manifest("20-daemonset.yaml", "DaemonSet");
  assert.equal(thick.metadata.name, ds.metadata.name, "ds/ commands fit both variants");
  let mentions = 0;
  for (const [file, text] of docs) {
    for (const m of text.matchAll(/`([\w-]+)\/(multus-daemon-config)`/g)) {
      mentions++;
      assert.equal(m[1], configMap.metadata.namespace, `${file}: ${m[0]}`);
    }
  }
  assert.ok(mentions >= 1, "the docs name the daemon's ConfigMap");
});
