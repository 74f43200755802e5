/**
 * @module
 * `multus validate` end to end: the real entry point (scripts/dev-multus validate) run as a
 * child process on the fixtures, one fixture set per class of problem, plus a clean set.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/cni/errors.ts";
import { loadMultusNetConf } from "../../src/multus/config/netconf.ts";
import { parseSelection } from "../../src/multus/plan/selection.ts";
import { SELECTION_KEYS } from "../../src/validate/_unknown_fields.ts";
import { MULTUS_KEYS } from "../../src/validate/_multus_config.ts";
import { closestKey } from "../../src/validate/_suggest.ts";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const LAUNCHER = join(REPO_ROOT, "scripts", "dev-multus");
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const F = (path: string) => join(FIXTURES, path);
const CONF_DIR = F("common/confdir");
const COMMON_CONFIG = F("common/00-multus.conf");
/** A copy of the node's kubeconfig the fixtures' configs name. */
const KUBECONFIG = F("common/multus.kubeconfig");

interface Finding {
  severity: "error" | "warning";
  file: string;
  path: string;
  message: string;
  hint: string;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fake CNI bin dir: the plugins the fixtures use, and a `vlan` that is not executable. */
let binDir: Promise<string> | undefined;
function fakeBinDir(): Promise<string> {
  binDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "multus-validate-bin-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    for (const name of ["bridge", "macvlan", "host-local", "static", "tuning", "multus"]) {
      await Deno.writeTextFile(join(dir, name), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      await Deno.chmod(join(dir, name), 0o755);
    }
    await Deno.writeTextFile(join(dir, "vlan"), "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    await Deno.chmod(join(dir, "vlan"), 0o644);
    return dir;
  })();
  return binDir;
}

/** Runs `multus validate` through the launcher (no CNI_COMMAND: the subcommand). */
async function validate(args: string[], options: { stdin?: string } = {}): Promise<Run> {
  const env: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  for (const key of ["HOME", "MULTUS_DENO", "MULTUS_TOOLS_DIR", "DENO_DIR"]) {
    const value = Deno.env.get(key);
    if (value !== undefined) env[key] = value;
  }
  const child = new Deno.Command(LAUNCHER, {
    args: ["validate", ...args],
    clearEnv: true,
    env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Runs with the fake bin dir, the common conf dir and `--json`; returns the findings. */
async function validateJson(
  args: string[],
  options: { stdin?: string } = {},
): Promise<{ run: Run; ok: boolean; findings: Finding[] }> {
  const run = await validate(
    [
      "--json",
      "--bin-dir",
      await fakeBinDir(),
      "--conf-dir",
      CONF_DIR,
      "--kubeconfig",
      KUBECONFIG,
      ...args,
    ],
    options,
  );
  let parsed: { ok: boolean; findings: Finding[] };
  try {
    parsed = JSON.parse(run.stdout);
  } catch {
    throw new Error(`not JSON (exit ${run.code}): ${run.stdout}\nstderr: ${run.stderr}`);
  }
  return { run, ...parsed };
}

/** The one finding at `path` in a file ending with `file`; fails listing them all. */
function findingAt(findings: Finding[], file: string, path: string): Finding {
  const matches = findings.filter((f) => f.file.endsWith(file) && f.path === path);
  assert.equal(
    matches.length,
    1,
    `expected one finding at ${file} ${path}, got:\n${
      findings.map((f) => `${f.severity} ${f.file}: ${f.path}: ${f.message}`).join("\n")
    }`,
  );
  return matches[0];
}

function assertFinding(
  findings: Finding[],
  where: { file: string; path: string },
  expected: { severity: "error" | "warning"; message: RegExp; hint?: RegExp },
): void {
  const f = findingAt(findings, where.file, where.path);
  assert.equal(f.severity, expected.severity, `${where.path}: ${f.message}`);
  assert.match(f.message, expected.message);
  assert.ok(f.hint !== "", `finding at ${where.path} has no hint`);
  if (expected.hint) assert.match(f.hint, expected.hint);
}

const NETWORKS = 'metadata.annotations["k8s.v1.cni.cncf.io/networks"]';
const DEFAULT_NETWORK = 'metadata.annotations["v1.multus-cni.io/default-network"]';

// ---- clean set ----

Deno.test("validate: a clean config, NADs and pods pass with exit 0 and no findings", async () => {
  const run = await validate([
    "--bin-dir",
    await fakeBinDir(),
    "--conf-dir",
    CONF_DIR,
    "--kubeconfig",
    KUBECONFIG,
    "--config",
    COMMON_CONFIG,
    F("clean/nads.yaml"),
    F("clean/pod.yaml"),
  ]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.equal(
    run.stdout,
    "OK: 0 errors, 0 warnings (checked 1 Multus config, 3 NetworkAttachmentDefinitions, 2 pods)\n",
  );
});

Deno.test("validate: the clean set with a 00-multus.conflist found in a directory passes", async () => {
  const { run, ok, findings } = await validateJson([F("clean")]);
  assert.equal(run.code, 0, run.stdout);
  assert.equal(ok, true);
  assert.deepEqual(findings, []);
});

// ---- bad JSON / YAML ----

/**
 * Documents with syntax errors, written at run time: `deno fmt` would "repair" them as
 * fixture files (it adds the missing comma to a .json file).
 */
const BAD_JSON = `{
  "apiVersion": "k8s.cni.cncf.io/v1",
  "kind": "NetworkAttachmentDefinition",
  "metadata": { "name": "broken" }
  "spec": { "config": "{}" }
}
`;
const BAD_YAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    k8s.v1.cni.cncf.io/networks: [{"name": "a"}
spec: {}
`;

Deno.test("validate: JSON and YAML syntax errors are reported with line and column", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-validate-syntax-" });
  await Deno.writeTextFile(join(dir, "bad.json"), BAD_JSON);
  await Deno.writeTextFile(join(dir, "bad.yaml"), BAD_YAML);
  const { run, ok, findings } = await validateJson([
    "--config",
    F("syntax/00-multus.conf"),
    join(dir, "bad.json"),
    join(dir, "bad.yaml"),
    F("syntax/01-multus-broken.conf"),
  ]);
  await Deno.remove(dir, { recursive: true });
  assert.equal(run.code, 1);
  assert.equal(ok, false);
  assertFinding(findings, { file: "/bad.json", path: "line 5 column 3" }, {
    severity: "error",
    message: /^invalid JSON: expected "," or "}" after a value/,
  });
  assertFinding(findings, { file: "/bad.yaml", path: "line 7 column 1" }, {
    severity: "error",
    message: /^invalid YAML: Flow sequence in block collection/,
  });
  assertFinding(findings, { file: "syntax/01-multus-broken.conf", path: "line 4 column 3" }, {
    severity: "error",
    message: /^invalid JSON/,
  });
  // A trailing comma: the plugin reads it, the container runtime does not.
  assertFinding(findings, { file: "syntax/00-multus.conf", path: "line 6 column 1" }, {
    severity: "error",
    message: /not strict JSON .*the container runtime cannot load it/,
    hint: /trailing commas/,
  });
});

// ---- unknown and misspelt keys ----

Deno.test("validate: unknown Multus keys are warnings with the closest known key", async () => {
  const { run, ok, findings } = await validateJson([F("keys/00-multus.conf")]);
  assert.equal(run.code, 0, "unknown keys are warnings only");
  assert.equal(ok, true);
  const file = "keys/00-multus.conf";
  assertFinding(findings, { file, path: "logLevl" }, {
    severity: "warning",
    message: /^unknown key "logLevl" is ignored by the plugin; did you mean "logLevel"\?$/,
  });
  assertFinding(findings, { file, path: "confDirectory" }, {
    severity: "warning",
    message: /^unknown key "confDirectory" is ignored by the plugin$/,
  });
  assertFinding(findings, { file, path: "allowTryDeleteOnErr" }, {
    severity: "warning",
    message: /is not a Multus key/,
    hint: /retryDeleteOnError/,
  });
  assertFinding(findings, { file, path: "chrootDir" }, {
    severity: "warning",
    message: /thick plugin/,
  });
  // Keys match case-insensitively, as in the plugin: no finding for these spellings.
  assert.equal(findings.some((f) => /LOGFILE|NamespaceIsolation/i.test(f.path)), false);
  assert.equal(findings.length, 4);
});

Deno.test("validate: a misspelt clusterNetwork fails loading and is named", async () => {
  const { run, findings } = await validateJson([F("keys/01-multus-typo.conf")]);
  assert.equal(run.code, 1);
  const file = "keys/01-multus-typo.conf";
  assertFinding(findings, { file, path: "delegates" }, {
    severity: "error",
    message: /at least one delegate\/clusterNetwork must be specified/,
  });
  assertFinding(findings, { file, path: "clusterNetwrok" }, {
    severity: "warning",
    message: /did you mean "clusterNetwork"\?/,
  });
});

Deno.test("validate: a Multus key of the wrong type is an error; unknown keys still reported", async () => {
  const { run, findings } = await validateJson([F("keys/02-multus-type.conf")]);
  assert.equal(run.code, 1);
  const file = "keys/02-multus-type.conf";
  assertFinding(findings, { file, path: "namespaceIsolation" }, {
    severity: "error",
    message: /"namespaceIsolation" must be a boolean, got the string "yes"/,
  });
  assertFinding(findings, { file, path: "systemNamespace" }, {
    severity: "warning",
    message: /did you mean "systemNamespaces"\?/,
  });
});

// ---- plugin binaries ----

Deno.test("validate: plugin and IPAM types missing from the bin dirs are errors", async () => {
  const { run, findings } = await validateJson([
    F("plugins/00-multus.conf"),
    F("plugins/nads.yaml"),
  ]);
  assert.equal(run.code, 1);
  const nads = "plugins/nads.yaml";
  assertFinding(findings, {
    file: nads,
    path: "NetworkAttachmentDefinition default/typo spec.config.type",
  }, {
    severity: "error",
    message: /^plugin "macvlann" not found in the CNI bin dirs \(.*\); did you mean "macvlan"\?$/,
    hint: /^Set the type to "macvlan" \(installed\)/,
  });
  assertFinding(findings, {
    file: nads,
    path: "NetworkAttachmentDefinition default/chain spec.config.plugins[1].type",
  }, { severity: "error", message: /^plugin "portmap" not found/ });
  assertFinding(findings, {
    file: nads,
    path: "NetworkAttachmentDefinition default/ipam spec.config.ipam.type",
  }, {
    severity: "error",
    message: /^plugin "whereabouts" not found in the CNI bin dirs \([^)]*\)$/,
    hint: /--bin-dir/,
  });
  assertFinding(findings, {
    file: nads,
    path: "NetworkAttachmentDefinition default/notexec spec.config.type",
  }, { severity: "error", message: /^plugin "vlan" at .*\/vlan is not executable$/ });
  assertFinding(findings, {
    file: nads,
    path: "NetworkAttachmentDefinition default/pathtype spec.config.type",
  }, { severity: "error", message: /plugin type "\/opt\/cni\/bin\/macvlan" is not a plugin name/ });
  assertFinding(findings, { file: "plugins/00-multus.conf", path: "delegates[0].type" }, {
    severity: "error",
    message: /^plugin "flannel" not found/,
  });
  assert.equal(findings.filter((f) => f.severity === "error").length, 6);
});

Deno.test("validate: a Multus conflist: list-level cniVersion and chained plugins are checked", async () => {
  const { run, findings } = await validateJson([F("plugins/01-multus.conflist")]);
  assert.equal(run.code, 1);
  const file = "plugins/01-multus.conflist";
  assertFinding(findings, { file, path: "cniVersion" }, {
    severity: "error",
    message: /^incompatible CNI versions: cniVersion is "1.2.0"/,
  });
  assertFinding(findings, { file, path: "plugins[1].type" }, {
    severity: "error",
    message: /^plugin "portmap" not found/,
  });
  assertFinding(findings, { file, path: "plugins[0].logLevl" }, {
    severity: "warning",
    message: /did you mean "logLevel"\?/,
  });
  assert.equal(findings.length, 3, JSON.stringify(findings));
});

// ---- networks that cannot be resolved ----

Deno.test("validate: unresolvable clusterNetwork, defaultNetworks and pod networks", async () => {
  const { run, findings } = await validateJson([
    F("unresolved/00-multus.conf"),
    F("unresolved/nads.yaml"),
    F("unresolved/pod.yaml"),
  ]);
  assert.equal(run.code, 1);
  const conf = "unresolved/00-multus.conf";
  assertFinding(findings, { file: conf, path: "clusterNetwork" }, {
    severity: "error",
    message:
      /^Cannot find the clusterNetwork network "cluster-net": no NetworkAttachmentDefinition "kube-system\/cluster-net" among the given files and no config named "cluster-net" in /,
    hint:
      /exists in default\/cluster-net, but clusterNetwork is looked up in multusNamespace "kube-system"/,
  });
  assertFinding(findings, { file: conf, path: "defaultNetworks[0]" }, {
    severity: "error",
    message: /^Cannot find the defaultNetworks network "extra-net"/,
  });
  assertFinding(findings, { file: conf, path: "defaultNetworks[1]" }, {
    severity: "error",
    message: /\/nonexistent\/dir\/10-extra\.conf/,
  });
  const pod = "unresolved/pod.yaml";
  assertFinding(findings, { file: pod, path: `Pod default/client ${NETWORKS}[0]` }, {
    severity: "error",
    message:
      /^Cannot attach network "default\/missing-nad" to pod "default\/client": no NetworkAttachmentDefinition "missing-nad" in namespace "default" among the given files$/,
  });
  assertFinding(findings, { file: pod, path: `Pod default/client ${DEFAULT_NETWORK}` }, {
    severity: "error",
    message: /^Cannot attach network "kube-system\/nope" to pod "default\/client"/,
  });
  // cluster-net exists in the pod's namespace: no finding for the second element.
  assert.equal(findings.some((f) => f.path.endsWith(`${NETWORKS}[1]`)), false);
});

// ---- NAD spec.config ----

Deno.test("validate: invalid or missing NAD spec.config", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("nadconfig/nads.yaml"),
  ]);
  assert.equal(run.code, 1);
  const nads = "nadconfig/nads.yaml";
  const nad = (name: string, path: string) => ({
    file: nads,
    path: `NetworkAttachmentDefinition default/${name} ${path}`,
  });
  assertFinding(findings, nad("badjson", "spec.config"), {
    severity: "error",
    message:
      /invalid JSON: expected "," or "}" after a value, got character "\\"" at line 3 column 3$/,
    hint: /kubectl -n default edit network-attachment-definition badjson/,
  });
  assertFinding(findings, nad("notype", "spec.config.plugins"), {
    severity: "error",
    message: /it has neither "type" nor "plugins"/,
  });
  assertFinding(findings, nad("absent-net", "spec.config"), {
    severity: "error",
    message: /has no spec.config and no file in .*common\/confdir has "name": "absent-net"$/,
  });
  assertFinding(findings, nad("objconfig", "spec.config"), {
    severity: "error",
    message: /^spec.config must be a string holding the CNI configuration JSON, got an object$/,
  });
  assertFinding(findings, nad("oldapi", "apiVersion"), {
    severity: "error",
    message:
      /"k8s.cni.cncf.io\/v1beta1", but NetworkAttachmentDefinitions are "k8s.cni.cncf.io\/v1"/,
  });
});

// ---- selection annotations ----

Deno.test("validate: selection annotation errors name the pod, element and field", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("clean/nads.yaml"),
    F("annotations/pods.yaml"),
  ]);
  assert.equal(run.code, 1);
  const pods = "annotations/pods.yaml";
  assertFinding(findings, { file: pods, path: `Pod default/bad-mac ${NETWORKS}[0].mac` }, {
    severity: "error",
    message: /element 1 \("macvlan-conf"\): "mac" "zz:11:22:33:44:55" is not a MAC address$/,
  });
  assertFinding(findings, {
    file: pods,
    path: `Pod default/bad-short ${NETWORKS}[0].interface`,
  }, {
    severity: "error",
    message: /interface name "this-name-is-way-too-long" must be 1-15 characters/,
  });
  assertFinding(findings, { file: pods, path: `Pod default/two-defaults ${DEFAULT_NETWORK}` }, {
    severity: "error",
    message: /it must name exactly one network, found 2$/,
  });
  assertFinding(findings, { file: pods, path: `Pod default/not-a-string ${NETWORKS}` }, {
    severity: "error",
    message: /^the annotation must be a string, got a list$/,
  });
  assertFinding(findings, { file: pods, path: `Pod default/bad-json ${NETWORKS}` }, {
    severity: "error",
    message: /it is not valid JSON/,
  });
});

// ---- capabilities ----

Deno.test("validate: requests a network does not declare fail; ips/mac warn", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("capabilities/nads.yaml"),
    F("capabilities/pod.yaml"),
  ]);
  assert.equal(run.code, 1);
  const pod = "capabilities/pod.yaml";
  const at = (path: string) => ({ file: pod, path: `Pod default/wants-much ${path}` });
  assertFinding(findings, at(`${NETWORKS}[0].portMappings`), {
    severity: "error",
    message:
      /^Cannot attach network "default\/plain" to pod "default\/wants-much": the pod asks for "portMappings" but no plugin of this network declares the "portMappings" capability$/,
  });
  assertFinding(findings, at(`${NETWORKS}[1].bandwidth`), {
    severity: "error",
    message: /asks for "bandwidth" but no plugin of this network declares the "bandwidth"/,
  });
  assertFinding(findings, at(`${NETWORKS}[3].infiniband-guid`), {
    severity: "error",
    message: /declares the "infinibandGUID" capability$/,
  });
  assertFinding(findings, at(`${NETWORKS}[2].ips`), {
    severity: "warning",
    message: /may not honour the IPs .*neither "static" nor "host-local" with ranges$/,
  });
  assertFinding(findings, at(`${NETWORKS}[2].mac`), {
    severity: "warning",
    message: /may not honour the MAC .*no plugin declares the "mac" capability$/,
  });
  assertFinding(findings, at("spec.containers[0].ports[0].hostPort"), {
    severity: "warning",
    message: /uses hostPort, but the Multus config does not declare the "portMappings" capability/,
  });
});

// ---- interface names ----

Deno.test("validate: interface name clashes are errors", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("ifnames/nads.yaml"),
    F("ifnames/pods.yaml"),
  ]);
  assert.equal(run.code, 1);
  const pods = "ifnames/pods.yaml";
  assertFinding(findings, { file: pods, path: `Pod default/takes-eth0 ${NETWORKS}` }, {
    severity: "error",
    message:
      /^Cannot attach networks "default-bridge" and "default\/mv": both would get interface "eth0"$/,
  });
  assertFinding(findings, { file: pods, path: `Pod default/takes-net2 ${NETWORKS}` }, {
    severity: "error",
    message: /both would get interface "net2"$/,
  });
});

// ---- namespace isolation ----

Deno.test("validate: namespace isolation violations are errors; global namespaces are allowed", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("isolation/nads.yaml"),
    F("isolation/pod.yaml"),
  ]);
  assert.equal(run.code, 1);
  assertFinding(findings, {
    file: "isolation/pod.yaml",
    path: `Pod team-a/app ${NETWORKS}[0].namespace`,
  }, {
    severity: "error",
    message:
      /^Cannot attach network "team-b\/net-b" to pod "team-a\/app": namespace isolation is on and pods in "team-a" may only use networks of their own namespace or of \["default","shared"\]$/,
    hint: /add "team-b" to globalNamespaces/,
  });
  assert.equal(findings.length, 1, "default/net-d is in a global namespace");
});

Deno.test("validate: namespace isolation left off is a warning (any pod may use any namespace's networks)", async () => {
  const { run, ok, findings } = await validateJson([F("isolation")]);
  assert.equal(run.code, 0);
  assert.equal(ok, true);
  assertFinding(findings, { file: "isolation/00-multus-open.conf", path: "namespaceIsolation" }, {
    severity: "warning",
    message: /^namespace isolation is off/,
    hint: /"namespaceIsolation": true/,
  });
  assert.equal(findings.length, 1);
});

// ---- CNI versions ----

Deno.test("validate: unsupported cniVersion values are errors; a missing one warns", async () => {
  const { run, findings } = await validateJson([
    F("versions/00-multus.conf"),
    F("versions/nads.yaml"),
  ]);
  assert.equal(run.code, 1);
  assertFinding(findings, { file: "versions/00-multus.conf", path: "cniVersion" }, {
    severity: "error",
    message:
      /^incompatible CNI versions: cniVersion is "2.0.0", the plugin supports 0.1.0, .*1.1.0$/,
  });
  assertFinding(findings, {
    file: "versions/nads.yaml",
    path: "NetworkAttachmentDefinition default/future spec.config.cniVersion",
  }, { severity: "error", message: /has cniVersion "0.5.0", which is not a CNI version/ });
  assertFinding(findings, {
    file: "versions/nads.yaml",
    path: "NetworkAttachmentDefinition default/unversioned spec.config.cniVersion",
  }, { severity: "warning", message: /has no cniVersion/ });
});

// ---- output formats, stdin, usage ----

Deno.test("validate: text output has one line per finding, a hint line and a summary", async () => {
  const run = await validate([
    "--bin-dir",
    await fakeBinDir(),
    "--conf-dir",
    CONF_DIR,
    "--kubeconfig",
    KUBECONFIG,
    "--config",
    COMMON_CONFIG,
    F("ifnames/nads.yaml"),
    F("ifnames/pods.yaml"),
  ]);
  assert.equal(run.code, 1);
  const lines = run.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 5, run.stdout);
  assert.match(
    lines[0],
    /^error \S+ifnames\/pods\.yaml: Pod default\/takes-eth0 metadata\.annotations\["k8s\.v1\.cni\.cncf\.io\/networks"\]: Cannot attach networks/,
  );
  assert.match(lines[1], /^ {2}hint: Give one of them another interface name/);
  assert.match(
    lines[4],
    /^FAILED: 2 errors, 0 warnings \(checked 1 Multus config, 1 NetworkAttachmentDefinition, 2 pods\)$/,
  );
});

Deno.test("validate: --json gives ok and findings with every field", async () => {
  const { run, ok, findings } = await validateJson([
    F("versions/00-multus.conf"),
    F("versions/nads.yaml"),
  ]);
  assert.equal(run.code, 1);
  assert.equal(ok, false);
  assert.ok(findings.length > 0);
  for (const f of findings) {
    assert.deepEqual(Object.keys(f).sort(), ["file", "hint", "message", "path", "severity"]);
    assert.ok(f.severity === "error" || f.severity === "warning");
    for (const key of ["file", "path", "message", "hint"] as const) {
      assert.equal(typeof f[key], "string");
    }
  }
});

Deno.test("validate: - reads a pod from standard input", async () => {
  const pod = await Deno.readTextFile(F("unresolved/pod.yaml"));
  const { run, findings } = await validateJson(
    ["--config", COMMON_CONFIG, F("clean/nads.yaml"), "-"],
    { stdin: pod },
  );
  assert.equal(run.code, 1);
  assertFinding(findings, { file: "<stdin>", path: `Pod default/client ${NETWORKS}[0]` }, {
    severity: "error",
    message: /"default\/missing-nad"/,
  });
});

Deno.test("validate: --config - reads the Multus config from standard input", async () => {
  const config = await Deno.readTextFile(COMMON_CONFIG);
  const { run, findings } = await validateJson(
    ["--config", "-", F("clean/nads.yaml"), F("clean/pod.yaml")],
    { stdin: config },
  );
  assert.equal(run.code, 0, JSON.stringify(findings));
  assert.deepEqual(findings, []);
});

Deno.test("validate: usage errors exit 2; --help exits 0", async () => {
  for (const args of [["--no-such-flag"], ["-", "-"], ["--config"]]) {
    const run = await validate(args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, /^multus validate: .*\nsee multus validate --help\n$/);
    assert.equal(run.stdout, "");
  }
  const help = await validate(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: multus validate/);
  assert.match(help.stdout, /--bin-dir <dir>/);
});

Deno.test("validate: an unreadable file is an error finding", async () => {
  const { run, findings } = await validateJson([F("does-not-exist.yaml")]);
  assert.equal(run.code, 1);
  assertFinding(findings, { file: "does-not-exist.yaml", path: "" }, {
    severity: "error",
    message: /no such file or directory/,
  });
});

// ---- what a new operator hits (issue 9): empty documents, the kubeconfig, typos, all errors ----

Deno.test("validate: empty YAML documents (a trailing or doubled ---, as helm emits) are skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-validate-empty-" });
  try {
    // Written at run time: deno fmt would drop the empty documents of a fixture file.
    const nads = await Deno.readTextFile(F("clean/nads.yaml"));
    await Deno.writeTextFile(
      join(dir, "rendered.yaml"),
      `---\n# Source: chart/templates/nads.yaml\n${nads}\n---\n---\n# only a comment\n---\n`,
    );
    const pod = await Deno.readTextFile(F("clean/pod.yaml"));
    const { run, ok, findings } = await validateJson([
      "--config",
      COMMON_CONFIG,
      join(dir, "rendered.yaml"),
      "-",
    ], { stdin: `${pod}---\n` });
    assert.equal(run.code, 0, JSON.stringify(findings));
    assert.equal(ok, true);
    assert.deepEqual(findings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate: the kubeconfig the Multus config names is loaded as the plugin loads it", async () => {
  const base = ["--json", "--bin-dir", await fakeBinDir(), "--conf-dir", CONF_DIR];
  const findingsOf = async (args: string[]) => {
    const run = await validate([...base, ...args]);
    return { code: run.code, findings: JSON.parse(run.stdout).findings as Finding[] };
  };
  const conf = "common/00-multus.conf";

  // The config names /etc/cni/net.d/multus.d/multus.kubeconfig, absent on this machine.
  const missing = await findingsOf(["--config", COMMON_CONFIG]);
  assert.equal(missing.code, 1);
  assertFinding(missing.findings, { file: conf, path: "kubeconfig" }, {
    severity: "error",
    message:
      /^kubeconfig "\/etc\/cni\/net\.d\/multus\.d\/multus\.kubeconfig" does not exist: the plugin fails every ADD and DEL that needs the API$/,
    hint: /multus install writes it .*--kubeconfig/,
  });

  const garbage = await findingsOf([
    "--config",
    COMMON_CONFIG,
    "--kubeconfig",
    F("operator/garbage.kubeconfig"),
  ]);
  assert.equal(garbage.code, 1);
  assertFinding(garbage.findings, { file: conf, path: "kubeconfig" }, {
    severity: "error",
    message: /garbage\.kubeconfig": it is not a kubeconfig/,
  });

  const directory = await findingsOf(["--config", COMMON_CONFIG, "--kubeconfig", FIXTURES]);
  assertFinding(directory.findings, { file: conf, path: "kubeconfig" }, {
    severity: "error",
    message: /is not a regular file$/,
  });

  const good = await findingsOf(["--config", COMMON_CONFIG, "--kubeconfig", KUBECONFIG]);
  assert.equal(good.code, 0, JSON.stringify(good.findings));
  assert.deepEqual(good.findings, []);
  // The token never reaches the output, whatever happens.
  for (const run of [missing, garbage, directory, good]) {
    assert.doesNotMatch(JSON.stringify(run.findings), /fixture-token/);
  }
});

Deno.test("validate: misspelt selection keys, NAD fields and plugin types get the closest known name", async () => {
  const { run, findings } = await validateJson([
    "--config",
    COMMON_CONFIG,
    F("clean/nads.yaml"),
    F("operator/nads.yaml"),
    F("operator/pod.yaml"),
  ]);
  assert.equal(run.code, 1);
  const pod = (path: string) => ({
    file: "operator/pod.yaml",
    path: `Pod default/typo ${NETWORKS}${path}`,
  });
  assertFinding(findings, pod("[0].interfce"), {
    severity: "warning",
    message:
      /^unknown key "interfce" in the network selection is ignored by the plugin; did you mean "interface"\?$/,
    hint: /^Rename it to "interface"$/,
  });
  assertFinding(findings, pod("[1].colour"), {
    severity: "warning",
    message: /^unknown key "colour" in the network selection is ignored by the plugin$/,
    hint: /a selection element has name, namespace, interface/,
  });
  // Keys match case-insensitively, as the plugin reads them: "IPS" is ips.
  assert.equal(findings.some((f) => f.path.endsWith(".IPS")), false);

  const nad = (name: string, path: string) => ({
    file: "operator/nads.yaml",
    path: `NetworkAttachmentDefinition default/${name} ${path}`,
  });
  assertFinding(findings, nad("confg-typo", "spec.confg"), {
    severity: "warning",
    message:
      /^unknown field "confg" in spec: the API server drops it \(the CRD defines "config"\); did you mean "config"\?$/,
  });
  assertFinding(findings, nad("type-typo", "spec.config.type"), {
    severity: "error",
    message: /^plugin "brigde" not found in the CNI bin dirs \(.*\); did you mean "bridge"\?$/,
    hint: /^Set the type to "bridge" \(installed\)/,
  });
  assertFinding(findings, nad("type-typo", "spec.config.ipam.type"), {
    severity: "error",
    message: /^plugin "host-locl" not found .*; did you mean "host-local"\?$/,
  });
});

Deno.test("validate: every key of the wrong type is reported in one run, not only the first", async () => {
  const three = await validateJson([F("operator/00-multus-three-bad.conf")]);
  assert.equal(three.run.code, 1);
  const file = "operator/00-multus-three-bad.conf";
  assertFinding(three.findings, { file, path: "namespaceIsolation" }, {
    severity: "error",
    message: /"namespaceIsolation" must be a boolean, got the string "yes"$/,
  });
  assertFinding(three.findings, { file, path: "logLevel" }, {
    severity: "error",
    message: /"logLevel" must be a string, got number 5$/,
  });
  assertFinding(three.findings, { file, path: "cniDir" }, {
    severity: "error",
    message: /"cniDir" must be a string, got a list$/,
  });
  assert.equal(three.findings.length, 3, JSON.stringify(three.findings));

  // A clusterNetwork of the wrong type is one error, not also "no clusterNetwork".
  const cluster = await validateJson([F("operator/01-multus-cluster-type.conf")]);
  const clusterFile = "operator/01-multus-cluster-type.conf";
  assertFinding(cluster.findings, { file: clusterFile, path: "clusterNetwork" }, {
    severity: "error",
    message: /"clusterNetwork" must be a string, got number 5$/,
  });
  assertFinding(cluster.findings, { file: clusterFile, path: "logToStderr" }, {
    severity: "error",
    message: /"logToStderr" must be a boolean/,
  });
  assert.equal(cluster.findings.length, 2, JSON.stringify(cluster.findings));

  // ... but a config that really has neither delegates nor clusterNetwork says so too.
  const none = await validateJson([F("operator/02-multus-no-network.conf")]);
  const noneFile = "operator/02-multus-no-network.conf";
  assertFinding(none.findings, { file: noneFile, path: "logToStderr" }, {
    severity: "error",
    message: /"logToStderr" must be a boolean/,
  });
  assertFinding(none.findings, { file: noneFile, path: "delegates" }, {
    severity: "error",
    message: /at least one delegate\/clusterNetwork must be specified$/,
  });

  // The same for a NAD's spec.config.
  const nads = await validateJson(["--config", COMMON_CONFIG, F("operator/nads.yaml")]);
  const nad = (path: string) => ({
    file: "operator/nads.yaml",
    path: `NetworkAttachmentDefinition default/two-bad spec.config.${path}`,
  });
  assertFinding(nads.findings, nad("name"), {
    severity: "error",
    message: /"name" must be a string, got 5$/,
    hint: /kubectl -n default edit network-attachment-definition two-bad/,
  });
  assertFinding(nads.findings, nad("cniVersion"), {
    severity: "error",
    message: /"cniVersion" must be a string, got 1$/,
  });
});

Deno.test("SELECTION_KEYS are keys the plugin's selection parser reads", () => {
  for (const key of SELECTION_KEYS) {
    // A probe value of the wrong type: a key the parser reads either fails naming itself or
    // is taken (objects are valid for some); an unknown key is ignored without a trace.
    try {
      parseSelection(JSON.stringify([{ name: "net", [key]: 12345 }]), {
        defaultNamespace: "default",
        where: "test",
      });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      const field = err.field.replace(/^networks\[0\]\./, "");
      assert.equal(field.toLowerCase(), key.toLowerCase(), err.message);
      continue;
    }
    assert.ok(
      ["deviceID", "ipam-claim-reference"].includes(key),
      `${key} accepts a number, or the parser ignores it`,
    );
  }
});

// ---- unit: the key list stays in step with the plugin's loader ----

Deno.test("MULTUS_KEYS are all keys the plugin's loader knows", () => {
  const base = { cniVersion: "1.0.0", name: "m", type: "multus", clusterNetwork: "x" };
  for (const key of MULTUS_KEYS) {
    // A probe value: a known key either loads or fails naming itself; an unknown key loads
    // and is listed in unknownKeys.
    const config = { ...base, [key]: { probe: true } };
    try {
      const conf = loadMultusNetConf(JSON.stringify(config));
      assert.equal(conf.unknownKeys.includes(key), false, `${key} is unknown to the loader`);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.field.split(/[.[]/)[0], key, err.message);
    }
  }
});

Deno.test("closestKey() suggests typos, case-insensitively, and nothing for strangers", () => {
  assert.equal(closestKey("clusterNetwrok", MULTUS_KEYS), "clusterNetwork");
  assert.equal(closestKey("NAMESPACEISOLATON", MULTUS_KEYS), "namespaceIsolation");
  assert.equal(closestKey("binDirs", MULTUS_KEYS), "binDir");
  assert.equal(closestKey("readinessIndicatorFile2", MULTUS_KEYS), "readinessindicatorfile");
  assert.equal(closestKey("confDirectory", MULTUS_KEYS), undefined);
  assert.equal(closestKey("foo", MULTUS_KEYS), undefined);
});

// ---- DRA objects ----

Deno.test("validate: DRA objects (DeviceClass, ResourceClaimTemplate, ResourceSlice, ResourceClaim) are recognised and pass", async () => {
  const { run, ok, findings } = await validateJson(["--config", COMMON_CONFIG, F("dra/good.yaml")]);
  assert.equal(run.code, 0, run.stdout);
  assert.equal(ok, true);
  assert.deepEqual(findings, []);
  const text = await validate([
    "--bin-dir",
    await fakeBinDir(),
    "--conf-dir",
    CONF_DIR,
    "--kubeconfig",
    KUBECONFIG,
    "--config",
    COMMON_CONFIG,
    F("dra/good.yaml"),
  ]);
  assert.equal(text.stdout, "OK: 0 errors, 0 warnings (checked 1 Multus config, 4 DRA objects)\n");
});

Deno.test("validate: DRA objects the plugin would misread are reported at their fields", async () => {
  const { run, findings } = await validateJson(["--config", COMMON_CONFIG, F("dra/bad.yaml")]);
  assert.equal(run.code, 1);
  const attrs = (i: number) => `ResourceSlice worker-1-bad spec.devices[${i}].attributes`;
  assertFinding(findings, {
    file: "dra/bad.yaml",
    path: "ResourceClaimTemplate nfv/old-shape spec.spec.devices.requests[0].deviceClassName",
  }, {
    severity: "error",
    message:
      /v1beta1 place of the DeviceClass; resource\.k8s\.io\/v1 reads exactly\.deviceClassName/,
  });
  assertFinding(findings, {
    file: "dra/bad.yaml",
    path: `${attrs(0)}["k8s.cni.cncf.io/deviceID"]`,
  }, { severity: "error", message: /is not a typed attribute value/, hint: /\{string: / });
  assertFinding(findings, {
    file: "dra/bad.yaml",
    path: `${attrs(1)}["k8s.v1.cni.cncf.io/resourceName"]`,
  }, { severity: "warning", message: /did you mean "k8s\.cni\.cncf\.io\/resourceName"\?/ });
  assertFinding(findings, {
    file: "dra/bad.yaml",
    path: "DeviceClass no-cel spec.selectors[0].cel.expression",
  }, {
    severity: "error",
    message: /is missing/,
  });
  const everywhere = findings.filter((f) => /has no nodeName/.test(f.message));
  assert.equal(everywhere.length, 1, "a slice for all nodes is never listed by the plugin");
  assert.equal(findings.filter((f) => /skips this device/.test(f.message)).length, 2);
});
