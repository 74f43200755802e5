import assert from "node:assert/strict";
import { startTestApiServer, type TestApiServer } from "../../tests/k8s_api/server.ts";
import { KubeClient } from "../k8s/client.ts";
import { loadKubeconfig } from "../k8s/kubeconfig.ts";
import { DaemonDraObjects } from "./dra_cache.ts";

const NODE = "node-1";

async function withObjects(
  options: { maxClaims?: number; nodeName?: string },
  fn: (ctx: { dra: DaemonDraObjects; api: TestApiServer; logs: string[] }) => Promise<void>,
): Promise<void> {
  const api = await startTestApiServer();
  const client = new KubeClient(await loadKubeconfig(await api.writeKubeconfig()), {
    requestTimeoutMs: 2000,
    totalTimeoutMs: 4000,
  });
  const logs: string[] = [];
  const dra = new DaemonDraObjects({
    client: () => Promise.resolve(client),
    nodeName: options.nodeName ?? NODE,
    maxClaims: options.maxClaims,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  try {
    await fn({ dra, api, logs });
  } finally {
    await dra.stop();
    client.close();
    await api.close();
  }
}

function claim(name: string, reservedFor: string[], allocated = true) {
  return {
    metadata: { name, namespace: "ns" },
    status: {
      ...(allocated
        ? {
          allocation: {
            devices: { results: [{ request: "r", driver: "d", pool: "p", device: "x" }] },
          },
        }
        : {}),
      reservedFor: reservedFor.map((uid) => ({ resource: "pods", name: uid, uid })),
    },
  };
}

const gets = (api: TestApiServer) =>
  api.requests().filter((r) => r.path.includes("/resourceclaims/")).map((r) =>
    r.path.split("/").pop()
  );

Deno.test("DaemonDraObjects answers a kept claim only for a pod it is reserved for, with an allocation", async () => {
  await withObjects({}, async ({ dra, api }) => {
    api.setResourceClaim(claim("c1", ["u1"]));
    api.setResourceClaim(claim("open", ["u1"], false));
    api.setResourceClaim(claim("nobody", []));
    assert.equal((await dra.resourceClaim("ns", "c1", "u1")).metadata.name, "c1");
    await dra.resourceClaim("ns", "c1", "u1");
    await dra.resourceClaim("ns", "c1", "u2"); // not reserved for u2
    await dra.resourceClaim("ns", "c1", ""); // no pod UID
    for (const name of ["open", "nobody"]) {
      await dra.resourceClaim("ns", name, "u1");
      await dra.resourceClaim("ns", name, "u1");
    }
    assert.deepEqual(gets(api), ["c1", "c1", "c1", "open", "open", "nobody", "nobody"]);
    assert.equal(dra.stats().claims, 1, "only c1: allocated and reserved");
  });
});

Deno.test("DaemonDraObjects keeps at most maxClaims claims, least recently used dropped, and forgets a deleted pod's", async () => {
  await withObjects({ maxClaims: 2 }, async ({ dra, api }) => {
    for (const name of ["a", "b", "c"]) api.setResourceClaim(claim(name, [`u-${name}`, "u-all"]));
    await dra.resourceClaim("ns", "a", "u-a");
    await dra.resourceClaim("ns", "b", "u-b");
    await dra.resourceClaim("ns", "a", "u-a"); // a is now the most recent
    await dra.resourceClaim("ns", "c", "u-c"); // drops b
    api.clearRequests();
    await dra.resourceClaim("ns", "a", "u-a");
    await dra.resourceClaim("ns", "c", "u-c");
    await dra.resourceClaim("ns", "b", "u-b");
    assert.deepEqual(gets(api), ["b"]);
    assert.equal(dra.stats().claims, 2);
    assert.equal(dra.forgetPod("u-all"), 2);
    assert.equal(dra.stats().claims, 0);
  });
});

Deno.test("DaemonDraObjects lists the slices of another node, or without a node name, per request", async () => {
  for (const nodeName of [NODE, ""]) {
    await withObjects({ nodeName }, async ({ dra, api }) => {
      api.setResourceSlice({
        metadata: { name: "s2" },
        spec: { driver: "d", nodeName: "node-2", pool: { name: "p", generation: 1 }, devices: [] },
      });
      assert.deepEqual((await dra.resourceSlices("node-2", "d")).map((s) => s.metadata.name), [
        "s2",
      ]);
      assert.deepEqual(
        api.requests().map((r) => `${r.verb} ${decodeURIComponent(r.query ?? "")}`),
        ["list fieldSelector=spec.nodeName=node-2,spec.driver=d"],
      );
      assert.equal(dra.stats().slices, undefined, "no watch started");
    });
  }
});
