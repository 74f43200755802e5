import assert from "node:assert/strict";
import { startTestApiServer } from "../../../tests/k8s_api/server.ts";
import { KubeClient } from "../../k8s/client.ts";
import { K8sApiError } from "../../k8s/errors.ts";
import { loadKubeconfig } from "../../k8s/kubeconfig.ts";
import { ApiDraObjects, sliceSelector } from "./dra_objects.ts";

Deno.test("ApiDraObjects reads each claim and each node/driver's slices once, by field selector", async () => {
  const server = await startTestApiServer();
  const client = new KubeClient(await loadKubeconfig(await server.writeKubeconfig()));
  try {
    server.setResourceClaim({ metadata: { name: "c1", namespace: "nfv" } });
    for (const [name, node, driver] of [["a", "n1", "d1"], ["b", "n2", "d1"], ["c", "n1", "d2"]]) {
      server.setResourceSlice({
        metadata: { name },
        spec: { driver, nodeName: node, pool: { name: node, generation: 1 }, devices: [] },
      });
    }
    const objects = new ApiDraObjects(client);
    const [c1, again] = await Promise.all([
      objects.resourceClaim("nfv", "c1"),
      objects.resourceClaim("nfv", "c1"),
    ]);
    assert.equal(c1.metadata.name, "c1");
    assert.equal(again, c1);
    const slices = await objects.resourceSlices("n1", "d1");
    assert.deepEqual(slices.map((s) => s.metadata.name), ["a"]);
    await objects.resourceSlices("n1", "d1");
    assert.deepEqual((await objects.resourceSlices("", "d1")).map((s) => s.metadata.name), [
      "a",
      "b",
    ]);
    const dra = server.requests().filter((r) => r.path.startsWith("/apis/resource.k8s.io/"));
    assert.deepEqual(dra.map((r) => decodeURIComponent(r.query ?? "")), [
      "",
      "fieldSelector=spec.nodeName=n1,spec.driver=d1",
      "fieldSelector=spec.driver=d1",
    ]);

    await assert.rejects(objects.resourceClaim("nfv", "gone"), (err) => {
      assert.ok(err instanceof K8sApiError && err.notFound);
      return true;
    });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("sliceSelector() filters by node and driver, by driver alone without a node", () => {
  assert.equal(sliceSelector("n", "d.example.com"), "spec.nodeName=n,spec.driver=d.example.com");
  assert.equal(sliceSelector("", "d.example.com"), "spec.driver=d.example.com");
});
