import assert from "node:assert/strict";
import { startTestApiServer } from "../../tests/k8s_api/server.ts";
import { KubeClient } from "../k8s/client.ts";
import { loadKubeconfig } from "../k8s/kubeconfig.ts";
import type { CacheChange } from "../k8s/watch_cache.ts";
import type { Pod } from "../k8s/types.ts";
import { DaemonKubeCaches } from "./kube_caches.ts";

const NODE = "node-1";

async function withCaches(
  nodeName: string,
  fn: (ctx: {
    caches: DaemonKubeCaches;
    api: Awaited<ReturnType<typeof startTestApiServer>>;
    logs: string[];
  }) => Promise<void>,
): Promise<void> {
  const api = await startTestApiServer({
    pods: [
      { metadata: { name: "web", namespace: "shop", uid: "u-web" }, spec: { nodeName: NODE } },
      { metadata: { name: "far", namespace: "shop", uid: "u-far" }, spec: { nodeName: "node-2" } },
    ],
    nads: [{ metadata: { name: "mv", namespace: "shop" }, spec: { config: "{}" } }],
  });
  const client = new KubeClient(await loadKubeconfig(await api.writeKubeconfig()), {
    requestTimeoutMs: 2000,
    totalTimeoutMs: 4000,
  });
  const logs: string[] = [];
  const caches = new DaemonKubeCaches({
    client,
    nodeName,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  try {
    await fn({ caches, api, logs });
  } finally {
    await caches.stop();
    client.close();
    await api.close();
  }
}

Deno.test("DaemonKubeCaches answers the node's pod by UID and NADs, only once synced", async () => {
  await withCaches(NODE, async ({ caches }) => {
    assert.equal(caches.pod("shop", "web", "u-web"), undefined, "not synced yet");
    assert.equal(caches.nad("shop", "mv"), undefined, "not synced yet");
    caches.start();
    assert.equal(await caches.pods!.waitForSync({ timeoutMs: 10_000 }), true);
    assert.equal(await caches.nads.waitForSync({ timeoutMs: 10_000 }), true);
    assert.equal(caches.pod("shop", "web", "u-web")?.metadata.uid, "u-web");
    assert.equal(caches.pod("shop", "web", "u-other"), undefined, "another UID: ask the server");
    assert.equal(caches.pod("shop", "far", "u-far"), undefined, "another node's pod");
    assert.equal(caches.nad("shop", "mv")?.spec?.config, "{}");
    assert.equal(caches.nad("shop", "nope"), undefined);
    const stats = caches.stats();
    assert.deepEqual([stats.pods?.size, stats.nads.size], [1, 1]);
  });
});

Deno.test("DaemonKubeCaches fans pod changes out to every listener until it unsubscribes", async () => {
  await withCaches(NODE, async ({ caches, api }) => {
    const seen: string[][] = [[], []];
    let failures = 0;
    const offA = caches.onPodChange((c: CacheChange<Pod>) => seen[0].push(`${c.type} ${c.key}`));
    caches.onPodChange(() => {
      failures++;
      throw new Error("listener bug");
    });
    caches.onPodChange((c) => seen[1].push(`${c.type} ${c.key}`));
    caches.start();
    await caches.pods!.waitForSync({ timeoutMs: 10_000 });
    offA();
    api.setPod({ metadata: { name: "new", namespace: "shop" }, spec: { nodeName: NODE } });
    while (seen[1].length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(seen[0], ["ADDED shop/web"]);
    assert.deepEqual(seen[1], ["ADDED shop/web", "ADDED shop/new"]);
    assert.equal(failures, 2, "a failing listener does not stop the others");
  });
});

Deno.test("DaemonKubeCaches without a node name has no pod cache: every pod is read", async () => {
  await withCaches("", async ({ caches }) => {
    caches.start();
    assert.equal(caches.pods, undefined);
    assert.equal(await caches.nads.waitForSync({ timeoutMs: 10_000 }), true);
    assert.equal(caches.pod("shop", "web", "u-web"), undefined);
    assert.equal(caches.stats().pods, undefined);
    assert.equal(caches.nad("shop", "mv")?.metadata.name, "mv");
  });
});
