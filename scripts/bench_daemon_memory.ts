/**
 * @module
 * Does `multus daemon` grow with requests? Starts the daemon in Kubernetes mode against the
 * test API server (TLS) with `--nads` NetworkAttachmentDefinitions cached, then runs
 * `--rounds` rounds of `--pods` pods: each a fresh pod in the API server (one macvlan NAD),
 * ADD then DEL over the daemon's socket (the body the shim sends), then the pod deleted, so
 * the pod cache churns. After each round (and a pause for the daemon to go idle) it prints
 * the daemon's VmRSS and VmHWM and its heap as `/metrics` reports it (`process_heap_bytes`).
 * A leak shows as heap used growing round after round; a plateau as a high-water mark.
 *
 *     sudo deno run --allow-all scripts/bench_daemon_memory.ts [--rounds 5] [--pods 40]
 *         [--nads 200] [--v8-flags FLAGS]
 *
 * `--v8-flags` runs the daemon with `DENO_V8_FLAGS`-style flags (e.g.
 * `--max-semi-space-size=1`) to compare the steady state.
 */

import { join } from "node:path";
import { startK8sFixture } from "../tests/helpers/k8s_fixture.ts";
import { REPO_ROOT, SYSTEM_CNI_DIR, uniqueSuffix } from "../tests/helpers/plugin_run.ts";
import { TestNetns } from "../tests/helpers/netns.ts";
import {
  cniBody,
  metricValue,
  type Node,
  shimConf,
  socketRequest,
  startDaemon,
  stopDaemon,
} from "../tests/daemon/_helpers.ts";

const args = Deno.args;
const option = (name: string, fallback: string) =>
  args.includes(name) ? args[args.indexOf(name) + 1] : fallback;
const ROUNDS = Number(option("--rounds", "5"));
const PODS = Number(option("--pods", "40"));
const NADS = Number(option("--nads", "200"));
const V8_FLAGS = option("--v8-flags", "");
/** Where to write a heap snapshot of the daemon after the last round (run under --inspect). */
const SNAPSHOT = option("--snapshot", "");
const INSPECT_PORT = 9239;
const NODE_NAME = "bench-memory-node";
const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** VmRSS and VmHWM of a process, in MiB. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1).padStart(7);
}

async function main(): Promise<void> {
  const f = await startK8sFixture({
    clusterSubnet: `10.241.${100 + Math.floor(Math.random() * 100)}`,
  });
  const namespaces = new Set<TestNetns>();
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    await Deno.symlink(join(f.root.binDir, "multus"), join(f.root.binDir, "multus-shim"));
    for (let i = 0; i < NADS; i++) {
      f.macvlanNad(`mv-${i}`, {
        ipam: { type: "host-local", subnet: "10.243.0.0/16", dataDir: join(f.root.dir, "mv") },
      });
    }
    const { cniVersion: _v, name: _n, type: _t, ...netconf } = f.multusConf({ logLevel: "error" });
    const node: Node = {
      root: f.root,
      socketDir: join(f.root.dir, "run"),
      socketPath: join(f.root.dir, "run", "multus.sock"),
      gateDir: join(f.root.dir, "gates"),
      bridge: f.bridge,
      leaseDir: f.leaseDir,
      netconf,
      thinConfig: join(f.root.dir, "thin.conf"),
      namespaces: [],
      cleanup: () => Promise.resolve(),
    };
    await Deno.writeTextFile(node.thinConfig, JSON.stringify(f.multusConf()));
    const env: Record<string, string> = { MULTUS_NODE_NAME: NODE_NAME };
    if (V8_FLAGS) env.DENO_V8_FLAGS = V8_FLAGS;
    // With --snapshot the daemon runs as dev-multus runs it, plus the inspector.
    const wrapper = SNAPSHOT
      ? [
        "sh",
        "-c",
        `shift; exec "${Deno.execPath()}" run --quiet --inspect=127.0.0.1:${INSPECT_PORT} ` +
        `--cached-only --config "${REPO_ROOT}/deno.json" --allow-all "${REPO_ROOT}/src/main.ts" "$@"`,
        "sh",
      ]
      : undefined;
    daemon = await startDaemon(node, {}, { env, wrapper });
    const running = daemon;
    const conf = shimConf(node);
    const heap = async () => {
      const text = await running.metrics();
      return {
        used: metricValue(text, 'process_heap_bytes{kind="used"}'),
        total: metricValue(text, 'process_heap_bytes{kind="total"}'),
        external: metricValue(text, 'process_heap_bytes{kind="external"}'),
        pods: metricValue(text, 'multus_daemon_cache_objects{resource="pods"}'),
      };
    };
    const call = async (
      command: string,
      pod: { name: string; uid: string; id: string },
      ns: TestNetns,
    ) => {
      const res = await socketRequest(
        node.socketPath,
        "POST",
        "/cni",
        cniBody({
          CNI_COMMAND: command,
          CNI_CONTAINERID: pod.id,
          CNI_NETNS: ns.path,
          CNI_IFNAME: "eth0",
          CNI_PATH: [f.root.binDir, SYSTEM_CNI_DIR].join(":"),
          CNI_ARGS:
            `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.id};K8S_POD_UID=${pod.uid}`,
        }, conf),
      );
      if (res.status !== 200) throw new Error(`${command} ${pod.name}: ${res.status} ${res.text}`);
    };
    const idle = async () => {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Heap first: with --expose-gc a scrape collects first (a debug build), then RSS shows it.
      const figures = await heap();
      return { ...(await memoryOf(running.pid)), ...figures };
    };
    print(
      `daemon: ${NADS} NADs, ${ROUNDS} rounds x ${PODS} pods (ADD+DEL), V8 flags: ${
        V8_FLAGS || "none"
      }`,
    );
    print("round  requests  RSS MiB  HWM MiB  heap used  heap total  external  cached pods");
    const row = (round: string, requests: number, m: Awaited<ReturnType<typeof idle>>) =>
      print(
        `${round.padStart(5)}  ${String(requests).padStart(8)}  ${m.rss.toFixed(1).padStart(7)}  ${
          m.hwm.toFixed(1).padStart(7)
        }  ${mib(m.used).padStart(9)}  ${mib(m.total).padStart(10)}  ${
          mib(m.external).padStart(8)
        }  ${String(m.pods).padStart(11)}`,
      );
    row("start", 0, await idle());
    let requests = 0;
    const cpuStart = await cpuSeconds(running.pid);
    for (let round = 1; round <= ROUNDS; round++) {
      for (let i = 0; i < PODS; i++) {
        const name = `mem-${round}-${i}-${uniqueSuffix()}`;
        const stored = f.api.setPod({
          metadata: {
            name,
            namespace: "default",
            annotations: { "k8s.v1.cni.cncf.io/networks": `mv-${i % NADS}` },
          },
          spec: { nodeName: NODE_NAME },
        });
        const ns = await TestNetns.create();
        namespaces.add(ns);
        const pod = {
          name,
          uid: stored.metadata.uid!,
          id: `mem${uniqueSuffix()}${uniqueSuffix()}`,
        };
        await call("ADD", pod, ns);
        await call("DEL", pod, ns);
        requests += 2;
        f.api.deletePod("default", name);
        await ns.remove();
        namespaces.delete(ns);
      }
      row(String(round), requests, await idle());
    }
    if (SNAPSHOT) await heapSnapshot(SNAPSHOT);
    print(
      `daemon CPU over the rounds: ${((await cpuSeconds(running.pid)) - cpuStart).toFixed(2)} s`,
    );
  } finally {
    if (daemon) await stopDaemon(daemon);
    for (const ns of namespaces) await ns.remove();
    await f.cleanup();
  }
}

/** Collects garbage in the daemon and writes its heap snapshot to `path` (inspector protocol). */
async function heapSnapshot(path: string): Promise<void> {
  const targets = await (await fetch(`http://127.0.0.1:${INSPECT_PORT}/json/list`)).json();
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve) => socket.onopen = resolve);
  const chunks: string[] = [];
  let id = 0;
  const pending = new Map<number, () => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
    else if (message.id !== undefined) pending.get(message.id)?.();
  };
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<void>((resolve) => {
      pending.set(++id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send("HeapProfiler.enable");
  await send("HeapProfiler.collectGarbage");
  await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  socket.close();
  await Deno.writeTextFile(path, chunks.join(""));
  print(`heap snapshot: ${path}`);
}

/** User plus system CPU seconds of a process. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

await main();
