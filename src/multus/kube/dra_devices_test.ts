import assert from "node:assert/strict";
import { ConfigError } from "../../cni/errors.ts";
import { parseNetworkConfig } from "../../cni/network_config.ts";
import { K8sApiError } from "../../k8s/errors.ts";
import type { Pod, ResourceClaim, ResourceSlice } from "../../k8s/types.ts";
import { Logger } from "../../log/logger.ts";
import type { Delegate } from "../plan/delegate.ts";
import { assignDeviceIds } from "./device_ids.ts";
import { podDraDevices, podHasClaims } from "./dra_devices.ts";
import type { DraObjects } from "./dra_objects.ts";

const SRIOV = "example.com/sriov_vf";
const DRIVER = "sriov.example.com";

/** DraObjects answering from maps, counting reads. */
class FakeObjects implements DraObjects {
  claims = new Map<string, ResourceClaim>();
  slices: ResourceSlice[] = [];
  reads: string[] = [];
  failSlices?: K8sApiError;

  resourceClaim(namespace: string, name: string): Promise<ResourceClaim> {
    this.reads.push(`claim ${namespace}/${name}`);
    const claim = this.claims.get(`${namespace}/${name}`);
    if (!claim) {
      return Promise.reject(
        new K8sApiError(`Cannot get resource claim "${namespace}/${name}": not found`, {
          status: 404,
          reason: "NotFound",
          verb: "get",
          path: "/x",
        }),
      );
    }
    return Promise.resolve(claim);
  }

  resourceSlices(nodeName: string, driver: string): Promise<ResourceSlice[]> {
    this.reads.push(`slices ${nodeName} ${driver}`);
    if (this.failSlices) return Promise.reject(this.failSlices);
    return Promise.resolve(
      this.slices.filter((s) => s.spec.driver === driver && s.spec.nodeName === nodeName),
    );
  }
}

function claim(name: string, results: [string, string, string][] | undefined): ResourceClaim {
  return {
    apiVersion: "resource.k8s.io/v1",
    kind: "ResourceClaim",
    metadata: { name, namespace: "nfv" },
    status: results === undefined ? {} : {
      allocation: {
        devices: {
          results: results.map(([request, driver, device]) => ({
            request,
            driver,
            pool: "node-1",
            device,
          })),
        },
      },
    },
  };
}

function slice(
  driver: string,
  devices: [string, Record<string, string>][],
  generation = 1,
  name = `${driver}-slice`,
): ResourceSlice {
  return {
    metadata: { name },
    spec: {
      driver,
      nodeName: "node-1",
      pool: { name: "node-1", generation, resourceSliceCount: 1 },
      devices: devices.map(([device, attrs]) => ({
        name: device,
        attributes: Object.fromEntries(
          Object.entries(attrs).map(([k, v]) => [`k8s.cni.cncf.io/${k}`, { string: v }]),
        ),
      })),
    },
  };
}

function pod(status: Record<string, unknown>): Pod {
  return { metadata: { name: "app", namespace: "nfv" }, spec: { nodeName: "node-1" }, status };
}

const claimStatuses = (...names: string[]) => ({
  resourceClaimStatuses: names.map((n) => ({ name: `ref-${n}`, resourceClaimName: n })),
});

const request = (resources = [SRIOV]) => ({
  networks: ["nfv/net-a"],
  resources: new Set(resources),
  log: new Logger(),
});

function fixture(): FakeObjects {
  const objects = new FakeObjects();
  objects.slices.push(
    slice(DRIVER, [
      ["vf-0", { deviceID: "0000:03:00.2", resourceName: SRIOV }],
      ["vf-1", { deviceID: "0000:03:00.3", resourceName: SRIOV }],
      ["vf-2", { deviceID: "0000:03:00.4" }],
    ]),
    slice("gpu.example.com", [["gpu-0", {}]]),
  );
  return objects;
}

Deno.test("podDraDevices() maps devices by their resourceName attribute, in allocation order, skipping a GPU", async () => {
  const objects = fixture();
  objects.claims.set(
    "nfv/c1",
    claim("c1", [["r", DRIVER, "vf-1"], ["gpu", "gpu.example.com", "gpu-0"], [
      "r",
      DRIVER,
      "vf-0",
    ]]),
  );
  const got = await podDraDevices(pod(claimStatuses("c1")), objects, request());
  assert.deepEqual(Object.fromEntries(got.devices), {
    [SRIOV]: [{ id: "0000:03:00.3", claim: "nfv/c1" }, { id: "0000:03:00.2", claim: "nfv/c1" }],
  });
  assert.deepEqual(got.claims, ["nfv/c1"]);
  assert.equal(got.skipped.length, 1);
  assert.match(got.skipped[0], /gpu-0.*no string attribute "k8s\.cni\.cncf\.io\/deviceID"/);
  assert.deepEqual(objects.reads.sort(), [
    "claim nfv/c1",
    "slices node-1 gpu.example.com",
    "slices node-1 sriov.example.com",
  ]);
});

Deno.test("podDraDevices() skips devices without resourceName, missing from the slices, or of an older pool generation", async () => {
  const objects = fixture();
  objects.slices.push(
    slice(DRIVER, [["vf-9", { deviceID: "0000:09:00.0", resourceName: SRIOV }]], 0, "old"),
  );
  objects.claims.set(
    "nfv/c1",
    claim("c1", [["r", DRIVER, "vf-2"], ["r", DRIVER, "vf-9"], ["r", DRIVER, "vf-0"]]),
  );
  const got = await podDraDevices(pod(claimStatuses("c1")), objects, request());
  assert.deepEqual(got.devices.get(SRIOV)?.map((d) => d.id), ["0000:03:00.2"]);
  assert.equal(got.skipped.length, 2);
  assert.match(got.skipped[0], /vf-2.*resourceName/);
  assert.match(got.skipped[1], /vf-9.*not in any ResourceSlice/);
});

Deno.test("podDraDevices() reads each claim once and skips statuses without a claim name", async () => {
  const objects = fixture();
  objects.claims.set("nfv/c1", claim("c1", [["r", DRIVER, "vf-0"]]));
  const status = {
    resourceClaimStatuses: [
      { name: "a", resourceClaimName: "c1" },
      { name: "b" },
      { name: "c", resourceClaimName: "c1" },
    ],
  };
  const got = await podDraDevices(pod(status), objects, request());
  assert.deepEqual(got.devices.get(SRIOV)?.map((d) => d.id), ["0000:03:00.2"]);
  assert.equal(objects.reads.filter((r) => r.startsWith("claim")).length, 1);
});

Deno.test("podDraDevices() fails for a claim without allocation, naming pod, claim and networks", async () => {
  const objects = fixture();
  objects.claims.set("nfv/c1", claim("c1", [["r", DRIVER, "vf-0"]]));
  objects.claims.set("nfv/c2", claim("c2", undefined));
  await assert.rejects(
    podDraDevices(pod(claimStatuses("c1", "c2")), objects, request()),
    (err) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(
        err.message,
        'Cannot attach network "nfv/net-a" to pod "nfv/app": resource claim "nfv/c2": it has no device allocation',
      );
      assert.equal(err.field, "status.allocation.devices.results");
      return true;
    },
  );
  assert.ok(!objects.reads.some((r) => r.startsWith("slices")), "no slice read after the failure");
});

Deno.test("podDraDevices() turns a 403 on resourceslices into the RBAC rule to add", async () => {
  const objects = fixture();
  objects.claims.set("nfv/c1", claim("c1", [["r", DRIVER, "vf-0"]]));
  objects.failSlices = new K8sApiError(
    'Cannot list resourceslices (fieldSelector "spec.nodeName=node-1,spec.driver=sriov.example.com"): the API server answered 403 Forbidden',
    {
      status: 403,
      reason: "Forbidden",
      verb: "list",
      path: "/apis/resource.k8s.io/v1/resourceslices",
    },
  );
  await assert.rejects(
    podDraDevices(pod(claimStatuses("c1")), objects, request()),
    (err) => {
      assert.ok(err instanceof Error && "details" in err);
      assert.match(
        err.message,
        /^Cannot attach network "nfv\/net-a" to pod "nfv\/app": cannot list resourceslices/,
      );
      assert.match(String(err.details), /"list" on "resourceslices".*resource\.k8s\.io/);
      return true;
    },
  );
});

Deno.test("podDraDevices() checks the extended-resource claim strictly for the networks' resources", async () => {
  const ext = (mappings: { requestName: string; resourceName: string }[]) =>
    pod({
      extendedResourceClaimStatus: {
        resourceClaimName: "ext",
        requestMappings: mappings.map((m) => ({ containerName: "app", ...m })),
      },
    });
  const objects = fixture();
  objects.claims.set(
    "nfv/ext",
    claim("ext", [["container-0-request-0", DRIVER, "vf-0"], [
      "container-0-request-1",
      "gpu.example.com",
      "gpu-0",
    ]]),
  );
  const ok = await podDraDevices(
    ext([{ requestName: "container-0-request-0", resourceName: SRIOV }, {
      requestName: "container-0-request-1",
      resourceName: "example.com/gpu",
    }]),
    objects,
    request(),
  );
  assert.deepEqual(ok.devices.get(SRIOV)?.map((d) => d.id), ["0000:03:00.2"]);
  assert.equal(ok.devices.get("example.com/gpu"), undefined, "no network asks for the GPU");

  await assert.rejects(
    podDraDevices(ext([{ requestName: "missing", resourceName: SRIOV }]), objects, request()),
    /resource claim "nfv\/ext": the request "missing" .* has no device/,
  );
  await assert.rejects(
    podDraDevices(
      ext([{ requestName: "container-0-request-1", resourceName: "example.com/gpu" }]),
      objects,
      request(["example.com/gpu"]),
    ),
    /device "gpu-0" .* has no string attribute "k8s\.cni\.cncf\.io\/deviceID"/,
  );
  await assert.rejects(
    podDraDevices(
      ext([{ requestName: "container-0-request-0", resourceName: "example.com/other" }]),
      objects,
      request(["example.com/other"]),
    ),
    /has "k8s\.cni\.cncf\.io\/resourceName" "example\.com\/sriov_vf" but .* is "example\.com\/other"/,
  );
});

Deno.test("podHasClaims() is false for pods without claim statuses", () => {
  assert.equal(podHasClaims(pod({})), false);
  assert.equal(podHasClaims(pod({ resourceClaimStatuses: [] })), false);
  assert.equal(podHasClaims(pod(claimStatuses("c"))), true);
  assert.equal(
    podHasClaims(pod({ extendedResourceClaimStatus: { resourceClaimName: "x" } })),
    true,
  );
});

function delegate(name: string, resourceName?: string): Delegate {
  return {
    name,
    resourceName,
    config: parseNetworkConfig(`{"cniVersion":"1.0.0","name":"${name}","type":"sriov"}`, name),
  };
}

Deno.test("assignDeviceIds() hands DRA devices out like device-plugin ones, without asking the kubelet when the claims cover every network", async () => {
  const objects = fixture();
  objects.claims.set("nfv/c1", claim("c1", [["r", DRIVER, "vf-0"], ["r", DRIVER, "vf-1"]]));
  const delegates = [delegate("nfv/a", SRIOV), delegate("nfv/plain"), delegate("nfv/b", SRIOV)];
  await assignDeviceIds({ namespace: "nfv", name: "app", uid: "u" }, delegates, {
    podResourcesSocket: "/nonexistent/kubelet.sock",
    checkpointFile: "/nonexistent/checkpoint",
    dra: { pod: pod(claimStatuses("c1")), objects },
  });
  assert.deepEqual(delegates.map((d) => d.deviceID), ["0000:03:00.2", undefined, "0000:03:00.3"]);
  assert.equal(
    delegates[0].config.raw,
    '{"cniVersion":"1.0.0","name":"nfv/a","type":"sriov","deviceID":"0000:03:00.2","pciBusID":"0000:03:00.2"}',
  );
});

Deno.test("assignDeviceIds() names the claims when a resource has too few devices", async () => {
  const objects = fixture();
  objects.claims.set(
    "nfv/c1",
    claim("c1", [["r", DRIVER, "vf-0"], ["gpu", "gpu.example.com", "gpu-0"]]),
  );
  const dir = await Deno.makeTempDir();
  try {
    const checkpointFile = `${dir}/checkpoint`;
    await Deno.writeTextFile(
      checkpointFile,
      JSON.stringify({ Data: { PodDeviceEntries: [], RegisteredDevices: {} }, Checksum: 0 }),
    );
    const delegates = [delegate("nfv/a", SRIOV), delegate("nfv/b", SRIOV)];
    await assert.rejects(
      assignDeviceIds({ namespace: "nfv", name: "app", uid: "u" }, delegates, {
        podResourcesSocket: `${dir}/kubelet.sock`,
        checkpointFile,
        dra: { pod: pod(claimStatuses("c1")), objects },
      }),
      (err) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /^Cannot attach network "nfv\/b" to pod "nfv\/app": it asks for a device of "example\.com\/sriov_vf" but the pod has none left \(1 from its resource claim "nfv\/c1", 0 from the kubelet's device plugins, 1 used by earlier networks; not published for networks: device "gpu-0"/,
        );
        return true;
      },
    );
    assert.deepEqual(delegates.map((d) => d.deviceID), [undefined, undefined], "nothing assigned");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("podDraDevices() says what a missing claim means", async () => {
  await assert.rejects(
    podDraDevices(pod(claimStatuses("gone")), fixture(), request()),
    (err) => {
      assert.ok(err instanceof Error && "details" in err && "code" in err);
      assert.match(
        err.message,
        /^Cannot attach network "nfv\/net-a" to pod "nfv\/app": cannot get resource claim "nfv\/gone"/,
      );
      assert.match(String(err.details), /status\.resourceClaimStatuses names "gone"/);
      assert.equal(err.code, 999);
      return true;
    },
  );
});

Deno.test("podDraDevices() names the pod field that is malformed", async () => {
  await assert.rejects(
    podDraDevices(
      pod({ resourceClaimStatuses: [{ name: "a", resourceClaimName: 7 }] }),
      fixture(),
      request(),
    ),
    /the pod's status\.resourceClaimStatuses\[0\]\.resourceClaimName is not a name/,
  );
  await assert.rejects(
    podDraDevices(
      pod({ extendedResourceClaimStatus: { resourceClaimName: "x", requestMappings: [{}] } }),
      fixture(),
      request(),
    ),
    /status\.extendedResourceClaimStatus\.requestMappings\[0\]\.resourceName is not a non-empty string/,
  );
});
