import assert from "node:assert/strict";
import { answerMismatch, resourceSliceListMismatch } from "./types.ts";

const claim = (status: unknown) => ({
  apiVersion: "resource.k8s.io/v1",
  kind: "ResourceClaim",
  metadata: { name: "c", namespace: "nfv" },
  status,
});
const expected = { kind: "ResourceClaim" as const, namespace: "nfv", name: "c" };

Deno.test("answerMismatch() accepts a resource.k8s.io/v1 ResourceClaim, with or without allocation", () => {
  const result = { request: "r", driver: "d", pool: "p", device: "vf-0", adminAccess: null };
  assert.equal(
    answerMismatch(claim({ allocation: { devices: { results: [result] } } }), expected),
    undefined,
  );
  assert.equal(answerMismatch(claim(null), expected), undefined);
  assert.equal(answerMismatch(claim({ allocation: null }), expected), undefined);
});

Deno.test("answerMismatch() names what is wrong with a ResourceClaim answer", () => {
  assert.equal(
    answerMismatch({ ...claim({}), apiVersion: "resource.k8s.io/v1beta1" }, expected),
    'a ResourceClaim "nfv/c" (apiVersion "resource.k8s.io/v1beta1"), not a resource claim',
  );
  assert.equal(
    answerMismatch(claim({ allocation: { devices: { results: [{ driver: "d" }] } } }), expected),
    'resource claim "nfv/c" whose status.allocation.devices.results[0].request is nothing instead of a string, status.allocation.devices.results[0].pool is nothing instead of a string, status.allocation.devices.results[0].device is nothing instead of a string',
  );
});

Deno.test("resourceSliceListMismatch() checks the list kind and the fields the plugin reads", () => {
  const slice = (spec: unknown) => ({ metadata: { name: "s" }, spec });
  const list = (items: unknown[], kind = "ResourceSliceList") => ({
    kind,
    apiVersion: "resource.k8s.io/v1",
    metadata: {},
    items,
  });
  const good = {
    driver: "d",
    nodeName: "n",
    pool: { name: "p", generation: 2 },
    devices: [{ name: "vf-0", attributes: { "k8s.cni.cncf.io/deviceID": { string: "x" } } }],
  };
  assert.equal(resourceSliceListMismatch(list([slice(good)])), undefined);
  assert.equal(resourceSliceListMismatch(list([slice({ ...good, devices: null })])), undefined);
  assert.equal(
    resourceSliceListMismatch(list([], "PodList")),
    'a PodList (apiVersion "resource.k8s.io/v1"), not a ResourceSliceList of resource.k8s.io/v1',
  );
  assert.equal(
    resourceSliceListMismatch(list([slice({ ...good, pool: { name: "p" } })])),
    "a ResourceSliceList whose items[0].spec.pool.generation is not a number",
  );
  assert.equal(
    resourceSliceListMismatch(
      list([slice(good), slice({ ...good, devices: [{ name: "x", attributes: { a: "plain" } }] })]),
    ),
    'a ResourceSliceList whose items[1].spec.devices[0].attributes["a"] is a string',
  );
});
