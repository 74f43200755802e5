/**
 * One daemon per socket directory: daemons started at the same moment on one socketDir (with a
 * stale socket a killed daemon left, the case where each could replace it) end with exactly
 * one serving; the others say who holds `multus.lock` and exit non-zero. A killed daemon's
 * lock does not stop the next start.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import {
  containerId,
  makeNode,
  type Node,
  podNetns,
  type RunningDaemon,
  shimCall,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

/** A daemon with its own log file, to tell which of several said it serves. */
async function startLogged(node: Node): Promise<{ daemon: RunningDaemon; logFile: string }> {
  const logFile = join(node.root.dir, `daemon-${uniqueSuffix()}.log`);
  const daemon = await startDaemon(node, { logFile }, { waitReady: false, metrics: false });
  return { daemon, logFile };
}

async function readOr(path: string): Promise<string> {
  return await Deno.readTextFile(path).catch(() => "");
}

/** Waits until the daemon says it serves (true) or exits (false). */
async function servesOrExits(d: { daemon: RunningDaemon; logFile: string }): Promise<boolean> {
  let exited = false;
  d.daemon.exited.then(() => exited = true);
  for (;;) {
    if (/daemon: serving /.test(await readOr(d.logFile))) return true;
    if (exited) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A stale socket: what a SIGKILLed daemon leaves (the file, nobody listening). */
async function staleSocket(node: Node): Promise<void> {
  const killed = await startDaemon(node, {}, { metrics: false });
  killed.kill("SIGKILL");
  await killed.exited;
  assert.ok((await Deno.lstat(node.socketPath)).isSocket);
}

Deno.test("daemons started at once on one socket directory: exactly one serves, the others exit naming the lock", async () => {
  const node = await makeNode();
  const started: { daemon: RunningDaemon; logFile: string }[] = [];
  try {
    await staleSocket(node);
    started.push(...await Promise.all([1, 2, 3].map(() => startLogged(node))));
    const serving = await Promise.all(started.map(servesOrExits));
    assert.equal(serving.filter((s) => s).length, 1, `serving: ${serving}`);
    for (const [i, d] of started.entries()) {
      if (serving[i]) continue;
      const end = await d.daemon.exited;
      assert.equal(end.code, 1, end.stderr);
      assert.match(
        end.stderr,
        new RegExp(
          `Another multus daemon \\(pid \\d+\\) holds ${join(node.socketDir, "multus.lock")}`,
        ),
      );
      assert.doesNotMatch(end.stderr, /daemon: serving/);
    }
    // The one that serves answers requests on the socket.
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.doesNotMatch(add.stderr, /did not run ADD/, "the daemon ran it");
    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
  } finally {
    for (const d of started) d.daemon.kill("SIGTERM");
    await Promise.all(started.map((d) => d.daemon.exited));
    await node.cleanup();
  }
});

Deno.test("the lock of a SIGKILLed daemon does not stop the next start", async () => {
  const node = await makeNode();
  try {
    const first = await startDaemon(node, {}, { metrics: false });
    first.kill("SIGKILL");
    await first.exited;
    assert.match(await Deno.readTextFile(join(node.socketDir, "multus.lock")), /^\d+\n$/);
    const second = await startDaemon(node, {}, { metrics: false });
    const end = await stopDaemon(second);
    assert.equal(end.code, 0, end.stderr);
  } finally {
    await node.cleanup();
  }
});
