/**
 * `chrootDir`: the daemon runs delegates inside it, as Multus's daemon does, so a daemon in a
 * container runs the host's plugins with the host's view of the filesystem. The test's
 * "host root" is a directory with the system's /usr, /proc, /sys and /run/netns mounted in
 * (in a mount namespace of the daemon's own, so the mounts vanish with it), a marker file and
 * a delegate that exists only there; the lease its host-local IPAM takes lands inside it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { deleteHostLink, listFiles } from "../helpers/netns.ts";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import {
  containerId,
  makeNode,
  type Node,
  podNetns,
  type RunningDaemon,
  shimCall,
  socketRequest,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

/** Mounts the host's directories into the chroot "$1", then runs the rest of the arguments. */
const MOUNT_HOST = `set -e
root="$1"; shift
mount --rbind /usr "$root/usr"
mount --bind /proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /run/netns "$root/run/netns"
exec "$@"`;

/** Runs the daemon in a mount namespace of its own where `root` has the host's mounts. */
function inMountNamespace(root: string): string[] {
  return ["unshare", "-m", "--propagation", "slave", "sh", "-c", MOUNT_HOST, "sh", root];
}

interface ChrootNode {
  node: Node;
  root: string;
  marker: string;
  bridge: string;
}

async function chrootNode(): Promise<ChrootNode> {
  const bridge = `mtcr${uniqueSuffix()}`;
  const node = await makeNode({
    extraNetconf: {
      // The host's paths, as seen from inside the chroot.
      binDir: "/opt/cni/bin",
      delegates: [{
        cniVersion: "1.0.0",
        name: "chroot-net",
        type: "inside-bridge",
        bridge,
        isGateway: true,
        ipam: {
          type: "host-local",
          subnet: `10.242.${10 + Math.floor(Math.random() * 240)}.0/24`,
          dataDir: "/leases",
          routes: [{ dst: "0.0.0.0/0" }],
        },
      }],
    },
  });
  const root = join(node.root.dir, "hostroot");
  for (const dir of ["usr", "proc", "sys", "run/netns", "var", "opt/cni/bin", "leases"]) {
    await Deno.mkdir(join(root, dir), { recursive: true });
  }
  for (const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"]]) {
    await Deno.symlink(target, join(root, link));
  }
  if ((await Deno.lstat("/lib64").catch(() => undefined))?.isSymlink) {
    await Deno.symlink("usr/lib64", join(root, "lib64"));
  }
  await Deno.symlink("/run", join(root, "var", "run"));
  const marker = `inside-${uniqueSuffix()}`;
  await Deno.writeTextFile(join(root, "chroot-marker"), marker);
  // Only inside the chroot: found and run there, or not at all.
  const plugin = join(root, "opt", "cni", "bin", "inside-bridge");
  await Deno.writeTextFile(
    plugin,
    `#!/bin/sh
cat /chroot-marker > "/ran-$CNI_COMMAND"
env > "/env-$CNI_COMMAND"
exec /usr/lib/cni/bridge
`,
  );
  await Deno.chmod(plugin, 0o755);
  const cleanup = node.cleanup;
  node.cleanup = async () => {
    await deleteHostLink(bridge);
    await cleanup();
  };
  return { node, root, marker, bridge };
}

Deno.test("with chrootDir, delegates run inside it: found there, run there, their leases written there", async () => {
  const { node, root, marker } = await chrootNode();
  try {
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const daemon = await startDaemon(node, { chrootDir: root }, {
      wrapper: inMountNamespace(root),
    });
    try {
      const add = await shimCall(node, "ADD", pod);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      assert.doesNotMatch(add.stderr, /did not run/, "the daemon ran it");
      assert.equal(await Deno.readTextFile(join(root, "ran-ADD")), marker);
      assert.equal((await pod.ns.ipv4("eth0")).length, 1);
      const leases = (await listFiles(join(root, "leases"))).filter((f) => /\d+\.\d+$/.test(f));
      assert.equal(leases.length, 1, "host-local's lease is under the chroot");
      const env = await Deno.readTextFile(join(root, "env-ADD"));
      assert.match(env, /^CNI_NETNS=\/var\/run\/netns\/mt-/m, "the host's netns path");
      assert.match(env, /^CNI_PATH=.*:\/opt\/cni\/bin$/m, "binDir as the host names it");

      const del = await shimCall(node, "DEL", pod);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(await Deno.readTextFile(join(root, "ran-DEL")), marker);
      assert.equal(await pod.ns.link("eth0"), undefined);
      assert.deepEqual(
        (await listFiles(join(root, "leases"))).filter((f) => /\d+\.\d+$/.test(f)),
        [],
      );
      assert.deepEqual(await listFiles(node.root.cniDir), []);
    } finally {
      const end = await stopDaemon(daemon);
      assert.equal(end.code, 0, end.stderr);
    }
  } finally {
    await node.cleanup();
  }
});

/** How a daemon expected to refuse to start ended; fails (after stopping it) if it serves. */
async function refusedStart(node: Node, daemon: RunningDaemon) {
  let ended: { code: number; stderr: string } | undefined;
  daemon.exited.then((end) => ended = end);
  for (;;) {
    if (ended) return ended;
    const ready = await socketRequest(node.socketPath, "GET", "/readyz").catch(() => undefined);
    if (ready?.status === 200) {
      const end = await stopDaemon(daemon);
      assert.fail(`the daemon started: ${end.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("chrootDir that is not a directory, or no chroot program, stops the daemon at start saying so", async () => {
  const { node, root } = await chrootNode();
  try {
    const missing = join(node.root.dir, "no-such-root");
    const gone = await startDaemon(node, { chrootDir: missing }, { waitReady: false });
    const end = await refusedStart(node, gone);
    assert.equal(end.code, 1, end.stderr);
    assert.match(end.stderr, new RegExp(`"chrootDir" is ${missing}, which cannot be used`));
    assert.doesNotMatch(end.stderr, /daemon: serving/);

    // Every chroot the daemon could find is hidden in its own mount namespace.
    const hide = `for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -f "$d/chroot" ] && mount --bind /dev/null "$d/chroot"
done
exec "$@"`;
    const noChroot = await startDaemon(node, { chrootDir: root }, {
      waitReady: false,
      wrapper: ["unshare", "-m", "--propagation", "slave", "sh", "-c", hide, "sh"],
    });
    const without = await refusedStart(node, noChroot);
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr, /the chroot program \(coreutils\) is not in PATH/);
  } finally {
    await node.cleanup();
  }
});
