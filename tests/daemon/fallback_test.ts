/**
 * The daemon is never a single point of failure: with the daemon absent, refusing, stuck or
 * silent, the shim runs requests itself from the thin configuration, both paths share the
 * caches (a DEL without the daemon releases what the daemon attached), an ADD the daemon
 * took is never run twice, and every fallback is logged and counted.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { listFiles } from "../helpers/netns.ts";
import {
  containerId,
  fallbackRecord,
  makeNode,
  metricValue,
  type Node,
  podNetns,
  shimCall,
  shimConf,
  startDaemon,
  stopDaemon,
} from "./_helpers.ts";

function leases(node: Node): Promise<string[]> {
  return listFiles(node.leaseDir).then((files) =>
    files.filter((p) => /\d+\.\d+\.\d+\.\d+$/.test(p))
  );
}

Deno.test("with no daemon the shim attaches and releases the pod itself, and the daemon counts it when back", async () => {
  const node = await makeNode();
  try {
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.equal(add.json!.cniVersion, "0.4.0");
    assert.equal((await pod.ns.ipv4("eth0")).length, 1);
    assert.match(
      add.stderr,
      /the multus daemon did not run ADD of pod "default\/.*" \(no-socket: .* does not exist\); running it here with .*thin\.conf/,
    );
    assert.match(await Deno.readTextFile(node.root.logFile), /did not run ADD/);

    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.equal(await pod.ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(node.root.cniDir), []);
    assert.deepEqual(await leases(node), []);
    assert.deepEqual((await fallbackRecord(node)).map((r) => [r.command, r.reason]), [
      ["ADD", "no-socket"],
      ["DEL", "no-socket"],
    ]);

    const daemon = await startDaemon(node);
    try {
      const metrics = await daemon.metrics();
      assert.equal(
        metricValue(metrics, 'multus_shim_fallbacks_total{command="ADD",reason="no-socket"}'),
        1,
      );
      assert.equal(
        metricValue(metrics, 'multus_shim_fallbacks_total{command="DEL",reason="no-socket"}'),
        1,
      );
    } finally {
      const end = await stopDaemon(daemon);
      assert.match(end.stderr, /shims ran 2 request\(s\) themselves/);
    }
  } finally {
    await node.cleanup();
  }
});

Deno.test("a DEL through the shim with the daemon gone releases what the daemon attached", async () => {
  const node = await makeNode();
  try {
    const daemon = await startDaemon(node);
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await fallbackRecord(node), [], "the daemon attached it");
    assert.equal((await leases(node)).length, 1);
    // Killed: the socket file stays, and connecting to it is refused.
    daemon.kill("SIGKILL");
    await daemon.exited;

    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.match(del.stderr, /did not run DEL .*\(refused/);
    assert.equal(await pod.ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(node.root.cniDir), []);
    assert.deepEqual(await leases(node), [], "the lease the daemon took is released");
  } finally {
    await node.cleanup();
  }
});

/**
 * A stand-in for a daemon that is stuck: it accepts connections and, with `takeRequest`,
 * says `100 Continue` and reads the request, but never answers.
 */
async function silentDaemon(node: Node, takeRequest: boolean) {
  await Deno.mkdir(node.socketDir, { recursive: true, mode: 0o700 });
  await Deno.remove(node.socketPath).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: node.socketPath });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      if (!takeRequest) continue;
      (async () => {
        const buf = new Uint8Array(65536);
        await conn.read(buf).catch(() => null);
        await conn.write(new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n")).catch(() => 0);
        while ((await conn.read(buf).catch(() => null)) !== null) { /* keep reading */ }
      })();
    }
  })().catch(() => {});
  return {
    close() {
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      try {
        listener.close();
      } catch { /* closed */ }
    },
  };
}

Deno.test("a daemon that took an ADD and never answers: the ADD is not run again (code 11), a DEL is run by the shim", async () => {
  const node = await makeNode();
  const silent = await silentDaemon(node, true);
  try {
    const conf = shimConf(node, { daemonTimeoutSeconds: 1 });
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod, conf);
    assert.equal(add.code, 1);
    assert.equal(add.json!.code, 11);
    assert.match(String(add.json!.msg), /took ADD of pod .* but did not answer/);
    assert.equal(await pod.ns.link("eth0"), undefined, "the shim did not run the ADD itself");
    assert.deepEqual(await fallbackRecord(node), []);

    // Something attached the pod meanwhile (a thin run); the silent daemon's DEL is redone here.
    silent.close();
    const attached = await shimCall(node, "ADD", pod, conf);
    assert.equal(attached.code, 0, attached.stdout + attached.stderr);
    const stuck = await silentDaemon(node, true);
    try {
      const del = await shimCall(node, "DEL", pod, conf);
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.match(del.stderr, /did not run DEL .*\(no-answer/);
      assert.equal(await pod.ns.link("eth0"), undefined);
      assert.deepEqual(await listFiles(node.root.cniDir), []);
    } finally {
      stuck.close();
    }
  } finally {
    silent.close();
    await node.cleanup();
  }
});

Deno.test("a daemon that accepts connections but never takes the request: the shim runs the ADD itself", async () => {
  const node = await makeNode();
  const stuck = await silentDaemon(node, false);
  try {
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.match(add.stderr, /\(not-accepted/);
    assert.equal((await pod.ns.ipv4("eth0")).length, 1);
    stuck.close();
    const del = await shimCall(node, "DEL", pod);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await listFiles(node.root.cniDir), []);
  } finally {
    stuck.close();
    await node.cleanup();
  }
});

Deno.test("without the daemon and without the thin configuration, ADD fails with code 11 naming the file", async () => {
  const node = await makeNode();
  try {
    const missing = join(node.root.dir, "no-such-thin.conf");
    const pod = { ns: await podNetns(node), containerId: containerId() };
    const add = await shimCall(node, "ADD", pod, shimConf(node, { thinConfig: missing }));
    assert.equal(add.code, 1);
    assert.equal(add.json!.code, 11);
    assert.match(
      String(add.json!.msg),
      new RegExp(
        `did not take it \\(no-socket\\) and the thin configuration ${missing} does not exist`,
      ),
    );
    assert.equal(await pod.ns.link("eth0"), undefined);
  } finally {
    await node.cleanup();
  }
});
