import assert from "node:assert/strict";
import type { KubeClient } from "../k8s/client.ts";
import { fallbackNetConf, type MultusNetConf } from "../multus/config/netconf.ts";
import { ApiCallCounts, clientKey, KubeClientPool } from "./kube_clients.ts";

function conf(kubeconfig: string): MultusNetConf {
  return { ...fallbackNetConf(), kubeconfig };
}

/** A pool whose clients are plain objects that record being closed. */
function pool(pinned: string | undefined, maxOthers: number) {
  const opened: string[] = [];
  const closed: string[] = [];
  let failNext = false;
  const p = new KubeClientPool(pinned, {
    counts: new ApiCallCounts(),
    maxOthers,
    open: (c) => {
      opened.push(c.kubeconfig);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("cannot read the kubeconfig"));
      }
      return Promise.resolve({ close: () => closed.push(c.kubeconfig) } as unknown as KubeClient);
    },
  });
  return { p, opened, closed, failNext: () => failNext = true };
}

Deno.test("KubeClientPool shares one client per kubeconfig and keeps the pinned one", async () => {
  const { p, opened, closed } = pool("/etc/own", 2);
  const own = await p.client(conf("/etc/own"), {});
  assert.equal(await p.client(conf("/etc/own"), {}), own);
  const a = await p.client(conf("/a"), {});
  await p.client(conf("/b"), {});
  assert.equal(await p.client(conf("/a"), {}), a, "a is used again: b is the oldest now");
  await p.client(conf("/c"), {});
  assert.equal(p.size, 3, "the pinned client and two others");
  await p.client(conf("/b"), {});
  assert.deepEqual(opened, ["/etc/own", "/a", "/b", "/c", "/b"], "b was evicted, not a");
  assert.equal(await p.client(conf("/etc/own"), {}), own, "never evicted");
  assert.deepEqual(closed, [], "the evicted client stays open while requests may use it");
  p.close();
  await Promise.resolve();
  assert.deepEqual(closed.sort(), ["/a", "/b", "/b", "/c", "/etc/own"]);
});

Deno.test("KubeClientPool does not keep a client it could not open", async () => {
  const { p, opened, failNext } = pool(undefined, 4);
  failNext();
  await assert.rejects(p.client(conf("/a"), {}), /cannot read the kubeconfig/);
  assert.equal(p.size, 0);
  await p.client(conf("/a"), {});
  assert.deepEqual(opened, ["/a", "/a"]);
  assert.equal(await p.client(conf(""), {}), undefined, "no API access");
  p.close();
});

Deno.test("clientKey: the kubeconfig path, else the in-cluster environment, else none", () => {
  assert.equal(clientKey({ kubeconfig: "/k" }, { KUBERNETES_SERVICE_HOST: "h" }), "/k");
  assert.equal(
    clientKey({ kubeconfig: "" }, { KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "1" }),
    "<in-cluster>",
  );
  assert.equal(clientKey({ kubeconfig: "" }, {}), undefined);
});
