/**
 * deploy/systemd/, the daemon for nodes without a DaemonSet: systemd accepts the unit without
 * a single warning, its ExecStart is a command line `multus daemon` accepts (run for real),
 * reading the file `multus install --daemon-config-file` writes, and the shipped
 * daemon-config.json is one the daemon loads without warnings, on the socket the installer's
 * shim config names, with a stop timeout longer than its drain.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseDaemonArgs, parseDaemonConfig } from "../../src/daemon/config.ts";
import { parseInstallFlags } from "../../src/install/flags.ts";
import { REPO_ROOT } from "../helpers/plugin_run.ts";

const UNIT_FILE = join(REPO_ROOT, "deploy", "systemd", "multus-daemon.service");
const CONFIG_FILE = join(REPO_ROOT, "deploy", "systemd", "daemon-config.json");
const unitText = await Deno.readTextFile(UNIT_FILE);

/** `Key=value` lines of a unit section (the last one wins, as for systemd's single values). */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    if (current !== name) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const service = section(unitText, "Service");
const value = (key: string) => service.get(key)?.at(-1);
const execStart = value("ExecStart")!.split(/\s+/);

async function systemdAnalyzeInstalled(): Promise<boolean> {
  try {
    return (await new Deno.Command("systemd-analyze", { args: ["--version"] }).output()).success;
  } catch {
    return false;
  }
}

/**
 * `systemd-analyze verify` of `text` as /etc/systemd/system/multus-daemon.service in a
 * scratch root holding the system's units and a stand-in for the ExecStart binary (verify
 * checks that it is executable; the node's own /opt/cni/bin is not touched).
 */
async function verify(text: string): Promise<{ code: number; stderr: string }> {
  const root = await Deno.makeTempDir({ prefix: "multus-systemd-" });
  try {
    const units = join(root, "usr", "lib", "systemd");
    await Deno.mkdir(units, { recursive: true });
    const copy = await new Deno.Command("cp", {
      args: ["-a", "/usr/lib/systemd/system", units],
    }).output();
    assert.ok(copy.success, new TextDecoder().decode(copy.stderr));
    const bin = join(root, execStart[0]);
    await Deno.mkdir(join(bin, ".."), { recursive: true });
    await Deno.writeTextFile(bin, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.mkdir(join(root, "etc", "systemd", "system"), { recursive: true });
    await Deno.writeTextFile(join(root, "etc", "systemd", "system", "multus-daemon.service"), text);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `--root=${root}`, "/etc/systemd/system/multus-daemon.service"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return { code: out.code, stderr: decoder.decode(out.stderr) + decoder.decode(out.stdout) };
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test({
  name: "systemd-analyze verify accepts the unit without a warning",
  ignore: !(await systemdAnalyzeInstalled()),
  async fn() {
    const result = await verify(unitText);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    // The check sees what is wrong: a misspelt key and a bad value are warned about.
    const typo = await verify(
      unitText.replace(/^KillMode=mixed$/m, "KillMode=mixd\nRestrat=always"),
    );
    assert.match(typo.stderr, /Failed to parse kill mode specification, ignoring: mixd/);
    assert.match(typo.stderr, /Unknown key 'Restrat'/);
  },
});

Deno.test("the unit's ExecStart is a command line multus daemon accepts, reading what multus install writes", async () => {
  assert.equal(execStart[0], "/opt/cni/bin/multus", "the binary multus install installs");
  assert.equal(execStart[1], "daemon");
  const args = execStart.slice(2);
  const parsed = parseDaemonArgs(args, { MULTUS_NODE_NAME: "node-1" });
  assert.equal(parsed.nodeName, "node-1");
  // By hand on a node (--host-prefix=), --daemon-config-file lands here.
  const install = parseInstallFlags(["--host-prefix=", "--mode=daemon"]);
  assert.equal(parsed.configFile, `${install.cniConfDir}/multus.d/daemon-config.json`);

  // The real binary takes these flags (--help after them: parsed, then nothing started).
  const run = await new Deno.Command(join(REPO_ROOT, "scripts", "dev-multus"), {
    args: ["daemon", ...args, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(run.code, 0, decoder.decode(run.stderr));
  assert.match(decoder.decode(run.stdout), /^multus daemon: serves CNI requests/);
  // And refuses a flag it does not know, so the check above can fail.
  const bad = await new Deno.Command(join(REPO_ROOT, "scripts", "dev-multus"), {
    args: ["daemon", ...args, "--confg=/x", "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);

  assert.deepEqual(service.get("Environment"), ["MULTUS_NODE_NAME=%H"]);
  assert.deepEqual(service.get("EnvironmentFile"), ["-/etc/default/multus-daemon"]);
  assert.equal(value("Restart"), "always");
  assert.equal(value("KillSignal"), "SIGTERM");
  assert.equal(value("KillMode"), "mixed", "running delegates are not killed with the daemon");
});

Deno.test("the shipped daemon-config.json loads cleanly, on the shim's socket, within the stop timeout", async () => {
  const config = parseDaemonConfig(await Deno.readTextFile(CONFIG_FILE), {
    file: CONFIG_FILE,
    nodeName: "node-1",
  });
  assert.deepEqual(config.warnings, []);
  const install = parseInstallFlags(["--host-prefix=", "--mode=daemon"]);
  assert.equal(`${config.socketDir}/`, install.daemonSocketDir);
  assert.equal(config.chrootDir, "", "on the host, delegates need no chroot");
  // The daemon's own API credentials: the kubeconfig multus install writes on the node.
  assert.equal(
    JSON.parse(config.overlay.kubeconfig.text),
    install.multusKubeconfigFileHost,
  );
  assert.ok(Number(value("TimeoutStopSec")) > config.shutdownGraceSeconds);
  assert.match(value("MemoryMax")!, /^\d+M$/);
  assert.ok(
    Number(value("MemoryMax")!.slice(0, -1)) >= 200 + config.maxParallelRequests * 16,
    "memory for the daemon and its delegates at once",
  );
});
