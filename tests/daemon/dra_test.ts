/**
 * End to end through the shim with the daemon up: networks backed by devices allocated
 * through DRA resource claims, read from the daemon's caches. The node's ResourceSlices come
 * from a watch the daemon opens at the first pod with claims; a claim reserved for the pod is
 * read once; where the slices cannot be watched (403) each ADD lists them. The stand-in
 * `sriov` plugin records the device IDs it received; the API server's request log shows what
 * each ADD asked.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { uniqueSuffix } from "../helpers/plugin_run.ts";
import { TestNetns } from "../helpers/netns.ts";
import { startK8sFixture } from "../helpers/k8s_fixture.ts";
import {
  type FixtureDaemon,
  linkNames,
  metricValue,
  newSandbox,
  podArgs,
  shimConf,
  startFixtureDaemon,
  untilMetrics,
} from "./_helpers.ts";
import {
  draRequests,
  installSriovStandin,
  resourceClaim,
  resourceSlice,
  sriovCalls,
  sriovNad,
} from "../nfv/_dra.ts";

const NODE = "node-dra-1";
const DRIVER = "sriovnetwork.example.com";
const RESOURCE = "example.com/sriov_vf";
const NETWORKS = "k8s.v1.cni.cncf.io/networks";
const SLICES = "/apis/resource.k8s.io/v1/resourceslices";
const CLAIMS = "/apis/resource.k8s.io/v1/namespaces/nfv/resourceclaims";

let subnetCounter = 20 + Math.floor(Math.random() * 200);

/** A node with its daemon up, two NADs on `RESOURCE` and the node's slices. */
interface DraNode extends FixtureDaemon {
  record: string;
}

async function draNode(): Promise<DraNode> {
  const f = await startK8sFixture({ clusterSubnet: `10.243.${subnetCounter++}` });
  const record = join(f.root.dir, "sriov-calls.jsonl");
  try {
    await installSriovStandin(f.root.binDir);
    for (const name of ["dra-a", "dra-b"]) {
      f.api.setNad(
        sriovNad(name, RESOURCE, { recordFile: record, capabilities: { deviceID: true } }),
      );
    }
    // The node's slices: four VFs and a GPU; another node's VFs of the same names.
    f.api.setResourceSlice(slice(`${NODE}-sriov`, NODE, DRIVER, [
      ["vf-0", "0000:81:00.2"],
      ["vf-1", "0000:81:00.3"],
      ["vf-2", "0000:81:00.4"],
      ["vf-3", "0000:81:00.5"],
    ]));
    f.api.setResourceSlice(slice("node-2-sriov", "node-2", DRIVER, [["vf-0", "0000:99:00.2"]]));
    f.api.setResourceSlice(slice(`${NODE}-gpu`, NODE, "gpu.example.com", [["gpu-0"]]));
  } catch (err) {
    await f.cleanup();
    throw err;
  }
  const extra = {
    logLevel: "debug",
    deviceInfoDir: join(f.root.dir, "devinfo"),
    podResourcesSocket: join(f.root.dir, "kubelet.sock"),
    deviceCheckpointFile: join(f.root.dir, "kubelet_internal_checkpoint"),
  };
  const d = await startFixtureDaemon(f, NODE, f.multusConf(extra), f.multusConf(extra));
  return { ...d, record };
}

/** A slice of `driver` on `nodeName`: devices are [name, deviceID?]. */
function slice(name: string, nodeName: string, driver: string, devices: [string, string?][]) {
  return resourceSlice(
    name,
    nodeName,
    driver,
    devices.map(([device, id]): [string, Record<string, string>] => [
      device,
      id === undefined ? {} : { deviceID: id, resourceName: RESOURCE },
    ]),
  );
}

/** A claim allocated on NODE (results: [request, driver, device]), reserved for `pods`. */
function claim(name: string, results: [string, string, string][], pods: { uid: string }[]) {
  return resourceClaim(name, NODE, results, pods);
}

interface DraPod {
  name: string;
  uid: string;
  ns: TestNetns;
  containerId: string;
}

/** A pod on the node with networks dra-a and dra-b and the claim `claimName` in its status. */
async function addPod(d: DraNode, name: string, claimName: string): Promise<DraPod> {
  const pod = d.f.api.setPod({
    metadata: { name, namespace: "nfv", annotations: { [NETWORKS]: "dra-a,dra-b" } },
    spec: { nodeName: NODE },
    status: { resourceClaimStatuses: [{ name: "vfs", resourceClaimName: claimName }] },
  });
  return { name, uid: pod.metadata.uid!, ...await newSandbox(d) };
}

/** Pods a and b, each with a claim of two VFs reserved for it (a: vf-1, vf-0; b: vf-2, vf-3). */
async function twoPods(d: DraNode): Promise<{ a: DraPod; b: DraPod }> {
  const a = await addPod(d, `app-a-${uniqueSuffix()}`, "a-vfs");
  const b = await addPod(d, `app-b-${uniqueSuffix()}`, "b-vfs");
  d.f.api.setResourceClaim(
    claim("a-vfs", [["vfs", DRIVER, "vf-1"], ["vfs", DRIVER, "vf-0"]], [a]),
  );
  d.f.api.setResourceClaim(
    claim("b-vfs", [["vfs", DRIVER, "vf-2"], ["vfs", DRIVER, "vf-3"]], [b]),
  );
  return { a, b };
}

/** The same pod in a new sandbox (the runtime made its network namespace again). */
async function podInNewSandbox(d: DraNode, pod: DraPod): Promise<DraPod> {
  return { ...pod, ...await newSandbox(d) };
}

function shim(d: DraNode, command: string, pod: DraPod) {
  return d.f.root.run({
    command,
    containerId: pod.containerId,
    netns: pod.ns.path,
    args: podArgs({ namespace: "nfv", ...pod }),
    config: shimConf(d.node),
  });
}

/** The device IDs the sriov stand-in got on ADD for `pod`: [ifName, deviceID]. */
async function deviceIds(d: DraNode, pod: DraPod): Promise<(string | undefined)[][]> {
  return (await sriovCalls(d.record))
    .filter((r) => r.command === "ADD" && r.containerId === pod.containerId)
    .map((r) => [r.ifName, r.config.deviceID]);
}

/** The DRA requests of an ADD's own path: not the slice cache's list and watches. */
function pathDraRequests(d: DraNode): string[] {
  return draRequests(d.f.api).filter((r) =>
    !r.startsWith("watch ") && r !== `list ${SLICES}?fieldSelector=spec.nodeName=${NODE}`
  );
}

const cached = (resource: string) => `multus_daemon_cache_objects{resource="${resource}"}`;

Deno.test("daemon, DRA: slices from the node's watch after the first pod, a claim reserved for the pod read once", async () => {
  const d = await draNode();
  try {
    const { a, b } = await twoPods(d);
    await untilMetrics(d.daemon, (text) => metricValue(text, cached("pods")) === 2);
    assert.deepEqual(draRequests(d.f.api), [], "no DRA request before a pod needs one");
    assert.equal(metricValue(await d.daemon.metrics(), cached("resourceslices")), 0);

    // The first pod with claims starts the node's slice watch and is served from its list.
    d.f.api.clearRequests();
    const first = await shim(d, "ADD", a);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(await deviceIds(d, a), [["net1", "0000:81:00.3"], ["net2", "0000:81:00.2"]]);
    assert.deepEqual(await linkNames(a.ns), ["eth0", "lo", "net1", "net2"]);
    assert.deepEqual(draRequests(d.f.api).filter((r) => !r.startsWith("watch ")), [
      `get ${CLAIMS}/a-vfs`,
      `list ${SLICES}?fieldSelector=spec.nodeName=${NODE}`,
    ], "the watch's list, not a list per driver");

    // The second pod: its claim is read, its slices come from the watch.
    d.f.api.clearRequests();
    const second = await shim(d, "ADD", b);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.deepEqual(await deviceIds(d, b), [["net1", "0000:81:00.4"], ["net2", "0000:81:00.5"]]);
    assert.deepEqual(draRequests(d.f.api).filter((r) => !r.startsWith("watch ")), [
      `get ${CLAIMS}/b-vfs`,
    ], "no resourceslices list");

    // The first pod in a new sandbox: its claim is cached and reserved for it: no DRA read.
    assert.equal((await shim(d, "DEL", a)).code, 0);
    const again = await podInNewSandbox(d, a);
    d.f.api.clearRequests();
    const third = await shim(d, "ADD", again);
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.deepEqual(await deviceIds(d, again), [
      ["net1", "0000:81:00.3"],
      ["net2", "0000:81:00.2"],
    ]);
    assert.deepEqual(pathDraRequests(d), []);

    // A pod sharing that claim, which is not (yet) reserved for it in the cached copy: a GET.
    const c = await addPod(d, `app-c-${uniqueSuffix()}`, "a-vfs");
    d.f.api.clearRequests();
    const shared = await shim(d, "ADD", c);
    assert.equal(shared.code, 0, shared.stdout + shared.stderr);
    assert.deepEqual(pathDraRequests(d), [`get ${CLAIMS}/a-vfs`]);

    const metrics = await d.daemon.metrics();
    assert.equal(metricValue(metrics, cached("resourceslices")), 2, "this node's two slices");
    assert.equal(metricValue(metrics, cached("resourceclaims")), 2);
    assert.equal(metricValue(metrics, 'multus_daemon_cache_synced{resource="resourceslices"}'), 1);

    // A deleted pod's claims leave the cache.
    for (const pod of [again, b, c]) assert.equal((await shim(d, "DEL", pod)).code, 0);
    d.f.api.deletePod("nfv", b.name);
    await untilMetrics(d.daemon, (text) => metricValue(text, cached("resourceclaims")) === 1);
  } finally {
    await d.cleanup();
  }
});

Deno.test("daemon, DRA: a device attribute changed in a slice is what the next ADD gets", async () => {
  const d = await draNode();
  try {
    const a = await addPod(d, `app-a-${uniqueSuffix()}`, "a-vfs");
    d.f.api.setResourceClaim(
      claim("a-vfs", [["vfs", DRIVER, "vf-1"], ["vfs", DRIVER, "vf-0"]], [a]),
    );
    const first = await shim(d, "ADD", a);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(await deviceIds(d, a), [["net1", "0000:81:00.3"], ["net2", "0000:81:00.2"]]);
    assert.equal((await shim(d, "DEL", a)).code, 0);

    const events = 'multus_daemon_cache_events_total{resource="resourceslices"}';
    const before = metricValue(await d.daemon.metrics(), events);
    d.f.api.setResourceSlice(slice(`${NODE}-sriov`, NODE, DRIVER, [
      ["vf-0", "0000:81:00.2"],
      ["vf-1", "0000:82:00.7"],
    ]));
    await untilMetrics(d.daemon, (text) => metricValue(text, events) === before + 1);
    const again = await podInNewSandbox(d, a);
    d.f.api.clearRequests();
    const next = await shim(d, "ADD", again);
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.deepEqual(await deviceIds(d, again), [
      ["net1", "0000:82:00.7"],
      ["net2", "0000:81:00.2"],
    ], "the changed attribute");
    assert.deepEqual(pathDraRequests(d), [], "from the caches");
    assert.equal((await shim(d, "DEL", again)).code, 0);
  } finally {
    await d.cleanup();
  }
});

Deno.test("daemon, DRA: where the slices cannot be watched (403), each ADD lists them; the rule to add is said once", async () => {
  const d = await draNode();
  try {
    d.f.api.forbid("watch", "resourceslices");
    const { a, b } = await twoPods(d);
    const first = await shim(d, "ADD", a);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.deepEqual(await deviceIds(d, a), [["net1", "0000:81:00.3"], ["net2", "0000:81:00.2"]]);
    const rule =
      'add the ClusterRole rule {apiGroups: ["resource.k8s.io"], resources: ["resourceslices"], verbs: ["list", "watch"]}';
    const giveUpAt = Date.now() + 60_000;
    while (!(await Deno.readTextFile(d.f.root.logFile)).includes(rule)) {
      if (Date.now() > giveUpAt) throw new Error("the daemon never said which rule to add");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }

    for (const [pod, ids] of [[b, ["0000:81:00.4", "0000:81:00.5"]], [a, null]] as const) {
      const sandbox = pod === a ? await podInNewSandbox(d, a) : pod;
      if (pod === a) assert.equal((await shim(d, "DEL", a)).code, 0);
      d.f.api.clearRequests();
      const add = await shim(d, "ADD", sandbox);
      assert.equal(add.code, 0, add.stdout + add.stderr);
      if (ids) assert.deepEqual((await deviceIds(d, sandbox)).map((x) => x[1]), ids);
      const list = `list ${SLICES}?fieldSelector=spec.nodeName=${NODE},spec.driver=${DRIVER}`;
      assert.deepEqual(
        draRequests(d.f.api),
        pod === b ? [`get ${CLAIMS}/b-vfs`, list] : [list],
        "one list of the node's slices of the driver per ADD, no watch",
      );
    }
    const log = await Deno.readTextFile(d.f.root.logFile);
    assert.equal(log.split(rule).length - 1, 1, "said once");
    assert.equal(metricValue(await d.daemon.metrics(), cached("resourceslices")), 0);
  } finally {
    await d.cleanup();
  }
});
