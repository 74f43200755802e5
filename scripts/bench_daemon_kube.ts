/**
 * @module
 * Kubernetes-mode ADD through the shim with `multus daemon` running (shared client, watch
 * caches) against the thin plugin, on the bundled program, with the test API server (TLS,
 * HTTP/2) in this process: the cluster network a bridge file, one macvlan NAD per pod. Each
 * run is a new pod (ADD then DEL in one network namespace); before a daemon ADD the script
 * waits until the daemon's pod cache holds the pod, as it would for a pod scheduled a moment
 * before its sandbox. Prints medians and the API requests per ADD from the server's log (on
 * the ADD's path: not the caches' lists and watches, not events).
 *
 *     sudo deno run --allow-all scripts/bench_daemon_kube.ts [--runs N] [--latency MS]
 *
 * `--latency MS` delays every API answer but watch events (as a remote API server would).
 */

import { join } from "node:path";
import { REPO_ROOT } from "../tests/helpers/plugin_run.ts";
import { metricValue } from "../tests/daemon/_helpers.ts";
import {
  assertNoFallback,
  bundle,
  type BundledDaemon,
  machineLine,
  median,
  print,
  sh,
  startBundledDaemon,
  timed,
} from "./_bundled_bench.ts";
import { HostVeth } from "../tests/helpers/netns.ts";
import { type RequestRecord, startTestApiServer } from "../tests/k8s_api/server.ts";

const args = Deno.args;
const option = (name: string, fallback: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback;
const RUNS = option("--runs", 10);
const LATENCY_MS = option("--latency", 0);
const NODE = "bench-node";
/**
 * User + system CPU of a running process and of its children it waited for (the delegates),
 * in milliseconds (clock ticks of 10 ms), as `time` counts a plugin run.
 */
async function processCpuMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").slice(11, 15);
  return fields.reduce((sum, ticks) => sum + Number(ticks), 0) * 10;
}

/** API requests of a log on an ADD's path, by `METHOD resource`. */
function onPath(log: RequestRecord[]): RequestRecord[] {
  return log.filter((r) => r.verb !== "watch" && r.verb !== "list" && !r.path.endsWith("/events"));
}

async function main(): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "multus-bench-daemon-kube-" });
  const netns = `mtbk${crypto.randomUUID().slice(0, 6)}`;
  const bridge = `mtbkb${crypto.randomUUID().slice(0, 5)}`;
  const api = await startTestApiServer();
  const veth = await HostVeth.create();
  let daemon: BundledDaemon | undefined;
  try {
    const ours = await bundle(REPO_ROOT, join(work, "bin"));
    await sh(["ip", "netns", "add", netns]);
    const clusterNetwork = join(work, "10-bridge.conf");
    await Deno.writeTextFile(
      clusterNetwork,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "cluster-bridge",
        type: "bridge",
        bridge,
        isGateway: true,
        ipam: { type: "host-local", subnet: "10.252.7.0/24", dataDir: join(work, "leases") },
      }),
    );
    api.setNad({
      metadata: { name: "mv", namespace: "default" },
      spec: {
        config: JSON.stringify({
          cniVersion: "1.0.0",
          type: "macvlan",
          master: veth.a,
          mode: "bridge",
          ipam: { type: "static", addresses: [{ address: "10.252.8.10/24" }] },
        }),
      },
    });
    const netconf = {
      kubeconfig: await api.writeKubeconfig(),
      clusterNetwork,
      cniDir: join(work, "cache"),
      binDir: "/usr/lib/cni",
      confDir: join(work, "net.d"),
      logToStderr: false,
    };
    const thinText = JSON.stringify({
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      type: "multus",
      ...netconf,
    });
    await Deno.writeTextFile(join(work, "thin.conf"), thinText);
    const socketDir = join(work, "run");
    const shimText = JSON.stringify({
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      type: "multus-shim",
      daemonSocketDir: socketDir,
      thinConfig: join(work, "thin.conf"),
    });
    if (LATENCY_MS > 0) {
      api.inject({ kind: "latency", ms: LATENCY_MS, path: /^(?!.*watch=)/ });
    }

    let podNumber = 0;
    const newPod = () => {
      const name = `pod-${podNumber++}`;
      const pod = api.setPod({
        metadata: {
          name,
          namespace: "default",
          annotations: { "k8s.v1.cni.cncf.io/networks": "mv" },
        },
        spec: { nodeName: NODE },
      });
      return { name, uid: pod.metadata.uid! };
    };
    const env = (command: string, pod: { name: string; uid: string }) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: `ctr-${pod.name}`,
      CNI_NETNS: `/var/run/netns/${netns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS:
        `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`,
    });
    const samples = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    const requests = new Map<string, number[]>();
    const note = (name: string, wallMs: number, cpuMs: number, log: RequestRecord[]) => {
      samples.set(name, [...(samples.get(name) ?? []), wallMs]);
      cpu.set(name, [...(cpu.get(name) ?? []), cpuMs]);
      requests.set(name, [...(requests.get(name) ?? []), onPath(log).length]);
    };

    // Thin plugin: one warm-up, then RUNS pods.
    for (let i = 0; i <= RUNS; i++) {
      const pod = newPod();
      api.clearRequests();
      const { wallMs, cpuMs } = await timed(ours, env("ADD", pod), thinText);
      if (i > 0) note("ADD thin", wallMs, cpuMs, api.requests());
      await timed(ours, env("DEL", pod), thinText);
    }

    // The daemon, from the same bundle.
    daemon = await startBundledDaemon(ours, work, { socketDir, ...netconf }, {
      MULTUS_NODE_NAME: NODE,
    });
    const scrape = daemon.scrape;
    const cachedPods = async () =>
      metricValue(await scrape(), 'multus_daemon_cache_objects{resource="pods"}');
    let lastLog: RequestRecord[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const pod = newPod();
      while (await cachedPods() < podNumber - RUNS - 1) {
        await new Promise((r) => setTimeout(r, 10));
      }
      api.clearRequests();
      const daemonCpu = await processCpuMs(daemon.pid);
      const { wallMs, cpuMs } = await timed(ours, env("ADD", pod), shimText);
      // The daemon's CPU for this ADD (its events may still be posted after the answer).
      await new Promise((r) => setTimeout(r, 50));
      const total = cpuMs + await processCpuMs(daemon.pid) - daemonCpu;
      if (i > 0) note("ADD shim + daemon (pod cached)", wallMs, total, api.requests());
      if (i === RUNS) lastLog = api.requests();
      await timed(ours, env("DEL", pod), shimText);
    }
    await assertNoFallback(socketDir);
    const metrics = await scrape();

    print(
      `# Kubernetes-mode ADD, 1 NAD, shim + daemon vs thin (bundled program, ${RUNS} runs, ` +
        `API latency ${LATENCY_MS} ms, ${new Date().toISOString()})`,
    );
    print();
    print(await machineLine());
    print();
    print(
      "| run | wall median (ms) | wall min (ms) | CPU median (ms) | API requests on the ADD's path |",
    );
    print("| --- | ---: | ---: | ---: | ---: |");
    for (const [name, list] of samples) {
      print(
        `| ${name} | ${median(list).toFixed(1)} | ${Math.min(...list).toFixed(1)} | ${
          median(cpu.get(name)!).toFixed(0)
        } | ${median(requests.get(name)!)} |`,
      );
    }
    print();
    print(
      "CPU: user + system of the plugin process; for the daemon, the shim's plus what the " +
        "daemon used during the ADD (and 50 ms after, its events). Wall times include the " +
        "delegates (bridge, macvlan).",
    );
    print();
    print("The API server's log from the start of the last cached ADD to its end (and 50 ms):");
    print();
    for (const r of lastLog) {
      print(`    ${r.method} ${r.path} → ${r.status} (HTTP/${r.httpVersion}, ${r.verb ?? "-"})`);
    }
    print();
    print(
      `Daemon: ${metricValue(metrics, 'multus_daemon_events_total{result="sent"}')} events sent, ` +
        `${metricValue(metrics, 'multus_daemon_events_total{result="dropped"}')} dropped; RSS ${
          (metricValue(metrics, "process_resident_memory_bytes") / 1024 / 1024).toFixed(1)
        } MiB`,
    );
  } finally {
    await daemon?.stop();
    await sh(["ip", "netns", "del", netns]).catch(() => {});
    await sh(["ip", "link", "del", bridge]).catch(() => {});
    await veth.remove();
    await api.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

await main();
