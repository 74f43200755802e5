/**
 * The daemon's lifecycle as a node sees it: SIGTERM drains (the request in flight finishes,
 * readyz turns 500, new requests go to the shims, the socket goes away, exit 0), a stale
 * socket is replaced at start, a live one is refused, and a bad command line or
 * configuration stops it with a message naming the file and the key.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { exists } from "../../src/util/exists.ts";
import {
  cniBody,
  containerId,
  daemonRun,
  fallbackRecord,
  hold,
  makeNode,
  podNetns,
  shimCall,
  shimConf,
  socketRequest,
  startDaemon,
  stopDaemon,
  waitForStart,
} from "./_helpers.ts";

Deno.test("SIGTERM drains: the ADD in flight finishes, readyz is 500, new requests go to the shims, the socket is removed", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node);
  try {
    const slowNs = await podNetns(node);
    const slow = { ns: slowNs, containerId: containerId() };
    const release = await hold(node, slow.containerId);
    const inFlight = shimCall(node, "ADD", slow);
    await waitForStart(node, slow.containerId, inFlight);

    daemon.kill("SIGTERM");
    for (;;) {
      const ready = await socketRequest(node.socketPath, "GET", "/readyz");
      if (ready.status === 500) break;
      assert.equal(ready.status, 200);
    }
    assert.equal((await socketRequest(node.socketPath, "GET", "/healthz")).status, 200);

    // A new request is not run by the draining daemon...
    const env = {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: containerId(),
      CNI_NETNS: slowNs.path,
      CNI_IFNAME: "eth1",
      CNI_PATH: "/usr/lib/cni",
    };
    const refused = await socketRequest(
      node.socketPath,
      "POST",
      "/cni",
      cniBody(env, shimConf(node)),
    );
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("x-multus-fallback"), "draining");
    assert.equal(JSON.parse(refused.text).code, 11);
    // ...and our shim runs it itself: the pod still starts.
    const otherNs = await podNetns(node);
    const other = { ns: otherNs, containerId: containerId() };
    const viaShim = await shimCall(node, "ADD", other);
    assert.equal(viaShim.code, 0, viaShim.stdout + viaShim.stderr);
    assert.equal((await otherNs.ipv4("eth0")).length, 1);
    assert.match(viaShim.stderr, /draining/);
    assert.deepEqual((await fallbackRecord(node)).map((r) => [r.command, r.reason]), [
      ["ADD", "draining"],
    ]);

    // The ADD that was running when SIGTERM came finishes and is answered.
    await release();
    const done = await inFlight;
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.equal((await slowNs.ipv4("eth0")).length, 1);

    const end = await daemon.exited;
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stderr, /stopped/);
    assert.equal(
      await exists(node.socketPath, { followLinks: false }),
      false,
      "the socket is removed",
    );

    for (const pod of [slow, other]) {
      const del = await shimCall(node, "DEL", pod);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.equal(await pod.ns.link("eth0"), undefined);
    }
  } finally {
    daemon.kill("SIGKILL");
    await node.cleanup();
  }
});

Deno.test("a stale socket left by a killed daemon is replaced at start", async () => {
  const node = await makeNode();
  const first = await startDaemon(node);
  first.kill("SIGKILL");
  await first.exited;
  assert.equal(
    await exists(node.socketPath, { followLinks: false }),
    true,
    "SIGKILL leaves the socket file",
  );
  const second = await startDaemon(node);
  try {
    const ns = await podNetns(node);
    const pod = { ns, containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await fallbackRecord(node), [], "the new daemon ran it");
    assert.equal((await shimCall(node, "DEL", pod)).code, 0);
  } finally {
    await stopDaemon(second);
    await node.cleanup();
  }
});

Deno.test("a second daemon on a socket another daemon answers on refuses to start", async () => {
  const node = await makeNode();
  const first = await startDaemon(node);
  try {
    const second = await startDaemon(node, {}, { waitReady: false });
    const end = await second.exited;
    assert.equal(end.code, 1);
    // Ours holds the directory's lock (a daemon without it, such as Multus's, is found by
    // probing the socket: "answers on").
    assert.match(
      end.stderr,
      new RegExp(
        `Another multus daemon \\(pid ${first.pid}\\) holds ${node.socketDir}/multus.lock`,
      ),
    );
    assert.equal((await socketRequest(node.socketPath, "GET", "/readyz")).status, 200);
  } finally {
    await stopDaemon(first);
    await node.cleanup();
  }
});

Deno.test("a file in the socket's place that is not a socket stops the daemon with a message", async () => {
  const node = await makeNode();
  try {
    await Deno.mkdir(node.socketDir, { recursive: true });
    await Deno.writeTextFile(node.socketPath, "not a socket");
    const daemon = await startDaemon(node, {}, { waitReady: false });
    const end = await daemon.exited;
    assert.equal(end.code, 1);
    assert.match(end.stderr, /exists and is not a socket/);
    assert.equal(await Deno.readTextFile(node.socketPath), "not a socket", "left alone");
  } finally {
    await node.cleanup();
  }
});

Deno.test("bad command lines and configurations stop the daemon naming the file and the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-daemon-conf-" });
  try {
    const missing = join(dir, "missing.json");
    const gone = await daemonRun(["-config", missing]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`Cannot read the daemon configuration ${missing}`));
    assert.doesNotMatch(gone.stderr, /\bat .*\.ts:\d+/, "no stack trace");

    const wrongType = join(dir, "wrong-type.json");
    await Deno.writeTextFile(wrongType, JSON.stringify({ MaxParallelRequests: "8" }));
    const typed = await daemonRun([`-config=${wrongType}`]);
    assert.equal(typed.code, 1);
    assert.match(
      typed.stderr,
      new RegExp(`${wrongType}: "MaxParallelRequests" must be an integer, got the string "8"`),
    );

    const badNetconf = join(dir, "bad-netconf.json");
    await Deno.writeTextFile(
      badNetconf,
      JSON.stringify({ delegates: [{ cniVersion: "1.0.0", name: "x", type: "../evil" }] }),
    );
    const netconf = await daemonRun(["--config", badNetconf]);
    assert.equal(netconf.code, 1);
    assert.match(netconf.stderr, new RegExp(`${badNetconf}: .*delegates\\[0\\]`));

    const notJson = join(dir, "broken.json");
    await Deno.writeTextFile(notJson, '{"socketDir": ');
    const broken = await daemonRun(["--config", notJson]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, new RegExp(`Cannot parse the daemon configuration ${notJson}`));

    const flag = await daemonRun(["--bogus"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'/);

    const help = await daemonRun(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /maxParallelRequests/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keys the daemon does not apply are said at start; the node name comes from MULTUS_NODE_NAME", async () => {
  const node = await makeNode();
  const daemon = await startDaemon(node, {
    multusConfigFile: "auto",
    someTypo: true,
  }, { env: { MULTUS_NODE_NAME: "worker-7" } });
  try {
    // The daemon serves; its warnings are in its log.
  } finally {
    const end = await stopDaemon(daemon);
    assert.equal(end.code, 0);
    assert.match(end.stderr, /"multusConfigFile" is not used by the daemon/);
    assert.match(end.stderr, /unknown key "someTypo"/);
    assert.match(end.stderr, /serving .*, node worker-7/);
    await node.cleanup();
  }
});
