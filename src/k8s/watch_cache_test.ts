import assert from "node:assert/strict";
import { startTestApiServer, type TestApiServer } from "../../tests/k8s_api/server.ts";
import { realisticNad, realisticPod } from "../../tests/helpers/realistic_objects.ts";
import { KubeClient } from "./client.ts";
import { loadKubeconfig } from "./kubeconfig.ts";
import {
  NAD_RESOURCE,
  type NetworkAttachmentDefinition,
  type Pod,
  POD_RESOURCE,
  trimNad,
  trimPod,
} from "./types.ts";
import { type CacheChange, WatchCache, type WatchCacheOptions } from "./watch_cache.ts";

const NODE = "node-1";
const SELECTOR = `spec.nodeName=${NODE}`;

function pod(name: string, node = NODE, namespace = "shop", index = 0): Pod {
  return realisticPod({ name, namespace, nodeName: node, index });
}

interface Ctx<T extends Pod | NetworkAttachmentDefinition> {
  api: TestApiServer;
  client: KubeClient;
  cache: WatchCache<T>;
  changes: CacheChange<T>[];
  logs: string[];
  /** Waits until `condition` holds (checked on every change and every 10 ms); fails after 10 s. */
  until(condition: () => boolean, what: string): Promise<void>;
}

/** A server with pods on two nodes and NADs in two namespaces, a client, and a cache. */
async function withCache<T extends Pod | NetworkAttachmentDefinition>(
  options: Omit<WatchCacheOptions<T>, "client" | "onChange"> & { start?: boolean },
  fn: (ctx: Ctx<T>) => Promise<void> | void,
  setup: (api: TestApiServer) => void = () => {},
): Promise<void> {
  const api = await startTestApiServer({
    pods: [pod("a", NODE, "shop", 1), pod("b", NODE, "shop", 2), pod("x", "node-2", "shop", 3)],
    nads: [realisticNad("macvlan-conf", "shop", 1), realisticNad("sriov", "kube-system", 2)],
  });
  setup(api);
  const client = new KubeClient(await loadKubeconfig(await api.writeKubeconfig()), {
    requestTimeoutMs: 2000,
    totalTimeoutMs: 4000,
  });
  const changes: CacheChange<T>[] = [];
  const logs: string[] = [];
  let wake = () => {};
  const cache = new WatchCache<T>({
    ...options,
    client,
    onChange: (change) => {
      changes.push(change);
      wake();
    },
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  const until = async (condition: () => boolean, what: string) => {
    const deadline = performance.now() + 10_000;
    while (!condition()) {
      if (performance.now() > deadline) {
        throw new assert.AssertionError({
          message: `timed out waiting for ${what}; stats ${JSON.stringify(cache.stats())}`,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 10);
        function done() {
          clearTimeout(timer);
          wake = () => {};
          resolve();
        }
        wake = done;
      });
    }
  };
  try {
    if (options.start !== false) {
      cache.start();
      assert.equal(await cache.waitForSync({ timeoutMs: 10_000 }), true, "synced");
      await until(() => api.openWatches() === 1 && cache.stats().watching, "the watch open");
    }
    await fn({ api, client, cache, changes, logs, until });
  } finally {
    await cache.stop();
    client.close();
    await api.close();
  }
}

function summary(changes: CacheChange<unknown>[]): string[] {
  return changes.map((c) => `${c.type} ${c.key}${c.fromList ? " (list)" : ""}`);
}

function requestLine(r: { verb?: string; path: string; query?: string }): string {
  return `${r.verb} ${r.path}${r.query ? `?${decodeURIComponent(r.query)}` : ""}`;
}

Deno.test("WatchCache lists the node's pods, then watches from the list's version over HTTP/2", async () => {
  await withCache<Pod>({ resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod }, (
    { api, cache, changes },
  ) => {
    assert.equal(cache.size, 2);
    assert.deepEqual(summary(changes), ["ADDED shop/a (list)", "ADDED shop/b (list)"]);
    const stored = api.getPod("shop", "a")!;
    const cached = cache.get("shop", "a")!;
    assert.deepEqual(cached, trimPod(stored));
    assert.deepEqual(Object.keys(cached.spec!), ["nodeName"], "trimmed: no containers");
    assert.equal(cached.metadata.managedFields, undefined);
    assert.equal(cache.get("shop", "x"), undefined, "another node's pod is not cached");
    const listRv = cache.resourceVersion;
    const requests = api.requests();
    assert.deepEqual(requests.map(requestLine), [
      `list /api/v1/pods?fieldSelector=${SELECTOR}`,
      `watch /api/v1/pods?watch=1&resourceVersion=${listRv}&allowWatchBookmarks=true&fieldSelector=${SELECTOR}&timeoutSeconds=${
        new URLSearchParams(requests[1].query).get("timeoutSeconds")
      }`,
    ]);
    const timeout = Number(new URLSearchParams(requests[1].query).get("timeoutSeconds"));
    assert.ok(timeout >= 300 && timeout < 600, `timeoutSeconds ${timeout} in [300, 600)`);
    assert.deepEqual(requests.map((r) => r.httpVersion), ["2.0", "2.0"]);
    const stats = cache.stats();
    assert.equal(stats.synced, true);
    assert.equal(stats.lists, 1);
  });
});

Deno.test("WatchCache sees pods added, changed (also through the API) and deleted, without a GET", async () => {
  await withCache<Pod>({ resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod }, async (
    { api, client, cache, changes, until },
  ) => {
    changes.length = 0;
    api.setPod(pod("c", NODE, "shop", 4));
    await until(() => cache.get("shop", "c") !== undefined, "pod c");
    const before = cache.get("shop", "a")!;
    await client.setPodAnnotations(before, { "example.com/seen": "yes" });
    await until(
      () => cache.get("shop", "a")?.metadata.annotations?.["example.com/seen"] === "yes",
      "the patched annotation",
    );
    api.deletePod("shop", "b");
    api.setPod(pod("c", "node-2", "shop", 4)); // moved off the node: leaves the selection
    await until(() => cache.size === 1, "b and c gone");
    assert.deepEqual(summary(changes), [
      "ADDED shop/c",
      "MODIFIED shop/a",
      "DELETED shop/b",
      "DELETED shop/c",
    ]);
    assert.equal(changes[1].previous, before, "the change carries the previous object");
    assert.equal(cache.resourceVersion, api.resourceVersion());
    const stats = cache.stats();
    assert.deepEqual([stats.events, stats.relists, stats.reconnects, stats.errors], [4, 0, 0, 0]);
    assert.deepEqual(
      api.requests().map((r) => r.verb),
      ["list", "watch", "patch"],
      "no pod was read with GET",
    );
  });
});

Deno.test("WatchCache keeps NADs of every namespace, trimmed to metadata and spec.config", async () => {
  await withCache<NetworkAttachmentDefinition>(
    { resource: NAD_RESOURCE, trim: trimNad },
    async ({ api, cache, until }) => {
      assert.equal(cache.size, 2);
      const cached = cache.get("kube-system", "sriov")!;
      assert.deepEqual(cached, trimNad(api.getNad("kube-system", "sriov")!));
      assert.equal(cached.metadata.managedFields, undefined);
      const changed = realisticNad("sriov", "kube-system", 9);
      api.setNad(changed);
      await until(
        () => cache.get("kube-system", "sriov")?.spec?.config === changed.spec!.config,
        "the new config",
      );
      api.deleteNad("shop", "macvlan-conf");
      await until(() => cache.get("shop", "macvlan-conf") === undefined, "the NAD deleted");
    },
  );
});

Deno.test("WatchCache moves its resourceVersion on bookmarks and resumes from it", async () => {
  await withCache<Pod>({ resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod }, async (
    { api, cache, until },
  ) => {
    const listed = cache.resourceVersion;
    api.setNad(realisticNad("other", "shop")); // a write the pod watch does not see
    assert.notEqual(api.resourceVersion(), listed);
    assert.equal(api.sendBookmark(), 1);
    await until(() => cache.resourceVersion === api.resourceVersion(), "the bookmark's version");
    assert.equal(cache.stats().bookmarks, 1);
    assert.equal(cache.stats().events, 0);
    const bookmarked = cache.resourceVersion;
    api.dropWatches();
    await until(() => api.openWatches() === 1 && cache.stats().reconnects === 1, "a new watch");
    const watches = api.requests().filter((r) => r.verb === "watch");
    assert.equal(new URLSearchParams(watches[1].query).get("resourceVersion"), bookmarked);
  });
});

Deno.test("WatchCache lists again after 410 Gone and ends with the server's state", async () => {
  await withCache<Pod>({ resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod }, async (
    { api, cache, changes, until },
  ) => {
    changes.length = 0;
    api.setWatchLatency(60_000); // the open watch sees nothing of what follows
    api.setPod(pod("c", NODE, "shop", 4));
    api.deletePod("shop", "a");
    const b = api.getPod("shop", "b")!;
    b.metadata.annotations = { ...b.metadata.annotations, touched: "1" };
    api.setPod(b);
    api.compactHistory();
    api.setWatchLatency(0);
    api.dropWatches();
    await until(() => cache.stats().relists === 1 && cache.stats().watching, "a relist");
    assert.deepEqual(summary(changes), [
      "MODIFIED shop/b (list)",
      "ADDED shop/c (list)",
      "DELETED shop/a (list)",
    ]);
    assert.deepEqual([...cache.values()].map((p) => p.metadata.name).sort(), ["b", "c"]);
    assert.equal(cache.get("shop", "b")?.metadata.annotations?.touched, "1");
    assert.equal(cache.resourceVersion, api.resourceVersion());
    const stats = cache.stats();
    assert.deepEqual([stats.expired, stats.lists, stats.relists], [1, 2, 1]);
    assert.deepEqual(
      api.requests().map((r) => r.verb),
      ["list", "watch", "watch", "list", "watch"],
      "the watch from the old version met 410, then one list",
    );
  });
});

Deno.test("WatchCache reconnects a dropped watch and catches up from its resourceVersion", async () => {
  await withCache<Pod>({ resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod }, async (
    { api, cache, changes, until },
  ) => {
    changes.length = 0;
    api.setWatchLatency(60_000);
    api.setPod(pod("c", NODE, "shop", 4));
    api.deletePod("shop", "a");
    api.setWatchLatency(0);
    assert.equal(api.dropWatches(), 1);
    await until(() => cache.size === 2 && cache.get("shop", "c") !== undefined, "caught up");
    assert.deepEqual(summary(changes), ["ADDED shop/c", "DELETED shop/a"]);
    const stats = cache.stats();
    assert.deepEqual([stats.reconnects, stats.relists, stats.errors], [1, 0, 1]);
    assert.match(
      stats.lastError ?? "",
      /^Cannot watch pods \(fieldSelector "spec.nodeName=node-1"\): the connection to the API server at \S+ broke during the watch/,
    );
  });
});

Deno.test("WatchCache backs off while the server is down, then resumes without a relist", async () => {
  await withCache<Pod>(
    {
      resource: POD_RESOURCE,
      fieldSelector: SELECTOR,
      trim: trimPod,
      backoff: { initialMs: 40, maxMs: 320 },
    },
    async ({ api, cache, logs, until }) => {
      api.inject({ kind: "refuse" });
      api.dropConnections();
      api.setPod(pod("c", NODE, "shop", 4)); // while down
      const refused = () => api.requests().filter((r) => r.fault === "refuse").length;
      await until(() => refused() >= 6, "six refused attempts");
      api.clearFaults();
      await until(() => cache.get("shop", "c") !== undefined, "the pod written while down");
      const delays = logs
        .map((line) => /next attempt in (\d+) ms/.exec(line)?.[1])
        .filter((d) => d !== undefined)
        .map(Number);
      assert.ok(delays.length >= 6, `delays ${delays}`);
      // Each delay lies in [base/2, base], base = 40 ms doubling up to 320 ms.
      delays.forEach((d, i) => {
        const base = Math.min(320, 40 * 2 ** i);
        assert.ok(d >= base / 2 - 1 && d <= base + 1, `delay ${i}: ${d} for base ${base}`);
      });
      const stats = cache.stats();
      assert.equal(stats.relists, 0, "resumed from its resourceVersion");
      assert.ok(stats.errors >= 6 && stats.reconnects >= 6, JSON.stringify(stats));
    },
  );
});

Deno.test("WatchCache counts an oversized event, lists again, and has the object", async () => {
  await withCache<Pod>(
    { resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod, maxEventBytes: 16_384 },
    async ({ api, cache, until }) => {
      const big = pod("c", NODE, "shop", 4);
      big.metadata.annotations = { ...big.metadata.annotations, blob: "x".repeat(20_000) };
      api.setPod(big);
      await until(() => cache.get("shop", "c") !== undefined, "the big pod, from a list");
      const stats = cache.stats();
      assert.deepEqual([stats.oversizedEvents, stats.relists, stats.events], [1, 1, 0]);
      assert.equal(cache.get("shop", "c")?.metadata.annotations?.blob.length, 20_000);
      assert.match(stats.lastError ?? "", /an event longer than 16384 bytes/);
    },
  );
});

Deno.test("WatchCache reconnects a silent watch after the idle timeout", async () => {
  await withCache<Pod>(
    { resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod, idleTimeoutMs: 300 },
    async ({ api, cache, until }) => {
      await until(() => cache.stats().idleTimeouts >= 1 && cache.stats().watching, "a new watch");
      assert.equal(cache.stats().relists, 0);
      assert.match(cache.stats().lastError ?? "", /sent nothing for 300 ms/);
      api.setPod(pod("c", NODE, "shop", 4));
      await until(() => cache.get("shop", "c") !== undefined, "a pod after the reconnect");
    },
  );
});

Deno.test("WatchCache opens a new watch when the server ends one at timeoutSeconds", async () => {
  await withCache<Pod>(
    { resource: POD_RESOURCE, fieldSelector: SELECTOR, trim: trimPod, watchTimeoutSeconds: 1 },
    async ({ cache, until }) => {
      await until(() => cache.stats().reconnects >= 1 && cache.stats().watching, "a new watch");
      const stats = cache.stats();
      assert.deepEqual([stats.errors, stats.relists], [0, 0]);
    },
  );
});

Deno.test("WatchCache keeps going when onChange throws", async () => {
  const api = await startTestApiServer({ pods: [pod("a")] });
  const client = new KubeClient(await loadKubeconfig(await api.writeKubeconfig()));
  const logs: string[] = [];
  const cache = new WatchCache<Pod>({
    client,
    resource: POD_RESOURCE,
    onChange: () => {
      throw new Error("handler bug");
    },
    log: (_level, message) => logs.push(message),
  });
  try {
    cache.start();
    assert.equal(await cache.waitForSync({ timeoutMs: 10_000 }), true);
    api.setPod(pod("b"));
    const deadline = performance.now() + 10_000;
    while (!cache.get("shop", "b") && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(cache.get("shop", "b"));
    assert.ok(
      logs.some((l) => l.includes("the change handler failed on shop/b: Error: handler bug")),
    );
  } finally {
    await cache.stop();
    client.close();
    await api.close();
  }
});

Deno.test("WatchCache.stop() ends an open watch, a backoff, a hanging list and waits for sync", async () => {
  // open watch: covered by every test above; here the states where something else is pending
  await withCache<Pod>(
    {
      resource: POD_RESOURCE,
      fieldSelector: SELECTOR,
      start: false,
      backoff: { initialMs: 60_000 },
    },
    async ({ api, cache, until }) => {
      api.inject({ kind: "status", status: 403, times: 1 }); // not retried by the client
      cache.start();
      const waiting = cache.waitForSync({ timeoutMs: 60_000 });
      await until(() => cache.stats().lastBackoffMs > 0, "a backoff");
      await cache.stop(); // during a 30-60 s backoff
      assert.equal(await waiting, false, "waitForSync() answers false once stopped");
      assert.equal(cache.synced, false);
    },
  );
  await withCache<Pod>(
    { resource: POD_RESOURCE, fieldSelector: SELECTOR, start: false },
    async ({ api, cache, until }) => {
      api.inject({ kind: "hang", path: "/api/v1/pods" });
      cache.start();
      await until(() => api.requests().length === 1, "the hanging list");
      await cache.stop();
      assert.equal(await cache.waitForSync({ timeoutMs: 60_000 }), false);
    },
  );
});

Deno.test("WatchCache.waitForSync() gives up at its deadline or on abort", async () => {
  await withCache<Pod>(
    { resource: POD_RESOURCE, fieldSelector: SELECTOR, start: false },
    async ({ api, cache }) => {
      api.inject({ kind: "hang", path: "/api/v1/pods" });
      cache.start();
      assert.equal(await cache.waitForSync({ timeoutMs: 50 }), false);
      const controller = new AbortController();
      const waiting = cache.waitForSync({ timeoutMs: 60_000, signal: controller.signal });
      controller.abort();
      assert.equal(await waiting, false);
    },
  );
});
