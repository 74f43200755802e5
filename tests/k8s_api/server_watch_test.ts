/**
 * The test API server's lists, watches and resource.k8s.io objects, read with plain `fetch`
 * over TLS as any client would, and its transport (HTTP/2 by ALPN, HTTP/1.1 otherwise).
 */

import assert from "node:assert/strict";
import { startTestApiServer, type TestApiServer } from "./server.ts";
import type { Pod } from "../../src/k8s/types.ts";

const POD_LIST = "/api/v1/pods";
const NAD_LIST = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";

function pod(name: string, node: string, namespace = "default"): Pod {
  return { metadata: { name, namespace, annotations: { a: "1" } }, spec: { nodeName: node } };
}

interface Line {
  type: string;
  object: {
    kind?: string;
    metadata: { name?: string; resourceVersion?: string };
    code?: number;
    reason?: string;
    message?: string;
  };
}

/** What the tests read of an answer: a list, an object or a Status. */
interface Body {
  kind?: string;
  apiVersion?: string;
  metadata: { name: string; resourceVersion?: string };
  items: { kind?: string; metadata: { name: string } }[];
  message?: string;
  reason?: string;
}

/** A watch read line by line; `next()` fails the test if nothing comes within 5 s. */
interface WatchReader {
  status: number;
  next(): Promise<Line | "end" | "error">;
  close(): Promise<void>;
}

interface Ctx {
  api: TestApiServer;
  /** An HTTP/2 client for the server. */
  client: Deno.HttpClient;
  get(path: string, options?: { http1?: boolean }): Promise<{ status: number; body: Body }>;
  watch(path: string, options?: { http1?: boolean }): Promise<WatchReader>;
}

async function withServer(fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const api = await startTestApiServer({
    pods: [pod("a", "node-1"), pod("b", "node-2"), pod("c", "node-1", "other")],
    nads: [
      { metadata: { name: "n1", namespace: "default" }, spec: { config: "{}" } },
      { metadata: { name: "n2", namespace: "other" }, spec: { config: "{}" } },
    ],
  });
  const h2 = Deno.createHttpClient({ caCerts: [api.caPem] });
  const h1 = Deno.createHttpClient({ caCerts: [api.caPem], http2: false });
  const readers: WatchReader[] = [];
  const headers = () => ({ Authorization: `Bearer ${api.token}` });
  try {
    await fn({
      api,
      client: h2,
      async get(path, options = {}) {
        const res = await fetch(`${api.url}${path}`, {
          headers: headers(),
          client: options.http1 ? h1 : h2,
        });
        return { status: res.status, body: await res.json() };
      },
      async watch(path, options = {}) {
        const res = await fetch(`${api.url}${path}`, {
          headers: headers(),
          client: options.http1 ? h1 : h2,
        });
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let ended = false;
        const watch: WatchReader = {
          status: res.status,
          async next() {
            const deadline = AbortSignal.timeout(5000);
            while (!buffer.includes("\n")) {
              if (ended) return "end";
              const read = reader.read().then(
                (r) => r,
                () => "error" as const,
              );
              const timeout = new Promise<"timeout">((resolve) =>
                deadline.addEventListener("abort", () => resolve("timeout"), { once: true })
              );
              const result = await Promise.race([read, timeout]);
              if (result === "timeout") throw new Error("no watch event within 5 s");
              if (result === "error") {
                ended = true;
                return "error";
              }
              if (result.done) {
                ended = true;
                if (!buffer.includes("\n")) return "end";
                break;
              }
              buffer += decoder.decode(result.value, { stream: true });
            }
            const at = buffer.indexOf("\n");
            const line = buffer.slice(0, at);
            buffer = buffer.slice(at + 1);
            return JSON.parse(line) as Line;
          },
          async close() {
            await reader.cancel().catch(() => {});
          },
        };
        readers.push(watch);
        return watch;
      },
    });
  } finally {
    for (const reader of readers) await reader.close();
    h2.close();
    h1.close();
    await api.close();
  }
}

function names(body: Body): string[] {
  return body.items.map((i) => i.metadata.name);
}

function summary(line: Line | "end" | "error"): string {
  if (typeof line === "string") return line;
  if (line.type === "ERROR") return `ERROR ${line.object.code} ${line.object.reason}`;
  if (line.type === "BOOKMARK") return `BOOKMARK ${line.object.metadata.resourceVersion}`;
  return `${line.type} ${line.object.metadata.name}`;
}

Deno.test("test API server speaks HTTP/2 by ALPN and HTTP/1.1 to clients without it", async () => {
  await withServer(async ({ api, get }) => {
    assert.equal((await get("/api/v1/namespaces/default/pods/a")).status, 200);
    assert.equal((await get("/api/v1/namespaces/default/pods/a", { http1: true })).status, 200);
    assert.deepEqual(api.requests().map((r) => [r.httpVersion, r.auth, r.verb]), [
      ["2.0", "token", "get"],
      ["1.1", "token", "get"],
    ]);
  });
});

Deno.test("test API server lists pods with a resourceVersion, by namespace and node", async () => {
  await withServer(async ({ api, get }) => {
    let res = await get(POD_LIST);
    assert.equal(res.status, 200);
    assert.equal(res.body.kind, "PodList");
    assert.equal(res.body.metadata.resourceVersion, api.resourceVersion());
    assert.deepEqual(names(res.body), ["a", "b", "c"]);
    assert.equal(res.body.items[0].kind, undefined, "built-in list items carry no kind");
    res = await get(`${POD_LIST}?fieldSelector=${encodeURIComponent("spec.nodeName=node-1")}`);
    assert.deepEqual(names(res.body), ["a", "c"]);
    res = await get("/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dnode-1");
    assert.deepEqual(names(res.body), ["a"]);
    res = await get(`${POD_LIST}?fieldSelector=spec.nodeName!%3Dnode-1`);
    assert.deepEqual(names(res.body), ["b"]);
    res = await get(`${POD_LIST}?fieldSelector=spec.bogus%3Dx`);
    assert.equal(res.status, 400);
    assert.equal(res.body.message, "field label not supported: spec.bogus");
    assert.deepEqual(
      api.requests().map((r) => `${r.verb} ${r.path}?${r.query}`).slice(0, 2),
      [
        "list /api/v1/pods?",
        "list /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1",
      ],
    );
  });
});

Deno.test("test API server lists NADs in all namespaces or one, keeping their kind", async () => {
  await withServer(async ({ get }) => {
    let res = await get(NAD_LIST);
    assert.equal(res.body.kind, "NetworkAttachmentDefinitionList");
    assert.deepEqual(names(res.body), ["n1", "n2"]);
    assert.equal(res.body.items[0].kind, "NetworkAttachmentDefinition");
    res = await get("/apis/k8s.cni.cncf.io/v1/namespaces/other/network-attachment-definitions");
    assert.deepEqual(names(res.body), ["n2"]);
  });
});

Deno.test("test API server watch without resourceVersion starts with ADDED for each object", async () => {
  await withServer(async ({ api, watch }) => {
    const w = await watch(`${POD_LIST}?watch=1&fieldSelector=spec.nodeName%3Dnode-1`);
    assert.equal(w.status, 200);
    assert.deepEqual([summary(await w.next()), summary(await w.next())], ["ADDED a", "ADDED c"]);
    api.setPod(pod("d", "node-1"));
    api.setPod(pod("e", "node-2"));
    api.deletePod("default", "a");
    assert.deepEqual([summary(await w.next()), summary(await w.next())], [
      "ADDED d",
      "DELETED a",
    ]);
    assert.equal(api.requests()[0].verb, "watch");
  });
});

Deno.test("test API server watch from a resourceVersion replays later writes, then follows", async () => {
  await withServer(async ({ api, watch }) => {
    const from = api.resourceVersion();
    const added = api.setPod(pod("d", "node-1"));
    assert.equal(added.metadata.resourceVersion, String(Number(from) + 1));
    const w = await watch(`${POD_LIST}?watch=1&resourceVersion=${from}`);
    const first = await w.next();
    assert.equal(summary(first), "ADDED d");
    assert.equal((first as Line).object.kind, "Pod", "watch objects carry their kind");
    assert.equal((first as Line).object.metadata.resourceVersion, added.metadata.resourceVersion);
    api.setPod(pod("d", "node-1"));
    assert.equal(summary(await w.next()), "MODIFIED d");
  });
});

Deno.test("test API server watch sees objects enter and leave a field selection", async () => {
  await withServer(async ({ api, watch }) => {
    const w = await watch(
      `${POD_LIST}?watch=1&resourceVersion=${api.resourceVersion()}&fieldSelector=spec.nodeName%3Dnode-1`,
    );
    api.setPod(pod("b", "node-1")); // from node-2: enters
    api.setPod(pod("a", "node-2")); // leaves
    const entered = await w.next();
    const left = await w.next();
    assert.deepEqual([summary(entered), summary(left)], ["ADDED b", "DELETED a"]);
    assert.equal(
      (left as Line).object.metadata.resourceVersion,
      api.resourceVersion(),
      "the DELETED object carries the version of the write",
    );
  });
});

Deno.test("test API server status writes through the API are MODIFIED events", async () => {
  await withServer(async ({ api, client, watch }) => {
    const w = await watch(
      `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${api.resourceVersion()}`,
    );
    const res = await fetch(`${api.url}/api/v1/namespaces/default/pods/a/status`, {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${api.token}`,
        "Content-Type": "application/merge-patch+json",
      },
      body: JSON.stringify({ metadata: { annotations: { b: "2" } } }),
      client,
    });
    const patched = await res.json();
    const event = await w.next();
    assert.equal(summary(event), "MODIFIED a");
    assert.equal((event as Line).object.metadata.resourceVersion, patched.metadata.resourceVersion);
    assert.deepEqual(api.requests().map((r) => r.verb), ["watch", "patch"]);
  });
});

Deno.test("test API server sends bookmarks only to watches that allow them", async () => {
  await withServer(async ({ api, watch }) => {
    const rv = api.resourceVersion();
    const plain = await watch(`${NAD_LIST}?watch=1&resourceVersion=${rv}`);
    const marked = await watch(
      `${NAD_LIST}?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true`,
    );
    api.setPod(pod("x", "node-9")); // a write elsewhere moves the global resourceVersion
    assert.equal(api.sendBookmark(), 1);
    const bookmark = await marked.next();
    assert.equal(summary(bookmark), `BOOKMARK ${api.resourceVersion()}`);
    assert.equal((bookmark as Line).object.kind, "NetworkAttachmentDefinition");
    api.setNad({ metadata: { name: "n3", namespace: "default" }, spec: { config: "{}" } });
    assert.equal(summary(await plain.next()), "ADDED n3", "no bookmark came before it");
  });
});

Deno.test("test API server answers 410 Gone to a watch or list from before the history", async () => {
  await withServer(async ({ api, get, watch }) => {
    const old = api.resourceVersion();
    api.setPod(pod("d", "node-1"));
    api.compactHistory();
    const w = await watch(`${POD_LIST}?watch=1&resourceVersion=${old}`);
    assert.equal(w.status, 200, "a watch gets its 410 as an ERROR event");
    const error = await w.next();
    assert.equal(summary(error), "ERROR 410 Expired");
    assert.equal(
      (error as Line).object.message,
      `too old resource version: ${old} (${api.resourceVersion()})`,
    );
    assert.equal(await w.next(), "end");
    const list = await get(`${POD_LIST}?resourceVersion=${old}`);
    assert.equal(list.status, 410);
    assert.equal(list.body.reason, "Expired");
    assert.equal((await get(`${POD_LIST}?resourceVersion=${api.resourceVersion()}`)).status, 200);
    const current = await watch(`${POD_LIST}?watch=1&resourceVersion=${api.resourceVersion()}`);
    api.setPod(pod("e", "node-1"));
    assert.equal(summary(await current.next()), "ADDED e");
  });
});

Deno.test("test API server keeps a bounded history", async () => {
  const api = await startTestApiServer({ historyLimit: 3 });
  const client = Deno.createHttpClient({ caCerts: [api.caPem] });
  try {
    const start = api.resourceVersion();
    for (let i = 0; i < 5; i++) api.setPod(pod(`p${i}`, "node-1"));
    const res = await fetch(`${api.url}${POD_LIST}?watch=1&resourceVersion=${start}`, {
      headers: { Authorization: `Bearer ${api.token}` },
      client,
    });
    const text = await res.text();
    assert.match(text, /"code":410/);
  } finally {
    client.close();
    await api.close();
  }
});

Deno.test("test API server ends a watch at timeoutSeconds, cleanly", async () => {
  await withServer(async ({ api, watch }) => {
    const w = await watch(
      `${POD_LIST}?watch=1&resourceVersion=${api.resourceVersion()}&timeoutSeconds=1`,
    );
    assert.equal(api.openWatches(), 1);
    assert.equal(await w.next(), "end");
    assert.equal(api.openWatches(), 0);
  });
});

Deno.test("test API server drops watches: reset is an error to the client, end is not", async () => {
  for (const http1 of [false, true]) {
    await withServer(async ({ api, watch }) => {
      const rv = api.resourceVersion();
      const a = await watch(`${POD_LIST}?watch=1&resourceVersion=${rv}`, { http1 });
      const b = await watch(`${NAD_LIST}?watch=1&resourceVersion=${rv}`, { http1 });
      assert.equal(api.openWatches(), 2);
      assert.equal(api.dropWatches(), 2);
      assert.deepEqual([await a.next(), await b.next()], ["error", "error"], `http1 ${http1}`);
      assert.equal(api.openWatches(), 0);
      const c = await watch(`${POD_LIST}?watch=1&resourceVersion=${rv}`, { http1 });
      assert.equal(api.dropWatches("end"), 1);
      assert.equal(await c.next(), "end");
    });
  }
});

Deno.test("test API server holds watch events back with setWatchLatency(), in order", async () => {
  await withServer(async ({ api, watch }) => {
    const rv = api.resourceVersion();
    const held = await watch(`${POD_LIST}?watch=1&resourceVersion=${rv}`);
    api.setWatchLatency(60_000);
    api.setPod(pod("d", "node-1"));
    api.dropWatches("end"); // ends before the held event is due: it never left
    assert.equal(await held.next(), "end");

    api.setWatchLatency(0);
    const w = await watch(`${POD_LIST}?watch=1&resourceVersion=${rv}`);
    api.setWatchLatency(100);
    api.setPod(pod("e", "node-1"));
    api.setWatchLatency(0); // a later event without delay still waits for the earlier one
    api.setPod(pod("f", "node-1"));
    assert.deepEqual(
      [summary(await w.next()), summary(await w.next()), summary(await w.next())],
      ["ADDED d", "ADDED e", "ADDED f"],
    );
  });
});

Deno.test("test API server forbids list and watch per verb, at the cluster scope", async () => {
  await withServer(async ({ api, get }) => {
    api.forbid("watch", "pods");
    assert.equal((await get(POD_LIST)).status, 200);
    const res = await get(`${POD_LIST}?watch=true`);
    assert.equal(res.status, 403);
    assert.equal(
      res.body.message,
      `pods is forbidden: User "${api.tokenUser}" cannot watch resource "pods" in API group "" at the cluster scope`,
    );
    api.forbid("list", "network-attachment-definitions");
    const nads = await get(
      "/apis/k8s.cni.cncf.io/v1/namespaces/other/network-attachment-definitions",
    );
    assert.equal(nads.status, 403);
    assert.match(String(nads.body.message), /cannot list resource .* in the namespace "other"$/);
  });
});

Deno.test("test API server serves ResourceClaims and ResourceSlices (resource.k8s.io/v1)", async () => {
  await withServer(async ({ api, get }) => {
    api.setResourceClaim({
      metadata: { name: "gpu", namespace: "default" },
      spec: { devices: { requests: [] } },
      status: { allocation: {} },
    });
    for (
      const [name, node, driver] of [["s1", "node-1", "gpu.example.com"], [
        "s2",
        "node-1",
        "nic.example.com",
      ], ["s3", "node-2", "gpu.example.com"]]
    ) {
      api.setResourceSlice({ metadata: { name }, spec: { nodeName: node, driver } });
    }
    const claim = await get("/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/gpu");
    assert.equal(claim.status, 200);
    assert.equal(claim.body.kind, "ResourceClaim");
    assert.equal(claim.body.apiVersion, "resource.k8s.io/v1");
    const missing = await get("/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/x");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'resourceclaims.resource.k8s.io "x" not found');
    const slices = await get(
      `/apis/resource.k8s.io/v1/resourceslices?fieldSelector=${
        encodeURIComponent("spec.nodeName=node-1,spec.driver=gpu.example.com")
      }`,
    );
    assert.equal(slices.body.kind, "ResourceSliceList");
    assert.deepEqual(names(slices.body), ["s1"]);
    assert.deepEqual(names((await get("/apis/resource.k8s.io/v1/resourceslices")).body), [
      "s1",
      "s2",
      "s3",
    ]);
  });
});
