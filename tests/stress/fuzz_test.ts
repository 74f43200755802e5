/**
 * Hostile input, fuzzed: seeded mutations of the multus config, the CNI environment, the
 * selection annotation, NAD configs, kubeconfigs and delegate output. Most iterations run the
 * plugin's own entry points in this process (`runCniCommand` and the parsers: the same code
 * path as the binary, minus process start-up); a smaller number run the real binary through
 * its launcher, against the test API server where Kubernetes is involved.
 *
 * Every run must end in a valid result or a CNI error (a `CniError` in process; exit code and
 * error JSON through the launcher), never a stack trace, and leave nothing behind.
 *
 * Fixed seeds and 200 iterations in CI; `FUZZ_ITERATIONS=5000` (and `FUZZ_SEED=n`) for a
 * longer run on demand. A failure names the target, seed and iteration to replay it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { CniError, toCniErrorJson } from "../../src/cni/errors.ts";
import { parseNetworkConfig } from "../../src/cni/network_config.ts";
import { stripJsonc } from "../../src/cni/raw_json.ts";
import { validateIfName } from "../../src/cni/request.ts";
import { loadKubeconfig } from "../../src/k8s/kubeconfig.ts";
import { runCniCommand } from "../../src/multus/run/command.ts";
import { parseSelection } from "../../src/multus/plan/selection.ts";
import { makeTestRoot, type PluginRun } from "../helpers/plugin_run.ts";
import { listFiles, TestNetns } from "../helpers/netns.ts";
import { startTestApiServer } from "../k8s_api/server.ts";
import { HOSTILE_STRINGS, mutateText, mutateValue } from "./_fuzz.ts";
import {
  assertCniError,
  assertCompleteLogLines,
  assertNoStackTrace,
  Rng,
  writeScript,
} from "./_helpers.ts";

const TOTAL = Number(Deno.env.get("FUZZ_ITERATIONS") ?? 200);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261127);
/** In-process iterations of a target: its share of the total. */
const share = (fraction: number) => Math.max(1, Math.round(TOTAL * fraction));
/** Runs through the launcher (real processes): a tenth of the total, at least 16. */
const PROCESS_RUNS = Math.max(16, Math.round(TOTAL / 10));

const SECRET_TOKEN = "fuzz-token-SECRET7c1f0e";
const KEY_MARKER = "FUZZKEYSECRET";
const SHADOW_MARKER = "SHADOWSECRET";

/** A scratch CNI installation with stand-in plugins, for in-process runs. */
interface Sandbox {
  dir: string;
  bin: string;
  cni: string;
  confDir: string;
  logFile: string;
  netns: string;
  outFile: string;
  rcFile: string;
  shadow: string;
  cleanup(): Promise<void>;
}

async function sandbox(): Promise<Sandbox> {
  const dir = await Deno.makeTempDir({ prefix: "multus-fuzz-" });
  const s: Sandbox = {
    dir,
    bin: join(dir, "bin"),
    cni: join(dir, "cni"),
    confDir: join(dir, "net.d"),
    logFile: join(dir, "log", "multus.log"),
    netns: join(dir, "netns"),
    outFile: join(dir, "delegate.out"),
    rcFile: join(dir, "delegate.rc"),
    shadow: join(dir, "shadow"),
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
  for (const d of [s.bin, s.confDir, join(dir, "log")]) await Deno.mkdir(d, { recursive: true });
  await Deno.writeTextFile(s.netns, "");
  await Deno.writeTextFile(s.outFile, "{}");
  await Deno.writeTextFile(s.rcFile, "0");
  await Deno.writeTextFile(
    s.shadow,
    `root:$6$${SHADOW_MARKER}$Qx9.hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n`,
    { mode: 0o600 },
  );
  await writeStandIns(s.bin, s.outFile, s.rcFile);
  return s;
}

/**
 * `fake`: answers ADD with a result of the configuration's cniVersion, anything else with
 * success. `fuzzout`: answers ADD with the bytes of `outFile` and the exit code in `rcFile`.
 */
async function writeStandIns(bin: string, outFile: string, rcFile: string): Promise<void> {
  await writeScript(
    bin,
    "fake",
    `
input=$(cat)
[ "$CNI_COMMAND" = ADD ] || exit 0
v=$(printf '%s' "$input" | sed -n 's/.*"cniVersion"[[:space:]]*:[[:space:]]*"\\([^"]*\\)".*/\\1/p' | head -n 1)
printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"address":"10.9.0.2/24","gateway":"10.9.0.1","interface":0}],"dns":{}}' "$v" "$CNI_IFNAME" "$CNI_NETNS"
`,
  );
  await writeScript(
    bin,
    "fuzzout",
    `
cat >/dev/null
[ "$CNI_COMMAND" = ADD ] || exit 0
cat "${outFile}"
exit "$(cat "${rcFile}")"
`,
  );
}

/** The keys that point the plugin at files: always the sandbox's, whatever the fuzzer did. */
const SANDBOX_KEYS = [
  "cnidir",
  "bindir",
  "confdir",
  "logfile",
  "logtostderr",
  "kubeconfig",
  "readinessindicatorfile",
];

/** Puts the sandbox keys first in the object text (the fuzzed part cannot override them). */
function withSandbox(text: string, s: Sandbox, extra: Record<string, unknown> = {}): string {
  const at = text.indexOf("{");
  if (at === -1 || text.slice(0, at).trim().replace(/^\ufeff/, "") !== "") return text;
  const keys = JSON.stringify({
    cniDir: s.cni,
    binDir: s.bin,
    confDir: s.confDir,
    logFile: s.logFile,
    logToStderr: false,
    ...extra,
  }).slice(1, -1);
  return `${text.slice(0, at + 1)}${keys},${text.slice(at + 1)}`;
}

function withoutSandboxKeys(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value).filter(([k]) => !SANDBOX_KEYS.includes(k.toLowerCase())),
  );
}

const NETCONF_KEYS = [
  "cniVersion",
  "name",
  "type",
  "capabilities",
  "runtimeConfig",
  "prevResult",
  "ipam",
  "dns",
  "args",
  "delegates",
  "clusterNetwork",
  "defaultNetworks",
  "logLevel",
  "logOptions",
  "namespaceIsolation",
  "globalNamespaces",
  "systemNamespaces",
  "multusNamespace",
  "auxiliaryCNIChainName",
  "retryDeleteOnError",
  "delegateTimeoutSeconds",
  "apiTimeoutSeconds",
  "plugins",
  "disableCheck",
  "disableGC",
];

const BASE_NETCONF = {
  cniVersion: "1.0.0",
  name: "fuzz-net",
  type: "multus",
  logLevel: "debug",
  logOptions: { maxSize: 10 },
  delegateTimeoutSeconds: 10,
  runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
  delegates: [
    {
      cniVersion: "1.0.0",
      name: "fake-a",
      type: "fake",
      capabilities: { portMappings: true },
      ipam: { type: "none" },
    },
    {
      cniVersion: "0.4.0",
      name: "fake-list",
      plugins: [{ type: "fake" }, { type: "fake", capabilities: { bandwidth: true } }],
    },
  ],
};

function baseEnv(s: Sandbox, i: number): Record<string, string> {
  return {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: `fz-${SEED}-${i}`,
    CNI_NETNS: s.netns,
    CNI_IFNAME: "eth0",
    CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=fz;K8S_POD_NAME=pod",
    CNI_PATH: s.bin,
  };
}

type Outcome = { out: string } | { err: unknown };

async function inProcess(env: Record<string, string | undefined>, stdin: string): Promise<Outcome> {
  try {
    return { out: await runCniCommand(env, () => Promise.resolve(stdin)) };
  } catch (err) {
    return { err };
  }
}

/** The outcome is a valid result or a CNI error that reaches the runtime as clean JSON. */
function checkOutcome(o: Outcome, label: string): void {
  if ("err" in o) {
    const err = o.err as Error;
    assert.ok(
      err instanceof CniError,
      `${label}: threw ${err?.constructor?.name} instead of a CNI error: ${err?.message}\n${err?.stack}`,
    );
    const json = toCniErrorJson(err);
    assert.ok(Number.isInteger(json.code) && json.code > 0, label);
    assert.ok(json.msg.length > 0, `${label}: empty msg`);
    assertNoStackTrace(`${json.msg}\n${json.details ?? ""}`, label);
    return;
  }
  if (o.out === "") return;
  const parsed = JSON.parse(o.out);
  assert.ok(parsed !== null && typeof parsed === "object" && !Array.isArray(parsed), label);
}

function repro(target: string, i: number, input: string): string {
  return `${target} seed=${SEED} iteration=${i} input=${JSON.stringify(input.slice(0, 400))}`;
}

/** Runs `command` in process; after a successful ADD, DEL too; then nothing may be left. */
async function runAndClean(
  s: Sandbox,
  env: Record<string, string | undefined>,
  stdin: string,
  label: string,
) {
  const first = await inProcess(env, stdin);
  checkOutcome(first, label);
  if ("out" in first && env.CNI_COMMAND === "ADD") {
    const del = await inProcess({ ...env, CNI_COMMAND: "DEL" }, stdin);
    checkOutcome(del, `${label} (DEL after ADD)`);
    assert.ok(
      "out" in del,
      `${label}: DEL after a successful ADD failed: ${(del as { err: Error }).err?.message}`,
    );
  }
  assert.deepEqual(await listFiles(s.cni), [], `${label}: left in the cache dir`);
}

Deno.test(`fuzz: multus configuration in process (${share(0.25)} iterations)`, async () => {
  const s = await sandbox();
  const rng = new Rng(SEED ^ 0x1001);
  try {
    for (let i = 0; i < share(0.25); i++) {
      const value = withoutSandboxKeys(mutateValue(BASE_NETCONF, rng, NETCONF_KEYS));
      let text = JSON.stringify(value);
      if (rng.chance(0.3)) text = mutateText(text, rng);
      const stdin = withSandbox(text, s);
      const env = baseEnv(s, i);
      env.CNI_COMMAND = rng.pick(["ADD", "ADD", "ADD", "DEL", "CHECK", "GC", "STATUS"]);
      await runAndClean(s, env, stdin, repro("netconf", i, stdin));
    }
    await assertCompleteLogLines(s.logFile);
  } finally {
    await s.cleanup();
  }
});

Deno.test(`fuzz: CNI environment in process (${share(0.15)} iterations)`, async () => {
  const s = await sandbox();
  const rng = new Rng(SEED ^ 0x2002);
  const pools: Record<string, string[]> = {
    CNI_COMMAND: ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "add", "ADD ", "BOGUS"],
    CNI_CONTAINERID: ["ok-id", "a".repeat(10_000), "-leading", "x.y_z-1"],
    CNI_NETNS: [s.netns, "/nonexistent/ns", "/proc/self/ns/net", "/dev/null", "../../x", s.dir],
    CNI_IFNAME: ["eth0", "x".repeat(15), "x".repeat(16), "net1", "eth0:1"],
    CNI_ARGS: [
      "IgnoreUnknown=1",
      "K8S_POD_NAMESPACE=../..;K8S_POD_NAME=/x",
      "IP=10.9.0.5/24;MAC=c2:00:00:00:00:01",
      "noequals",
      ";;;",
      "A=B=C",
      `K8S_POD_NAME=${"x".repeat(5000)}`,
    ],
    CNI_PATH: [s.bin, ":", `/nonexistent:${s.bin}`, "/"],
  };
  try {
    const stdin = withSandbox(JSON.stringify(BASE_NETCONF), s);
    for (let i = 0; i < share(0.15); i++) {
      const env: Record<string, string | undefined> = baseEnv(s, i);
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const name = rng.pick(Object.keys(pools));
        env[name] = rng.chance(0.15)
          ? undefined
          : rng.chance(0.6)
          ? rng.pick(pools[name])
          : rng.pick(HOSTILE_STRINGS);
      }
      await runAndClean(s, env, stdin, repro("env", i, JSON.stringify(env)));
    }
  } finally {
    await s.cleanup();
  }
});

const FULL_SELECTION = [{
  name: "net-a",
  namespace: "ns1",
  interface: "eth1",
  ips: ["10.1.1.1/24", "fd00::1/64"],
  mac: "c2:00:00:00:00:01",
  "default-route": ["10.1.1.254"],
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  bandwidth: { ingressRate: 1000, ingressBurst: 10, egressRate: 1000, egressBurst: 10 },
  "cni-args": { a: "b" },
  "infiniband-guid": "c2:00:00:00:00:00:00:01",
  deviceID: "0000:00:01.0",
}];

const SELECTION_KEYS = Object.keys(FULL_SELECTION[0]).concat([
  "interfaceRequest",
  "ipam-claim-reference",
]);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

Deno.test(`fuzz: selection annotation (${share(0.2)} iterations)`, () => {
  const rng = new Rng(SEED ^ 0x3003);
  const shortForms = ["net-a", "ns1/net-b@eth1, net-c", "a,b,c@net5,ns/d"];
  for (let i = 0; i < share(0.2); i++) {
    let value: string;
    if (rng.chance(0.5)) {
      value = JSON.stringify(mutateValue(FULL_SELECTION, rng, SELECTION_KEYS));
      if (rng.chance(0.3)) value = mutateText(value, rng);
    } else {
      value = rng.pick(shortForms);
      for (let k = 1 + rng.int(2); k > 0; k--) {
        value = rng.chance(0.5)
          ? mutateText(value, rng)
          : value.replace(/[a-z0-9]+/, rng.pick(HOSTILE_STRINGS));
      }
    }
    const label = repro("annotation", i, value);
    let selections;
    try {
      selections = parseSelection(value, {
        defaultNamespace: "default",
        where: 'pod "fz/pod" annotation k8s.v1.cni.cncf.io/networks',
      });
    } catch (err) {
      checkOutcome({ err }, label);
      continue;
    }
    const jsonForm = /[[{"]/.test(value);
    for (const sel of selections) {
      // The JSON form does not restrict names (as in Multus); the API client refuses what
      // cannot be a path segment. The short form allows DNS labels only.
      assert.ok(typeof sel.name === "string" && sel.name !== "", label);
      assert.ok(typeof sel.namespace === "string" && sel.namespace !== "", label);
      if (!jsonForm) {
        assert.match(sel.name, DNS_LABEL, label);
        assert.match(sel.namespace, DNS_LABEL, label);
      }
      if (sel.interface !== undefined) {
        assert.doesNotThrow(
          () => validateIfName(sel.interface!),
          `${label}: interface ${JSON.stringify(sel.interface)}`,
        );
      }
      for (const ip of sel.ips ?? []) assert.equal(typeof ip, "string", label);
      if (sel.mac !== undefined) assert.equal(typeof sel.mac, "string", label);
      for (const gw of sel.defaultRoute ?? []) assert.equal(typeof gw, "string", label);
    }
  }
});

const BASE_NADS: unknown[] = [
  {
    cniVersion: "1.0.0",
    name: "mv",
    type: "macvlan",
    master: "eth0",
    mode: "bridge",
    ipam: { type: "static", addresses: [{ address: "10.1.1.1/24" }] },
  },
  {
    cniVersion: "1.0.0",
    name: "tuned",
    plugins: [{ type: "macvlan", master: "eth0", capabilities: { ips: true } }, {
      type: "tuning",
      mtu: 1300,
    }],
    disableCheck: true,
  },
  {
    cniVersion: "0.3.1",
    type: "bridge",
    capabilities: { portMappings: true, mac: true },
    bridge: "br0",
  },
];
const NAD_KEYS = [
  "cniVersion",
  "name",
  "type",
  "plugins",
  "capabilities",
  "ipam",
  "disableCheck",
  "disableGC",
  "master",
  "runtimeConfig",
  "args",
];

Deno.test(`fuzz: NAD configurations (${share(0.15)} iterations)`, () => {
  const rng = new Rng(SEED ^ 0x4004);
  for (let i = 0; i < share(0.15); i++) {
    let text = JSON.stringify(mutateValue(rng.pick(BASE_NADS), rng, NAD_KEYS));
    if (rng.chance(0.4)) text = mutateText(text, rng);
    const label = repro("nad", i, text);
    let config;
    try {
      config = parseNetworkConfig(text, 'NetworkAttachmentDefinition "fz/nad" spec.config');
    } catch (err) {
      checkOutcome({ err }, label);
      continue;
    }
    assert.ok(config.plugins.length > 0, label);
    for (const p of config.plugins) {
      assert.ok(
        p.type !== "" && p.type !== "." && p.type !== ".." && !/[/\\]/.test(p.type),
        `${label}: type ${p.type}`,
      );
      const raw = JSON.parse(stripJsonc(p.raw));
      assert.ok(raw !== null && typeof raw === "object" && !Array.isArray(raw), label);
    }
  }
});

function baseKubeconfig(s: Sandbox, server = "https://127.0.0.1:6443"): string {
  const pem = (kind: string, body: string) =>
    btoa(`-----BEGIN ${kind}-----\n${body}\n-----END ${kind}-----\n`);
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: local",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${pem("CERTIFICATE", "Q0FCT0RZ")}`,
    "users:",
    "- name: multus",
    "  user:",
    `    token: ${SECRET_TOKEN}`,
    `    client-certificate-data: ${pem("CERTIFICATE", "Q0VSVEJPRFk=")}`,
    `    client-key-data: ${pem("EC PRIVATE KEY", `${KEY_MARKER}AAAA`)}`,
    "contexts:",
    "- name: ctx",
    "  context:",
    "    cluster: local",
    "    user: multus",
    "current-context: ctx",
    `# shadow: ${s.shadow}`,
    "",
  ].join("\n");
}

function kubeconfigLines(s: Sandbox): string[] {
  return [
    `    tokenFile: ${s.shadow}`,
    `    token-file: ${s.shadow}`,
    `    client-key: ${s.shadow}`,
    `    client-certificate: ${s.shadow}`,
    `    certificate-authority: ${s.shadow}`,
    "    exec: {command: /bin/sh, args: [-c, id]}",
    "    auth-provider: {name: gcp}",
    "    as: system:admin",
    "    proxy-url: http://127.0.0.1:1",
    "    insecure-skip-tls-verify: true",
    "    tls-server-name: kubernetes",
    "    server: file:///etc/passwd",
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "%YAML 1.1",
    "--- !!binary",
    "? [complex, key]\n: value",
    "\t- tab",
    "users: !!str",
    "current-context: *nothing",
  ];
}

const KUBECONFIG_KEYS = [
  "server",
  "token",
  "tokenFile",
  "token-file",
  "client-key",
  "client-key-data",
  "certificate-authority",
  "exec",
  "as",
  "user",
  "cluster",
  "current-context",
  "contexts",
  "users",
  "clusters",
  "name",
];

function mutateKubeconfig(text: string, s: Sandbox, rng: Rng): string {
  if (rng.chance(0.35)) {
    const value = mutateValue(parseYaml(text), rng, KUBECONFIG_KEYS);
    if (rng.chance(0.5)) return JSON.stringify(value);
    try {
      return stringifyYaml(value);
    } catch {
      return JSON.stringify(value); // too deep for the YAML writer
    }
  }
  const lines = text.split("\n");
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const at = rng.int(lines.length);
    switch (rng.int(5)) {
      case 0:
        lines.splice(at, 1);
        break;
      case 1:
        lines.splice(at, 0, lines[rng.int(lines.length)]);
        break;
      case 2:
        lines[at] = lines[at].replace(
          /^ +/,
          (sp) => " ".repeat(Math.max(0, sp.length + rng.pick([-2, 2, 1]))),
        );
        break;
      case 3:
        lines.splice(at, 0, rng.pick(kubeconfigLines(s)));
        break;
      default:
        lines[at] = mutateText(lines[at], rng);
    }
  }
  return lines.join("\n");
}

function assertNoSecret(text: string, label: string): void {
  for (
    const secret of [
      SECRET_TOKEN,
      KEY_MARKER,
      SHADOW_MARKER,
      btoa(`-----BEGIN EC PRIVATE KEY-----`).slice(0, 20),
    ]
  ) {
    assert.ok(
      !text.includes(secret),
      `${label}: a secret (${secret.slice(0, 12)}…) is in: ${text.slice(0, 500)}`,
    );
  }
}

Deno.test(`fuzz: kubeconfigs (${share(0.125)} iterations)`, async () => {
  const s = await sandbox();
  const rng = new Rng(SEED ^ 0x5005);
  try {
    const path = join(s.dir, "kubeconfig");
    for (let i = 0; i < share(0.125); i++) {
      const text = mutateKubeconfig(baseKubeconfig(s), s, rng);
      await Deno.writeTextFile(path, text, { mode: 0o600 });
      const label = repro("kubeconfig", i, text);
      try {
        const creds = await loadKubeconfig(path);
        assert.equal(typeof creds.server, "string", label);
      } catch (err) {
        checkOutcome({ err }, label);
        const json = toCniErrorJson(err);
        assertNoSecret(`${json.msg}\n${json.details ?? ""}`, label);
      }
    }
  } finally {
    await s.cleanup();
  }
});

const BASE_OUTPUTS: unknown[] = [
  {
    cniVersion: "1.0.0",
    interfaces: [{ name: "net1", mac: "c2:00:00:00:00:01", sandbox: "/var/run/netns/x" }],
    ips: [{ address: "10.9.1.2/24", gateway: "10.9.1.1", interface: 0 }],
    routes: [{ dst: "0.0.0.0/0", gw: "10.9.1.1" }],
    dns: { nameservers: ["10.9.0.10"], search: ["svc"] },
  },
  { cniVersion: "1.0.0", code: 7, msg: "bad master", details: "no such link" },
  {
    cniVersion: "0.2.0",
    ip4: { ip: "10.9.1.2/24", gateway: "10.9.1.1", routes: [{ dst: "0.0.0.0/0" }] },
  },
];
const RESULT_KEYS = [
  "cniVersion",
  "interfaces",
  "ips",
  "routes",
  "dns",
  "address",
  "gateway",
  "interface",
  "sandbox",
  "mac",
  "mtu",
  "dst",
  "gw",
  "code",
  "msg",
  "ip4",
  "ip6",
];

async function fuzzDelegateOutput(s: Sandbox, rng: Rng): Promise<string> {
  let bytes: Uint8Array;
  const choice = rng.int(10);
  if (choice === 0) bytes = crypto.getRandomValues(new Uint8Array(1 + rng.int(300)));
  else if (choice === 1) bytes = new Uint8Array(0);
  else {
    let text = JSON.stringify(mutateValue(rng.pick(BASE_OUTPUTS), rng, RESULT_KEYS));
    if (rng.chance(0.3)) text = mutateText(text, rng);
    bytes = new TextEncoder().encode(text);
  }
  await Deno.writeFile(s.outFile, bytes);
  const rc = rng.pick([0, 0, 0, 1, 2]);
  await Deno.writeTextFile(s.rcFile, String(rc));
  return `rc=${rc} ${new TextDecoder().decode(bytes)}`;
}

function outputNetconf(): Record<string, unknown> {
  return {
    cniVersion: "1.0.0",
    name: "fuzz-out",
    type: "multus",
    logLevel: "debug",
    delegates: [
      { cniVersion: "1.0.0", name: "fake-a", type: "fake" },
      { cniVersion: "1.0.0", name: "out-net", type: "fuzzout" },
    ],
  };
}

Deno.test(`fuzz: delegate output (${share(0.125)} iterations)`, async () => {
  const s = await sandbox();
  const rng = new Rng(SEED ^ 0x6006);
  try {
    const stdin = withSandbox(JSON.stringify(outputNetconf()), s);
    for (let i = 0; i < share(0.125); i++) {
      const output = await fuzzDelegateOutput(s, rng);
      await runAndClean(s, baseEnv(s, i), stdin, repro("delegate output", i, output));
    }
    await assertCompleteLogLines(s.logFile);
  } finally {
    await s.cleanup();
  }
});

/** A launcher run ended in a valid result or a CNI error JSON, without a stack trace. */
function checkProcessRun(run: PluginRun, command: string, label: string): void {
  assertNoStackTrace(run.stdout + run.stderr, label);
  if (run.code !== 0) {
    assertCniError(run, label);
    return;
  }
  if (command === "ADD") {
    assert.ok(run.json && typeof run.json === "object", `${label}: ADD printed ${run.stdout}`);
  } else if (command !== "VERSION") {
    assert.equal(run.stdout.trim(), "", `${label}: ${command} printed ${run.stdout}`);
  }
}

Deno.test(`fuzz: the real binary through its launcher, delegates and Kubernetes mode (${PROCESS_RUNS} runs)`, async () => {
  const root = await makeTestRoot();
  const s = await sandbox();
  const ns = await TestNetns.create();
  const api = await startTestApiServer();
  const rng = new Rng(SEED ^ 0x7007);
  try {
    await writeStandIns(root.binDir, s.outFile, s.rcFile);
    const clusterFile = join(root.dir, "cluster.conf");
    await Deno.writeTextFile(
      clusterFile,
      JSON.stringify({ cniVersion: "1.0.0", name: "cluster", type: "fake" }),
    );
    const kubeconfig = join(root.dir, "kubeconfig");
    const rootSandbox: Sandbox = {
      ...s,
      bin: root.binDir,
      cni: root.cniDir,
      confDir: root.confDir,
      logFile: root.logFile,
    };
    for (let i = 0; i < PROCESS_RUNS; i++) {
      const containerId = `fzp-${SEED}-${i}`;
      const env: Record<string, string> = {};
      let command = "ADD";
      let stdin: string;
      let input: string;
      let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=fz;K8S_POD_NAME=pod";
      let ifName = "eth0";
      const target = rng.pick(["netconf", "env", "output", "kubernetes", "kubernetes"]);
      if (target === "netconf") {
        const value = withoutSandboxKeys(mutateValue(BASE_NETCONF, rng, NETCONF_KEYS));
        let text = JSON.stringify(value);
        if (rng.chance(0.3)) text = mutateText(text, rng);
        stdin = withSandbox(text, rootSandbox);
        input = stdin;
      } else if (target === "env") {
        stdin = withSandbox(JSON.stringify(BASE_NETCONF), rootSandbox);
        const printable = HOSTILE_STRINGS.filter((h) => !h.includes("\u0000"));
        command = rng.pick(["ADD", "DEL", "CHECK", "VERSION", "GC", "BOGUS", ""]);
        if (rng.chance(0.5)) args = rng.pick(printable);
        if (rng.chance(0.5)) ifName = rng.pick(printable);
        input = JSON.stringify({ command, args, ifName });
      } else if (target === "output") {
        input = await fuzzDelegateOutput(s, rng);
        stdin = withSandbox(JSON.stringify(outputNetconf()), rootSandbox);
      } else {
        // The pod's annotation, its NAD and the kubeconfig, each possibly fuzzed.
        let annotation = rng.chance(0.5)
          ? "fz-nad@net7, fz/fz-nad"
          : JSON.stringify([{ name: "fz-nad", interface: "fz0" }]);
        if (rng.chance(0.5)) annotation = mutateText(annotation, rng);
        let nad = JSON.stringify({ cniVersion: "1.0.0", type: "fake" });
        if (rng.chance(0.5)) nad = JSON.stringify(mutateValue(JSON.parse(nad), rng, NAD_KEYS));
        let kc = baseKubeconfig(s, api.url).replace(`token: ${SECRET_TOKEN}`, `token: ${api.token}`)
          .replace(
            /^.*certificate-authority-data.*$/m,
            `    certificate-authority-data: ${btoa(api.caPem)}`,
          )
          .replace(/^.*client-(certificate|key)-data.*\n/gm, "");
        if (rng.chance(0.4)) kc = mutateKubeconfig(kc, s, rng);
        await Deno.writeTextFile(kubeconfig, kc, { mode: 0o600 });
        api.setPod({
          metadata: {
            name: "pod",
            namespace: "fz",
            annotations: { "k8s.v1.cni.cncf.io/networks": annotation },
          },
        });
        api.setNad({ metadata: { name: "fz-nad", namespace: "fz" }, spec: { config: nad } });
        stdin = withSandbox(
          JSON.stringify({
            cniVersion: "1.0.0",
            name: "fuzz-k8s",
            type: "multus",
            logLevel: "debug",
            apiTimeoutSeconds: 2,
          }),
          rootSandbox,
          { kubeconfig, clusterNetwork: clusterFile },
        );
        input = JSON.stringify({ annotation, nad, kc });
      }
      const label = repro(`process ${target}`, i, input);
      const call = {
        command,
        containerId,
        netns: ns.path,
        ifName,
        args,
        config: stdin,
        env,
        path: [root.binDir],
      };
      const run = await root.run(call);
      checkProcessRun(run, command, label);
      assertNoSecret(run.stdout + run.stderr, label);
      if (run.code === 0 && command === "ADD") {
        const del = await root.run({ ...call, command: "DEL" });
        checkProcessRun(del, "DEL", `${label} (DEL)`);
        assert.equal(del.code, 0, `${label}: DEL after ADD: ${del.stdout}`);
      }
      assert.deepEqual(await listFiles(root.cniDir), [], `${label}: left in the cache dir`);
      assert.deepEqual((await ns.links()).map((l) => l.ifname), ["lo"], `${label}: links left`);
    }
    await assertCompleteLogLines(root.logFile);
    assertNoSecret(await Deno.readTextFile(root.logFile), "the log file");
  } finally {
    await api.close();
    await ns.remove();
    await s.cleanup();
    await root.cleanup();
  }
});
