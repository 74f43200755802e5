/**
 * @module
 * The benchmark report: ADD and DEL latency of the plugin against calling the same delegates
 * directly (the floor), in delegates mode (no API) and in Kubernetes mode for 0, 1, 4 and 16
 * extra networks with 0 and 5 ms of API latency; API requests per ADD; peak RSS; VERSION
 * start-up; rounds of 30 concurrent ADDs and DELs with the CPU time they use. Writes
 * docs/benchmarks.md and docs/latency.svg and prints the tables. Run it as root through
 * `scripts/bench` (`--quick` for fewer runs, to check that the report is produced).
 *
 * Everything runs on this machine: network namespaces and links it creates (and removes), the
 * test API server on 127.0.0.1.
 */

import { join } from "node:path";
import {
  type CniCall,
  type PluginRun,
  REPO_ROOT,
  startPlugin,
  SYSTEM_CNI_DIR,
  type TestRoot,
} from "../tests/helpers/plugin_run.ts";
import { type HostVeth, sh, TestNetns } from "../tests/helpers/netns.ts";
import { type TestApiServer } from "../tests/k8s_api/server.ts";
import { startK8sFixture } from "../tests/helpers/k8s_fixture.ts";

const QUICK = Deno.args.includes("--quick");
/** Measure the launcher running `src/main.ts` from source instead of the bundled program. */
const FROM_SOURCE = Deno.args.includes("--from-source");
const RUNS = QUICK ? 5 : 20;
const WARMUP = QUICK ? 1 : 2;
const NETWORKS = [0, 1, 4, 16];
const API_LATENCIES = [0, 5];
const CONCURRENT = 30;
/** Rounds of the concurrency batch: one round is one sample, and one sample proves nothing. */
const CONCURRENT_ROUNDS = QUICK ? 2 : 5;
const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** Median, 90th percentile (nearest rank) and maximum, in ms. */
interface Stats {
  median: number;
  p90: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, p90: rank(0.9), max: sorted[sorted.length - 1] };
}

const fmt = (ms: number) => ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
const fmtStats = (s: Stats) => `${fmt(s.median)} / ${fmt(s.p90)} / ${fmt(s.max)}`;

/** What one timed run printed and returned, and its time from spawn to exit. */
interface Exec extends PluginRun {
  ms: number;
}

/** Runs a binary (optionally under a wrapper command) with a CNI call; times it. */
async function timedRun(binary: string, call: CniCall, wrapper: string[] = []): Promise<Exec> {
  const started = performance.now();
  const { code, stdout, stderr } = await startPlugin(binary, call, wrapper).done;
  return { code, stdout, stderr, ms: performance.now() - started };
}

/** A VERSION call: no container, no configuration. */
const VERSION_CALL: CniCall = { command: "VERSION", config: "" };

/** A call for the bench pod with `config` on stdin; `path` is CNI_PATH. */
function cniCall(
  command: string,
  containerId: string,
  netns: string,
  ifName: string,
  path: string,
  config: string,
): CniCall {
  return {
    command,
    containerId,
    netns,
    ifName,
    args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod",
    path: path.split(":"),
    config,
  };
}

function must(run: Exec, what: string): Exec {
  if (run.code !== 0) throw new Error(`${what} failed (${run.code}): ${run.stdout} ${run.stderr}`);
  return run;
}

interface Bench {
  cleanup(): Promise<void>;
  root: TestRoot;
  api: TestApiServer;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  clusterFile: string;
  bridgeConf: Record<string, unknown>;
  macvlanConf(i: number): Record<string, unknown>;
  kubeconfig: string;
  octet: number;
}

let counter = 0;
const newId = (tag: string) => `bench-${tag}-${Date.now().toString(36)}-${counter++}`;

/** How the plugin gets its networks: a static `delegates` list, or the API server. */
type Mode = "delegates" | "kubernetes";

/** One ADD and one DEL through the plugin; returns [addMs, delMs, apiRequests]. */
async function pluginRound(b: Bench, mode: Mode): Promise<[number, number, string[]]> {
  const id = newId("p");
  const multus = join(b.root.binDir, "multus");
  const conf = mode === "delegates"
    ? {
      cniVersion: "1.0.0",
      name: "multus-bench",
      type: "multus",
      delegates: [b.bridgeConf],
      cniDir: b.root.cniDir,
      binDir: b.root.binDir,
    }
    : {
      cniVersion: "1.0.0",
      name: "multus-bench",
      type: "multus",
      kubeconfig: b.kubeconfig,
      clusterNetwork: b.clusterFile,
      cniDir: b.root.cniDir,
      binDir: b.root.binDir,
      confDir: b.root.confDir,
    };
  const path = `${b.root.binDir}:${SYSTEM_CNI_DIR}`;
  b.api.clearRequests();
  const add = must(
    await timedRun(multus, cniCall("ADD", id, b.ns.path, "eth0", path, JSON.stringify(conf))),
    "plugin ADD",
  );
  const requests = b.api.requests().map((r) =>
    `${r.method} ${
      r.path.includes("/events")
        ? "events"
        : r.path.includes("network-attachment")
        ? "nad"
        : r.path.endsWith("/status")
        ? "status"
        : "pod"
    }`
  );
  const del = must(
    await timedRun(multus, cniCall("DEL", id, b.ns.path, "eth0", path, JSON.stringify(conf))),
    "plugin DEL",
  );
  return [add.ms, del.ms, requests];
}

/** The same delegates called directly, in the same order (DEL in reverse). */
async function floorRound(b: Bench, networks: number): Promise<[number, number]> {
  const id = newId("f");
  const delegates: [string, string, Record<string, unknown>][] = [["bridge", "eth0", b.bridgeConf]];
  for (let i = 1; i <= networks; i++) {
    delegates.push(["macvlan", `net${i}`, { ...b.macvlanConf(i), name: `mv-${i}` }]);
  }
  const started = performance.now();
  for (const [type, ifName, conf] of delegates) {
    must(
      await timedRun(
        join(SYSTEM_CNI_DIR, type),
        cniCall("ADD", id, b.ns.path, ifName, SYSTEM_CNI_DIR, JSON.stringify(conf)),
      ),
      `floor ADD ${type}`,
    );
  }
  const addMs = performance.now() - started;
  const delStarted = performance.now();
  for (const [type, ifName, conf] of [...delegates].reverse()) {
    must(
      await timedRun(
        join(SYSTEM_CNI_DIR, type),
        cniCall("DEL", id, b.ns.path, ifName, SYSTEM_CNI_DIR, JSON.stringify(conf)),
      ),
      `floor DEL ${type}`,
    );
  }
  return [addMs, performance.now() - delStarted];
}

interface Row {
  networks: number;
  mode: Mode;
  /** Injected API latency; undefined in delegates mode. */
  apiMs: number | undefined;
  pluginAdd: Stats;
  pluginDel: Stats;
  floorAdd: Stats;
  floorDel: Stats;
  requests: string[];
}

function describeRequests(requests: string[]): string {
  if (requests.length === 0) return "0";
  const count = (what: string) => requests.filter((r) => r === what).length;
  const parts = [
    [count("GET pod"), "pod GET"],
    [count("GET nad"), "NAD GET"],
    [count("PATCH status") + count("PUT status"), "status write"],
    [count("POST events"), "events"],
  ].filter(([n]) => (n as number) > 0).map(([n, what]) =>
    `${n} ${n === 1 && what === "events" ? "event" : what}`
  );
  return `${requests.length} (${parts.join(", ")})`;
}

async function rssOf(binary: string, call: CniCall): Promise<number> {
  const out = await Deno.makeTempFile();
  try {
    const wrapper = [
      "python3",
      "-c",
      "import resource,subprocess,sys\n" +
      "r=subprocess.run(sys.argv[2:])\n" +
      "open(sys.argv[1],'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n" +
      "sys.exit(r.returncode)",
      out,
    ];
    must(await timedRun(binary, call, wrapper), `rss of ${binary}`);
    return Number(await Deno.readTextFile(out)) / 1024;
  } finally {
    await Deno.remove(out).catch(() => {});
  }
}

async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const meminfo = await Deno.readTextFile("/proc/meminfo");
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0);
  return {
    nproc: (await sh(["nproc"])).trim(),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memory: `${(kb / 1024 / 1024).toFixed(1)} GiB`,
    kernel: Deno.osRelease(),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    plugins: `Debian containernetworking-plugins in ${SYSTEM_CNI_DIR}`,
    load: (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", "),
  };
}

/**
 * Replaces the launcher in the bin dir with the bundled program (what `deno compile --bundle`
 * embeds) run by the same Deno with the release permission flags, unless --from-source.
 */
async function useBundle(binDir: string, dir: string): Promise<void> {
  if (FROM_SOURCE) return;
  const bundle = join(dir, "multus.js");
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "deno", "--minify", "-o", bundle, "src/main.ts"],
    cwd: REPO_ROOT,
    stderr: "piped",
  }).output();
  if (!built.success) throw new Error(new TextDecoder().decode(built.stderr));
  const flags = (await Deno.readTextFile(join(REPO_ROOT, "scripts", "permission_flags"))).trim();
  const launcher = join(binDir, "multus");
  await Deno.remove(launcher);
  await Deno.writeTextFile(
    launcher,
    `#!/bin/sh\nDENO_NO_UPDATE_CHECK=1 exec "${Deno.execPath()}" run --quiet --no-config ${flags} "${bundle}" "$@"\n`,
  );
  await Deno.chmod(launcher, 0o755);
}

async function setup(): Promise<Bench> {
  const octet = 10 + Math.floor(Math.random() * 200);
  const env = await startK8sFixture({ clusterSubnet: `10.240.${octet}` });
  const { root, api, ns, veth, bridge, leaseDir, kubeconfig } = env;
  await useBundle(root.binDir, root.dir);
  const clusterFile = env.clusterNetworkFile;
  const bridgeConf = JSON.parse(await Deno.readTextFile(clusterFile)) as Record<string, unknown>;
  const macvlanConf = (i: number) => ({
    cniVersion: "1.0.0",
    type: "macvlan",
    master: veth.a,
    mode: "bridge",
    ipam: { type: "static", addresses: [{ address: `10.239.${octet}.${10 + i}/24` }] },
  });
  for (let i = 1; i <= Math.max(...NETWORKS); i++) {
    api.setNad({
      metadata: { name: `mv-${i}`, namespace: "bench" },
      spec: { config: JSON.stringify(macvlanConf(i)) },
    });
  }
  return {
    cleanup: env.cleanup,
    root,
    api,
    ns,
    veth,
    bridge,
    leaseDir,
    clusterFile,
    bridgeConf,
    macvlanConf,
    kubeconfig,
    octet,
  };
}

async function teardown(b: Bench): Promise<void> {
  await b.cleanup();
}

async function latencyRows(b: Bench): Promise<Row[]> {
  const rows: Row[] = [];
  const floors = new Map<number, [Stats, Stats]>();
  for (const networks of NETWORKS) {
    const fAdd: number[] = [];
    const fDel: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const [a, d] = await floorRound(b, networks);
      if (i >= WARMUP) {
        fAdd.push(a);
        fDel.push(d);
      }
    }
    floors.set(networks, [stats(fAdd), stats(fDel)]);
    // Delegates mode has the cluster network only: it is measured at 0 extra networks.
    const modes: [Mode, number | undefined][] = [
      ...(networks === 0 ? [["delegates", undefined] as [Mode, undefined]] : []),
      ...API_LATENCIES.map((ms): [Mode, number] => ["kubernetes", ms]),
    ];
    for (const [mode, apiMs] of modes) {
      b.api.clearFaults();
      if (apiMs) b.api.inject({ kind: "latency", ms: apiMs });
      b.api.setPod({
        metadata: {
          name: "pod",
          namespace: "bench",
          annotations: networks === 0 ? {} : {
            "k8s.v1.cni.cncf.io/networks": Array.from({ length: networks }, (_, i) => `mv-${i + 1}`)
              .join(","),
          },
        },
      });
      const add: number[] = [];
      const del: number[] = [];
      let requests: string[] = [];
      for (let i = 0; i < WARMUP + RUNS; i++) {
        const [a, d, r] = await pluginRound(b, mode);
        if (i >= WARMUP) {
          add.push(a);
          del.push(d);
          requests = r;
        }
      }
      const [floorAdd, floorDel] = floors.get(networks)!;
      rows.push({
        networks,
        mode,
        apiMs,
        pluginAdd: stats(add),
        pluginDel: stats(del),
        floorAdd,
        floorDel,
        requests,
      });
      print(
        `  ${networks} extra networks${
          mode === "delegates" ? " (delegates mode)" : `, Kubernetes mode, API +${apiMs} ms`
        }: ADD ${fmtStats(stats(add))} ms`,
      );
    }
  }
  b.api.clearFaults();
  return rows;
}

/** One kind of concurrent batch (plugin or floor, ADD or DEL), over every round. */
interface Batch {
  /** Wall time of each round, from the first spawn to the last exit. */
  totals: number[];
  /** Each call's own time, spawn to exit, all rounds pooled. */
  calls: number[];
  /** CPU time (user + system) of each round, children and grandchildren included. */
  cpu: number[];
}

interface Concurrency {
  pluginAdd: Batch;
  pluginDel: Batch;
  floorAdd: Batch;
  floorDel: Batch;
}

const emptyBatch = (): Batch => ({ totals: [], calls: [], cpu: [] });

let clockTicks: number | undefined;

/**
 * CPU time (ms) of this process's children that have been waited for, grandchildren included
 * (`cutime` + `cstime` of /proc/self/stat): the difference over a batch is what the batch
 * cost, so a batch whose wall time is far above CPU time / cores was waiting, not computing.
 */
async function childrenCpuMs(): Promise<number> {
  clockTicks ??= Number((await sh(["getconf", "CLK_TCK"])).trim()) || 100;
  const stat = await Deno.readTextFile("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of proc(5); the list here starts at field 3.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
}

/** Runs the calls all at once; records the round's wall time, each call's and the CPU time. */
async function batch(batchOf: Batch, calls: (() => Promise<Exec>)[], what: string): Promise<void> {
  const cpuBefore = await childrenCpuMs();
  const started = performance.now();
  const runs = await Promise.all(calls.map(async (call) => must(await call(), what)));
  batchOf.totals.push(performance.now() - started);
  batchOf.cpu.push(await childrenCpuMs() - cpuBefore);
  batchOf.calls.push(...runs.map((r) => r.ms));
}

/**
 * Rounds of 30 ADDs started at once then 30 DELs, through the plugin (delegates mode, one
 * bridge and one host-local range) and as the floor (30 direct `bridge` calls), each pod in its
 * own network namespace.
 */
async function concurrency(b: Bench): Promise<Concurrency> {
  const namespaces = await Promise.all(
    Array.from({ length: CONCURRENT }, () => TestNetns.create()),
  );
  const result: Concurrency = {
    pluginAdd: emptyBatch(),
    pluginDel: emptyBatch(),
    floorAdd: emptyBatch(),
    floorDel: emptyBatch(),
  };
  try {
    const multus = join(b.root.binDir, "multus");
    const conf = JSON.stringify({
      cniVersion: "1.0.0",
      name: "multus-bench",
      type: "multus",
      delegates: [b.bridgeConf],
      cniDir: b.root.cniDir,
      binDir: b.root.binDir,
    });
    const path = `${b.root.binDir}:${SYSTEM_CNI_DIR}`;
    const bridge = join(SYSTEM_CNI_DIR, "bridge");
    const direct = JSON.stringify(b.bridgeConf);
    for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
      const ids = namespaces.map(() => newId("c"));
      const calls = (binary: string, command: string, config: string, cniPath: string) =>
        namespaces.map((ns, i) => () =>
          timedRun(binary, cniCall(command, ids[i], ns.path, "eth0", cniPath, config))
        );
      await batch(result.pluginAdd, calls(multus, "ADD", conf, path), "concurrent ADD");
      await batch(result.pluginDel, calls(multus, "DEL", conf, path), "concurrent DEL");
      await batch(result.floorAdd, calls(bridge, "ADD", direct, SYSTEM_CNI_DIR), "bridge ADD");
      await batch(result.floorDel, calls(bridge, "DEL", direct, SYSTEM_CNI_DIR), "bridge DEL");
    }
    return result;
  } finally {
    await Promise.all(namespaces.map((ns) => ns.remove()));
  }
}

/** One line (or a lone marker) of the chart. */
interface Series {
  label: string;
  color: string;
  dash?: string;
  /** A single measurement drawn as a square, not a line. */
  marker?: boolean;
  points: [number, number][];
}

/**
 * The SVG chart of median ADD latency against the number of extra networks: the x axis is
 * proportional (16 networks sit 16 times as far from 0 as 1 does), and each line is one mode:
 * Kubernetes mode per API latency, the floor, and delegates mode as a lone marker at 0.
 */
export function latencyChart(rows: Row[]): string {
  const W = 760, H = 460;
  const m = { left: 80, right: 70, top: 50, bottom: 80 };
  const plotW = W - m.left - m.right, plotH = H - m.top - m.bottom;
  const kube = (n: number, api: number) =>
    rows.find((r) => r.networks === n && r.mode === "kubernetes" && r.apiMs === api)!;
  const series: Series[] = API_LATENCIES.map((api, i) => ({
    label: `plugin, Kubernetes mode, API latency +${api} ms`,
    color: ["#1f77b4", "#d62728", "#2ca02c"][i % 3],
    points: NETWORKS.map((n): [number, number] => [n, kube(n, api).pluginAdd.median]),
  }));
  series.push({
    label: "floor: the same delegates called directly",
    color: "#555555",
    dash: "6 4",
    points: NETWORKS.map((n): [number, number] => [n, kube(n, API_LATENCIES[0]).floorAdd.median]),
  });
  const delegates = rows.find((r) => r.mode === "delegates");
  if (delegates) {
    series.push({
      label: `plugin, delegates mode (no API): ${fmt(delegates.pluginAdd.median)} ms`,
      color: "#9467bd",
      marker: true,
      points: [[delegates.networks, delegates.pluginAdd.median]],
    });
  }
  const maxY = Math.max(...series.flatMap((s) => s.points.map((p) => p[1])));
  const step = niceStep(maxY / 5);
  const top = Math.ceil((maxY * 1.08) / step) * step;
  const maxX = Math.max(...NETWORKS);
  const x = (n: number) => m.left + (n / maxX) * plotW;
  const y = (ms: number) => m.top + plotH - (ms / top) * plotH;
  const tick = (v: number) => (step < 1 ? v.toFixed(1) : String(Math.round(v)));
  // The measured counts, and quarters of the axis so that its scale reads at a glance.
  const xTicks = new Set<number>(NETWORKS);
  for (const q of [0.25, 0.5, 0.75]) if (Number.isInteger(q * maxX)) xTicks.add(q * maxX);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="28" font-size="16" font-weight="bold">ADD latency (median) against the number of extra networks</text>`,
  );
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(
      `<line x1="${m.left}" y1="${y(v)}" x2="${m.left + plotW}" y2="${y(v)}" stroke="#e0e0e0"/>`,
      `<text x="${m.left - 8}" y="${y(v) + 4}" text-anchor="end">${tick(v)}</text>`,
    );
  }
  for (const n of [...xTicks].sort((p, q) => p - q)) {
    out.push(
      `<line x1="${x(n)}" y1="${m.top + plotH}" x2="${x(n)}" y2="${
        m.top + plotH + 5
      }" stroke="#333"/>`,
      `<text x="${x(n)}" y="${m.top + plotH + 20}" text-anchor="middle">${n}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + plotH}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top + plotH}" x2="${m.left + plotW}" y2="${
      m.top + plotH
    }" stroke="#333"/>`,
    `<text x="${m.left + plotW / 2}" y="${
      H - 20
    }" text-anchor="middle">extra networks per pod (besides the cluster network)</text>`,
    `<text transform="translate(24 ${
      m.top + plotH / 2
    }) rotate(-90)" text-anchor="middle">milliseconds</text>`,
  );
  for (const s of series) {
    if (s.marker) {
      for (const [n, ms] of s.points) {
        out.push(
          `<rect x="${(x(n) - 5).toFixed(1)}" y="${
            (y(ms) - 5).toFixed(1)
          }" width="10" height="10" fill="${s.color}"/>`,
        );
      }
      continue;
    }
    const pts = s.points.map(([n, ms]) => `${x(n).toFixed(1)},${y(ms).toFixed(1)}`).join(" ");
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    out.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2.5"${dash}/>`,
    );
    for (const [n, ms] of s.points) {
      out.push(
        `<circle cx="${x(n).toFixed(1)}" cy="${y(ms).toFixed(1)}" r="4" fill="${s.color}"/>`,
      );
    }
  }
  // Values at the right end of the lines, pushed apart when they would overlap.
  const labels = series.filter((s) => !s.marker)
    .map((s) => ({ s, v: s.points.find(([n]) => n === maxX)![1] }))
    .map((l) => ({ ...l, y: y(l.v) + 4 }))
    .sort((p, q) => p.y - q.y);
  for (let i = 1; i < labels.length; i++) {
    if (labels[i].y - labels[i - 1].y < 15) labels[i].y = labels[i - 1].y + 15;
  }
  for (const l of labels) {
    out.push(
      `<text x="${x(maxX) + 8}" y="${l.y}" fill="${l.s.color}" font-size="12">${
        fmt(l.v)
      } ms</text>`,
    );
  }
  // Legend in the upper left of the plot, where latency is lowest.
  const lx = m.left + 16, ly = m.top + 14;
  out.push(
    `<rect x="${lx - 8}" y="${ly - 12}" width="360" height="${
      series.length * 22 + 6
    }" fill="#ffffff" stroke="#cccccc"/>`,
  );
  series.forEach((s, i) => {
    const yy = ly + i * 22;
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    out.push(
      s.marker
        ? `<rect x="${lx + 9}" y="${yy - 5}" width="10" height="10" fill="${s.color}"/>`
        : `<line x1="${lx}" y1="${yy}" x2="${
          lx + 28
        }" y2="${yy}" stroke="${s.color}" stroke-width="2.5"${dash}/>`,
      `<text x="${lx + 36}" y="${yy + 4}">${s.label}</text>`,
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * power >= raw) return f * power;
  return 10 * power;
}

function latencyTable(rows: Row[]): string {
  const lines = [
    "| extra networks | mode | API latency | plugin ADD | floor ADD | ADD overhead (median) | plugin DEL | floor DEL | API requests per ADD |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.networks} | ${r.mode} | ${r.apiMs === undefined ? "n/a" : `+${r.apiMs} ms`} | ${
        fmtStats(r.pluginAdd)
      } | ${fmtStats(r.floorAdd)} | +${fmt(r.pluginAdd.median - r.floorAdd.median)} | ${
        fmtStats(r.pluginDel)
      } | ${fmtStats(r.floorDel)} | ${describeRequests(r.requests)} |`,
    );
  }
  return lines.join("\n");
}

/** Start-up and memory: VERSION times and peak RSS, the plugin against `bridge`. */
interface StartupFigures {
  version: Stats;
  floorVersion: Stats;
  rss: { version: number; add0: number; add16: number; bridgeVersion: number };
}

/** What the report is made of. */
interface Results {
  host: Record<string, string>;
  command: string;
  rows: Row[];
  startup: StartupFigures;
  conc: Concurrency;
}

/** VERSION start-up of the plugin and of `bridge` (the floor), at least 20 runs. */
async function measureVersion(b: Bench): Promise<{ version: Stats; floorVersion: Stats }> {
  const multus = join(b.root.binDir, "multus");
  const v: number[] = [];
  const fv: number[] = [];
  for (let i = 0; i < WARMUP + Math.max(RUNS, 20); i++) {
    const run = must(await timedRun(multus, VERSION_CALL), "VERSION");
    const floor = must(
      await timedRun(join(SYSTEM_CNI_DIR, "bridge"), VERSION_CALL),
      "bridge VERSION",
    );
    if (i >= WARMUP) {
      v.push(run.ms);
      fv.push(floor.ms);
    }
  }
  const version = stats(v);
  print(`  VERSION: ${fmtStats(version)} ms`);
  return { version, floorVersion: stats(fv) };
}

/** Peak RSS of VERSION (plugin and `bridge`) and of an ADD with 0 and 16 extra networks. */
async function measureRss(b: Bench): Promise<StartupFigures["rss"]> {
  const multus = join(b.root.binDir, "multus");
  const addConf = (networks: number) =>
    JSON.stringify(
      networks === 0
        ? {
          cniVersion: "1.0.0",
          name: "multus-bench",
          type: "multus",
          delegates: [b.bridgeConf],
          cniDir: b.root.cniDir,
          binDir: b.root.binDir,
        }
        : {
          cniVersion: "1.0.0",
          name: "multus-bench",
          type: "multus",
          kubeconfig: b.kubeconfig,
          clusterNetwork: b.clusterFile,
          cniDir: b.root.cniDir,
          binDir: b.root.binDir,
          confDir: b.root.confDir,
        },
    );
  const path = `${b.root.binDir}:${SYSTEM_CNI_DIR}`;
  const rssAdd = async (networks: number) => {
    b.api.setPod({
      metadata: {
        name: "pod",
        namespace: "bench",
        annotations: {
          "k8s.v1.cni.cncf.io/networks": Array.from({ length: networks }, (_, i) => `mv-${i + 1}`)
            .join(","),
        },
      },
    });
    const id = newId("rss");
    const kb = await rssOf(multus, cniCall("ADD", id, b.ns.path, "eth0", path, addConf(networks)));
    must(
      await timedRun(multus, cniCall("DEL", id, b.ns.path, "eth0", path, addConf(networks))),
      "DEL after RSS",
    );
    return kb;
  };
  const rss = {
    version: await rssOf(multus, VERSION_CALL),
    bridgeVersion: await rssOf(join(SYSTEM_CNI_DIR, "bridge"), VERSION_CALL),
    add0: await rssAdd(0),
    add16: await rssAdd(16),
  };
  print(
    `  peak RSS: VERSION ${rss.version.toFixed(1)} MiB, ADD ${rss.add0.toFixed(1)} / ${
      rss.add16.toFixed(1)
    } MiB`,
  );
  return rss;
}

/** Every measurement, on the bench set up once and torn down after. */
async function measure(): Promise<Omit<Results, "host" | "command">> {
  const b = await setup();
  try {
    const { version, floorVersion } = await measureVersion(b);
    const rows = await latencyRows(b);
    const rss = await measureRss(b);
    const conc = await concurrency(b);
    print(
      `  ${CONCURRENT} concurrent ADDs, ${CONCURRENT_ROUNDS} rounds: ${
        conc.pluginAdd.totals.map(fmt).join(", ")
      } ms; DELs: ${conc.pluginDel.totals.map(fmt).join(", ")} ms`,
    );
    return { rows, startup: { version, floorVersion, rss }, conc };
  } finally {
    await teardown(b);
  }
}

/** The start-up and memory table. */
function startupTable({ version, floorVersion, rss }: StartupFigures): string {
  return [
    "| measurement | plugin | floor | note |",
    "|---|---:|---:|---|",
    `| VERSION start-up (median / p90 / max of ${Math.max(RUNS, 20)}) | ${fmtStats(version)} ms | ${
      fmtStats(floorVersion)
    } ms | floor: Debian's \`bridge\` plugin (Go) |`,
    `| peak RSS, VERSION | ${rss.version.toFixed(1)} MiB | ${
      rss.bridgeVersion.toFixed(1)
    } MiB | floor: \`bridge\` VERSION |`,
    `| peak RSS, ADD, delegates mode (1 network) | ${
      rss.add0.toFixed(1)
    } MiB | | largest of the plugin and its delegates |`,
    `| peak RSS, ADD, 16 extra networks | ${
      rss.add16.toFixed(1)
    } MiB | | largest of the plugin and its delegates |`,
  ].join("\n");
}

/** The concurrency table. */
function concurrencyTableOf(conc: Concurrency): string {
  return [
    `| ${CONCURRENT} calls at once, ${CONCURRENT_ROUNDS} rounds | round total: median / max | one call: median / p90 / max | CPU per round (median) |`,
    "|---|---:|---:|---:|",
    ...([
      ["plugin ADD", conc.pluginAdd],
      ["floor ADD (`bridge`)", conc.floorAdd],
      ["plugin DEL", conc.pluginDel],
      ["floor DEL (`bridge`)", conc.floorDel],
    ] as [string, Batch][]).map(([label, r]) => {
      const total = stats(r.totals);
      return `| ${label} | ${fmt(total.median)} / ${fmt(total.max)} ms | ${
        fmtStats(stats(r.calls))
      } ms | ${fmt(stats(r.cpu).median)} ms |`;
    }),
  ].join("\n");
}

/** docs/benchmarks.md: how it was measured, on what, and the three tables. */
function reportDoc(
  { host, command }: Results,
  tables: { table: string; others: string; concurrencyTable: string },
): string {
  const { table, others, concurrencyTable } = tables;
  return [
    "# Benchmarks",
    "",
    "Generated by `scripts/bench`; do not edit by hand. Times are wall-clock milliseconds from",
    "spawning the process to its exit, as a container runtime sees them: **median / p90 / max**",
    `of ${RUNS} runs per point after ${WARMUP} warm-up run${WARMUP > 1 ? "s" : ""}.`,
    "",
    ...(FROM_SOURCE
      ? [
        "- **plugin**: the plugin run through its launcher (`scripts/dev-multus`: Deno runs",
        "  `src/main.ts` from source with the compiled binary's permission flags), as the runtime",
        "  runs it (`--from-source`).",
      ]
      : [
        "- **plugin**: the bundled program (`deno bundle`, what `deno compile --bundle` embeds)",
        "  run by the same Deno with the compiled binary's permission flags, as the runtime runs",
        "  it (`--from-source` measures `scripts/dev-multus` instead).",
      ]),
    "- **mode**: `delegates` is a static `delegates` list (the cluster network only, no API",
    "  access); `kubernetes` reads the pod and its NetworkAttachmentDefinitions from the test",
    "  API server (TLS on 127.0.0.1) and writes the network-status, with the injected latency",
    "  added to every request.",
    "- **floor**: the same delegate binaries called directly in the same order (DEL in",
    "  reverse): what any meta-plugin must spend. The cluster network is `bridge` + `host-local`;",
    "  each extra network is `macvlan` + `static` on a host veth.",
    "- **ADD overhead**: plugin median minus floor median.",
    "",
    "## Machine",
    "",
    `- CPUs: ${host.nproc} × ${host.cpu}`,
    `- memory: ${host.memory}`,
    `- kernel: ${host.kernel}`,
    `- Deno: ${host.deno}`,
    `- delegates: ${host.plugins}`,
    `- date: ${new Date().toISOString().slice(0, 10)}`,
    `- load average when the run started (1, 5, 15 min): ${host.load}`,
    "",
    "## Command",
    "",
    "```sh",
    command,
    "```",
    ...(QUICK
      ? [
        "",
        `**Quick run** (${RUNS} runs per point, ${CONCURRENT_ROUNDS} concurrency rounds): it checks that`,
        "the report is produced; do not quote its figures. Run `scripts/bench` on an otherwise",
        "idle machine for figures.",
      ]
      : []),
    "",
    "## ADD and DEL latency (ms, median / p90 / max)",
    "",
    table,
    "",
    "![ADD latency against the number of networks](latency.svg)",
    "",
    "## Start-up and memory",
    "",
    others,
    "",
    "Peak RSS comes from `getrusage(RUSAGE_CHILDREN).ru_maxrss` of a python3 wrapper, so for",
    "an ADD it is the largest of the plugin and the delegates it ran.",
    "",
    "## Concurrency",
    "",
    `${CONCURRENT} pods, each in its own network namespace, added at once (delegates mode:`,
    "`bridge` + `host-local`, one bridge, one address range), then deleted at once; the floor",
    `is ${CONCURRENT} direct \`bridge\` calls the same way. Each round is timed from the first`,
    "spawn to the last exit. CPU is the user + system time of the processes of the round",
    "(the plugins and the delegates they ran). A round whose total is close to its CPU time",
    `divided by the ${host.nproc} cores was computing: ${CONCURRENT} plugin start-ups compete for`,
    "the cores, so ADD and DEL rounds take about as long as each other; a total far above it",
    "would mean the calls wait for something.",
    "",
    concurrencyTable,
    "",
  ].join("\n");
}

/** Writes docs/benchmarks.md and docs/latency.svg (formatted) and prints the tables. */
async function writeReport(results: Results): Promise<void> {
  const table = latencyTable(results.rows);
  const others = startupTable(results.startup);
  const concurrencyTable = concurrencyTableOf(results.conc);
  const doc = reportDoc(results, { table, others, concurrencyTable });
  await Deno.mkdir(join(REPO_ROOT, "docs"), { recursive: true });
  await Deno.writeTextFile(join(REPO_ROOT, "docs", "benchmarks.md"), doc);
  await Deno.writeTextFile(join(REPO_ROOT, "docs", "latency.svg"), latencyChart(results.rows));
  // In the repository's style, so `deno fmt --check` stays clean.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "docs/benchmarks.md", "docs/latency.svg"],
    cwd: REPO_ROOT,
  }).output();
  print();
  print(table);
  print();
  print(others);
  print();
  print(concurrencyTable);
  print();
  print("Wrote docs/benchmarks.md and docs/latency.svg");
}

async function main(): Promise<number> {
  if (Deno.uid() !== 0) {
    Deno.stderr.writeSync(
      encoder.encode("scripts/bench must run as root (it creates network namespaces)\n"),
    );
    return 1;
  }
  const command = `scripts/bench${Deno.args.length ? ` ${Deno.args.join(" ")}` : ""}`;
  const host = await machine();
  print(`Benchmark (${QUICK ? "quick: " : ""}${RUNS} runs per point after ${WARMUP} warm-up)`);
  const measured = await measure();
  await writeReport({ host, command, ...measured });
  return 0;
}

if (import.meta.main) Deno.exit(await main());
