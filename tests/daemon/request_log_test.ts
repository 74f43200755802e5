/**
 * The daemon's own log file as an operator reads it: every line a request causes names the
 * request's container and pod (the daemon serves many pods at once, so a line without them
 * cannot be tied to one), and the file is rotated and compressed while the daemon serves.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { containerId, makeNode, podNetns, shimCall, startDaemon, stopDaemon } from "./_helpers.ts";
import { resultCachePath } from "../../src/cni/result_cache.ts";
import { exists } from "../../src/util/exists.ts";

Deno.test("in the daemon, every line a request logs (delegate runs, a broken result cache on DEL) names its container and pod", async () => {
  const node = await makeNode();
  const daemonLog = join(node.root.dir, "daemon.log");
  const daemon = await startDaemon(node, { logFile: daemonLog, logLevel: "debug" });
  try {
    const ns = await podNetns(node);
    const pod = { ns, containerId: containerId(), name: "logged-pod" };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    // A result cache that is not JSON: DEL goes on without it and says so.
    const cache = resultCachePath(node.root.cniDir, {
      networkName: "slow-net",
      containerId: pod.containerId,
      ifName: "eth0",
    });
    await Deno.writeTextFile(cache, "{not json");
    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);

    const lines = (await Deno.readTextFile(daemonLog)).split("\n").filter(Boolean);
    const fields = `container=${pod.containerId.slice(0, 12)} pod=default/logged-pod `;
    const requestLines = lines.filter((l) => !/^\S+ \[\w+\] daemon[: ]/.test(l));
    assert.ok(
      requestLines.some((l) => /running plugin "slow-bridge" \(ADD\)/.test(l)),
      `the delegate's ADD is logged:\n${lines.join("\n")}`,
    );
    const cacheLine = requestLines.find((l) => l.includes("ignoring the result cache file"));
    assert.ok(cacheLine, `the broken cache is logged:\n${lines.join("\n")}`);
    const unnamed = requestLines.filter((l) => !l.includes(fields));
    assert.deepEqual(unnamed, [], `lines without "${fields}"`);
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});

/** Numbered log lines of about `size` bytes, so a wrong or cut copy shows. */
function logText(size: number): string {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = `2026-01-01T00:00:00.000Z [debug] container=ctr-old line ${i}\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join("");
}

/** Waits for `done`; fails (instead of hanging) when it is not reached within two minutes. */
async function until(done: () => Promise<boolean>, what: string): Promise<void> {
  const giveUp = Date.now() + 120_000;
  while (!(await done())) {
    if (Date.now() > giveUp) throw new Error(`never ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function gunzip(path: string): Promise<string> {
  const file = await Deno.open(path);
  let out = "";
  const text = file.readable.pipeThrough(new DecompressionStream("gzip"))
    .pipeThrough(new TextDecoderStream());
  for await (const part of text) out += part;
  return out;
}

Deno.test("the daemon compresses its rotated log in the background and serves requests meanwhile", async () => {
  const node = await makeNode();
  const dir = join(node.root.dir, "daemon-logs");
  await Deno.mkdir(dir);
  const daemonLog = join(dir, "daemon.log");
  // Full already: the daemon's first line rotates it.
  const old = logText(4 * 1024 * 1024 + 10);
  await Deno.writeTextFile(daemonLog, old);
  const daemon = await startDaemon(node, {
    logFile: daemonLog,
    logLevel: "debug",
    logOptions: { maxSize: 4 },
  });
  try {
    const ns = await podNetns(node);
    const pod = { ns, containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);

    const backups = async () =>
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) =>
        n !== "daemon.log"
      ).sort();
    const made = (await backups()).find((n) => /^daemon-.*\.log(\.gz)?$/.test(n));
    assert.ok(made, `rotated: ${await backups()}`);
    const gz = join(dir, made.endsWith(".gz") ? made : `${made}.gz`);
    // Done when only the .gz is left (the rename to .gz comes before the original's removal).
    await until(async () => (await backups()).length === 1 && await exists(gz), "compressed");
    assert.deepEqual(await backups(), [gz.slice(dir.length + 1)], "no uncompressed backup");
    assert.equal(await gunzip(gz), old, "the .gz holds the rotated log");
    const text = await Deno.readTextFile(daemonLog);
    assert.match(text, new RegExp(`container=${pod.containerId.slice(0, 12)} `));
  } finally {
    await stopDaemon(daemon);
    await node.cleanup();
  }
});
