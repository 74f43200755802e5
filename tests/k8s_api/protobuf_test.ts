/**
 * @module
 * The test API server reads client-go's protobuf bodies (Go Multus's thin plugin writes its
 * pod status and events that way): a status PUT and an event POST encoded as client-go
 * encodes them, sent over TLS, change what a JSON client then reads; a body that is not a
 * kube protobuf envelope gets a 400 as bad JSON does.
 */

import assert from "node:assert/strict";
import { startTestApiServer } from "./server.ts";
import { KUBE_PROTOBUF } from "./protobuf.ts";

/** A minimal protobuf writer: strings, varints and embedded messages by field number. */
type Field = [number, string | number | Uint8Array];

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function message(...fields: Field[]): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  for (const [n, value] of fields) {
    if (typeof value === "number") {
      out.push(...varint(n << 3), ...varint(value));
      continue;
    }
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    out.push(...varint((n << 3) | 2), ...varint(bytes.length), ...bytes);
  }
  return new Uint8Array(out);
}

const mapEntry = (key: string, value: string) => message([1, key], [2, value]);

/** `k8s\0` + runtime.Unknown{typeMeta, raw}, as client-go's protobuf serializer writes. */
function envelope(apiVersion: string, kind: string, raw: Uint8Array): Uint8Array<ArrayBuffer> {
  const unknown = message([1, message([1, apiVersion], [2, kind])], [2, raw], [3, ""], [4, ""]);
  return new Uint8Array([0x6b, 0x38, 0x73, 0x00, ...unknown]);
}

Deno.test("a protobuf status PUT and event POST are read as their JSON would be", async () => {
  const server = await startTestApiServer({
    pods: [{
      metadata: { name: "web", namespace: "default", uid: "uid-1", annotations: { a: "1" } },
      spec: { nodeName: "node-1" },
    }],
  });
  const client = Deno.createHttpClient({ caCerts: [server.caPem] });
  const send = async (
    method: string,
    path: string,
    body: Uint8Array<ArrayBuffer>,
    type = KUBE_PROTOBUF,
  ) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      client,
      headers: {
        Authorization: `Bearer ${server.token}`,
        "Content-Type": type,
        Accept: "application/json",
      },
      body,
    });
    return { status: res.status, body: await res.json() };
  };
  try {
    const rv = server.getPod("default", "web")!.metadata.resourceVersion!;
    const pod = message(
      [
        1,
        message(
          [1, "web"],
          [3, "default"],
          [5, "uid-1"],
          [6, rv],
          [11, mapEntry("app", "web")],
          [12, mapEntry("a", "1")],
          [12, mapEntry("k8s.v1.cni.cncf.io/network-status", '[{"name":"net"}]')],
        ),
      ],
      [2, message([10, "node-1"])],
      [3, message([1, "Running"], [6, "10.0.0.7"])],
    );
    const put = await send(
      "PUT",
      "/api/v1/namespaces/default/pods/web/status",
      envelope("v1", "Pod", pod),
    );
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const stored = server.getPod("default", "web")!;
    assert.deepEqual(stored.metadata.annotations, {
      a: "1",
      "k8s.v1.cni.cncf.io/network-status": '[{"name":"net"}]',
    });
    assert.deepEqual(stored.metadata.labels, { app: "web" });
    assert.equal((stored.status as { podIP?: string }).podIP, "10.0.0.7");
    assert.equal(stored.spec?.nodeName, "node-1", "a status write keeps the spec");

    // The same resourceVersion again is stale now: the precondition is read from protobuf too.
    const stale = await send(
      "PUT",
      "/api/v1/namespaces/default/pods/web/status",
      envelope("v1", "Pod", pod),
    );
    assert.equal(stale.status, 409);

    const event = message(
      [1, message([1, "web.1"], [3, "default"])],
      [2, message([1, "Pod"], [2, "default"], [3, "web"], [4, "uid-1"], [5, "v1"])],
      [3, "AddedInterface"],
      [4, "Add eth0 [10.0.0.7/24] from net"],
      [5, message([1, "multus"])],
      [8, 1],
      [9, "Normal"],
    );
    const post = await send(
      "POST",
      "/api/v1/namespaces/default/events",
      envelope("v1", "Event", event),
    );
    assert.equal(post.status, 201, JSON.stringify(post.body));
    const [posted] = server.events();
    assert.equal(posted.reason, "AddedInterface");
    assert.equal(posted.message, "Add eth0 [10.0.0.7/24] from net");
    assert.equal(posted.type, "Normal");
    assert.equal(posted.count, 1);
    assert.deepEqual(posted.involvedObject, {
      kind: "Pod",
      namespace: "default",
      name: "web",
      uid: "uid-1",
      apiVersion: "v1",
    });
    const logged = server.requests().find((r) => r.path.endsWith("/events"));
    assert.equal(logged?.contentType, KUBE_PROTOBUF);

    const garbage = await send(
      "PUT",
      "/api/v1/namespaces/default/pods/web/status",
      new Uint8Array([1, 2, 3, 4, 5]),
    );
    assert.equal(garbage.status, 400);
  } finally {
    client.close();
    await server.close();
  }
});
