/**
 * A delegate that leaves a background process holding its stdout: the plugin, run through
 * its launcher, uses what the delegate printed before it exited instead of waiting for the
 * end of the pipe, and names the holder when that output is not a complete result.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  delegatesModeConf,
  makeTestRoot,
  type TestRoot,
  uniqueSuffix,
} from "../helpers/plugin_run.ts";
import { deleteHostLink, listFiles, TestNetns } from "../helpers/netns.ts";

const ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1";

/**
 * Writes `bridge-bg` into the test bin dir: on every command it runs the real bridge plugin
 * (unless `body` replaces it), then leaves `sleep 300` running in the background with the
 * plugin's stdout still open, and records the sleeper's pid in `<dir>/holders`.
 */
async function writeLeakyBridge(
  root: TestRoot,
  body = "/usr/lib/cni/bridge; rc=$?",
): Promise<void> {
  const path = join(root.binDir, "bridge-bg");
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\n${body}\nsleep 300 &\necho $! >> "${root.dir}/holders"\nexit \${rc:-0}\n`,
  );
  await Deno.chmod(path, 0o755);
}

/** Kills the sleepers the stand-in left behind. */
async function killHolders(root: TestRoot): Promise<number[]> {
  const text = await Deno.readTextFile(join(root.dir, "holders")).catch(() => "");
  const pids = text.split("\n").filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  return pids;
}

let subnetCounter = 10 + Math.floor(Math.random() * 100);

function conf(root: TestRoot, bridge: string) {
  return delegatesModeConf(root, [{
    cniVersion: "1.0.0",
    name: "bridge-net",
    type: "bridge-bg",
    bridge,
    ipam: {
      type: "host-local",
      subnet: `10.243.${subnetCounter++}.0/24`,
      dataDir: join(root.dir, "leases"),
    },
  }], {
    logLevel: "error",
    // Short, so that the old behaviour (waiting for the end of stdout) fails the test fast.
    delegateTimeoutSeconds: 30,
  });
}

Deno.test("ADD and DEL go on when a delegate's background child keeps its stdout open", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  try {
    await writeLeakyBridge(root);
    const config = conf(root, bridge);
    const subnet = config.delegates[0].ipam.subnet.replace(".0/24", "");
    const call = { containerId: `ctr-${uniqueSuffix()}`, netns: ns.path, args: ARGS, config };

    const add = await root.run({ command: "ADD", ...call });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(
      (add.json as { ips: { address: string }[] }).ips.map((ip) => ip.address),
      [`${subnet}.2/24`],
    );
    assert.deepEqual(await ns.ipv4("eth0"), [`${subnet}.2/24`]);
    const holders = await Deno.readTextFile(join(root.dir, "holders"));
    const log = await Deno.readTextFile(root.logFile);
    assert.ok(
      log.includes(`process ${holders.trim()} (sleep), which it started, still holds its stdout`),
      log,
    );

    const del = await root.run({ command: "DEL", ...call });
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(await ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(root.cniDir), []);
  } finally {
    await killHolders(root);
    await ns.remove();
    await deleteHostLink(bridge);
    await root.cleanup();
  }
});

Deno.test("an incomplete result with stdout held open fails the ADD naming the holder", async () => {
  const root = await makeTestRoot();
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  try {
    // ADD prints half a result; DEL (the rollback) succeeds without output.
    await writeLeakyBridge(
      root,
      `[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","ips":['; rc=0`,
    );
    const add = await root.run({
      command: "ADD",
      containerId: `ctr-${uniqueSuffix()}`,
      netns: ns.path,
      args: ARGS,
      config: conf(root, bridge),
    });
    const [holder] = (await Deno.readTextFile(join(root.dir, "holders"))).split("\n");
    assert.equal(add.code, 1, add.stdout);
    assert.equal(add.json?.code, 5, add.stdout);
    assert.match(
      String(add.json?.msg),
      new RegExp(
        `plugin "bridge-bg" exited, but process ${holder} \\(sleep\\), which it started, ` +
          `still holds its stdout open, and what the plugin printed before exiting is not a ` +
          `complete result: "\\{"cniVersion":"1\\.0\\.0","ips":\\["`,
      ),
    );
    assert.match(String(add.json?.msg), /bridge-net/);
    assert.match(String(add.json?.details), /rolled back/);
    assert.equal(await ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(root.cniDir), []);
  } finally {
    await killHolders(root);
    await ns.remove();
    await deleteHostLink(bridge);
    await root.cleanup();
  }
});
