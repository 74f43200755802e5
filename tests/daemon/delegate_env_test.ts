/**
 * Delegates the daemon runs get the environment a runtime's plugin run would give them (the
 * request's CNI variables and a PATH), not the daemon's own (its node name, credentials a
 * deployment hands it).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  containerId,
  makeNode,
  type Node,
  podNetns,
  shimCall,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

/** A delegate that writes its environment to `<dir>/env-<command>` and attaches nothing. */
async function envDumpNode(): Promise<{ node: Node; dumpDir: string }> {
  const node = await makeNode({
    extraNetconf: { delegates: [{ cniVersion: "1.0.0", name: "env-net", type: "env-dump" }] },
  });
  const dumpDir = join(node.root.dir, "dumps");
  await Deno.mkdir(dumpDir);
  const plugin = join(node.root.binDir, "env-dump");
  await Deno.writeTextFile(
    plugin,
    `#!/bin/sh
env > "${dumpDir}/env-$CNI_COMMAND"
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"%s"}],"ips":[]}' "$CNI_NETNS"
fi
`,
  );
  await Deno.chmod(plugin, 0o755);
  return { node, dumpDir };
}

async function envOf(file: string): Promise<Map<string, string>> {
  const text = await Deno.readTextFile(file);
  return new Map(
    text.split("\n").filter((l) => l.includes("=")).map((l) => {
      const at = l.indexOf("=");
      return [l.slice(0, at), l.slice(at + 1)];
    }),
  );
}

/** Variables /bin/sh itself adds to what it was given. */
const SHELL_OWN = new Set(["PWD", "OLDPWD", "SHLVL", "_"]);

Deno.test("delegates run by the daemon get the request's CNI variables and PATH, not the daemon's environment", async () => {
  const { node, dumpDir } = await envDumpNode();
  const daemon = await startDaemon(node, {}, {
    env: { MULTUS_NODE_NAME: "worker-1", MULTUS_TEST_SECRET: "s3cr3t-token" },
  });
  try {
    const pod = { ns: await podNetns(node), containerId: containerId(), name: "env-pod" };
    for (const command of ["ADD", "DEL"]) {
      const run = await shimCall(node, command, pod);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.doesNotMatch(run.stderr, /did not run/, "the daemon ran it");
      const env = await envOf(join(dumpDir, `env-${command}`));
      const unexpected = [...env.keys()].filter((k) =>
        !k.startsWith("CNI_") && k !== "PATH" && !SHELL_OWN.has(k)
      );
      assert.deepEqual(unexpected, [], `${command}: the daemon's environment leaked`);
      assert.equal(env.get("CNI_COMMAND"), command);
      assert.equal(env.get("CNI_CONTAINERID"), pod.containerId);
      assert.equal(env.get("CNI_NETNS"), pod.ns.path);
      assert.equal(env.get("CNI_IFNAME"), "eth0");
      assert.match(env.get("CNI_ARGS") ?? "", /K8S_POD_NAME=env-pod/);
      assert.match(env.get("CNI_PATH") ?? "", new RegExp(node.root.binDir));
      assert.equal(env.get("PATH"), Deno.env.get("PATH"), "the daemon's PATH");
    }
  } finally {
    const end = await stopDaemon(daemon);
    assert.equal(end.code, 0, end.stderr);
    await node.cleanup();
  }
});
