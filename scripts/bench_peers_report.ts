/**
 * @module
 * The report of `scripts/bench-peers` (docs/benchmarks-peers.md) from measured samples: ADD
 * and DEL median / p90 per implementation and scenario, ratios to Go Multus thin and thick,
 * API requests per ADD, the daemons' memory and the shims' start-up, and the issue's targets
 * marked met or missed. Pure functions of the numbers, so that tests can check the arithmetic
 * on canned samples (tests/scripts/bench_peers_report_test.ts).
 */

/** The implementations measured side by side. */
export type ImplId =
  | "oursThin"
  | "oursThinSource"
  | "oursDaemon"
  | "goThin"
  | "goThick"
  | "floor";

/** How they are named in the report, in table order. */
export const IMPL_LABELS: Record<ImplId, string> = {
  oursThin: "ours, thin (bundled program)",
  oursThinSource: "ours, thin (`deno run` launcher, from source)",
  oursDaemon: "ours, daemon mode (shim + `multus daemon`)",
  goThin: "Go Multus v4.0.2, thin (`multus`)",
  goThick: "Go Multus v4.0.2, thick (`multus-shim` + `multus-daemon`)",
  floor: "floor: the delegates called directly",
};

/** Pods arriving one per round with a pause between rounds, or each right after the last. */
export type Arrival = "spaced" | "back-to-back";

/** The API requests one ADD caused, by kind. */
export interface RequestCount {
  podGet: number;
  nadGet: number;
  statusWrite: number;
  events: number;
  other: number;
  /** Requests other than events that arrived while the ADD ran (its critical path). */
  critical: number;
}

/** The samples of one implementation in one scenario (ms). */
export interface ImplSamples {
  add: number[];
  del: number[];
  /** One entry per successful ADD. */
  requests: RequestCount[];
  /** ADDs or DELs that failed (excluded from the times). */
  failures: number;
  /** The first failure's output, to show. */
  firstError?: string;
}

/** One scenario: a number of extra networks and an arrival pattern. */
export interface Scenario {
  networks: number;
  arrival: Arrival;
  impls: Partial<Record<ImplId, ImplSamples>>;
}

/** Memory and start-up figures of one daemon. */
export interface DaemonFigures {
  /** VmRSS after start, cache sync and warm-up, idle (MiB). */
  idleRssMiB: number;
  /** VmRSS idle after every scenario ran (MiB). */
  idleAfterRssMiB: number;
  /** VmHWM over the burst (peak reset before it), MiB. */
  burstPeakMiB: number;
  /** Wall time of the burst's ADDs and DELs, from the first spawn to the last exit (ms). */
  burstAddMs: number;
  burstDelMs: number;
  burstFailures: number;
  /** Median wall of an ADD through the shim and of the same request sent on the socket. */
  shimAddMs?: number;
  directAddMs?: number;
  /** Median VERSION start-up of the shim binary. */
  shimVersionMs?: number;
  /** Why shim start-up could not be measured, when it could not. */
  shimNote?: string;
}

/** Everything the report is made of. */
export interface PeersResults {
  command: string;
  date: string;
  quick: boolean;
  host: Record<string, string>;
  pods: number;
  spacingMs: number;
  apiLatencyMs: number;
  burstPods: number;
  backgroundPods: number;
  backgroundNads: number;
  /** 1-minute load averages sampled during the run. */
  loads: number[];
  durationS: number;
  scenarios: Scenario[];
  daemons: { oursDaemon?: DaemonFigures; goThick?: DaemonFigures };
  /** Requests our shim ran itself because the daemon declined or was absent. */
  oursFallbacks: number;
  oursDaemonRequests: number;
  /** How our thin program ran (what "ours, thin" is). */
  oursProgram: string;
  notes: string[];
}

/** Median, 90th percentile (nearest rank), in ms. */
export interface Stats {
  median: number;
  p90: number;
  n: number;
}

/** Median and nearest-rank p90 of the samples; undefined for none. */
export function stats(samples: number[]): Stats | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  const p90 = sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)];
  return { median, p90, n: sorted.length };
}

/** `ours / theirs` of two medians, undefined when either is missing or theirs is 0. */
export function ratio(ours: Stats | undefined, theirs: Stats | undefined): number | undefined {
  if (!ours || !theirs || theirs.median === 0) return undefined;
  return ours.median / theirs.median;
}

const ms = (v: number) => (v < 10 ? v.toFixed(1) : v.toFixed(0));
const fmtStats = (s: Stats | undefined) => (s ? `${ms(s.median)} / ${ms(s.p90)}` : "–");
const fmtRatio = (r: number | undefined) => (r === undefined ? "–" : `${r.toFixed(2)}×`);
const mib = (v: number | undefined) => (v === undefined ? "–" : `${v.toFixed(1)} MiB`);

/** The median request count of each kind, and a one-line description. */
export function describeRequests(counts: RequestCount[]): string {
  if (counts.length === 0) return "–";
  const med = (pick: (c: RequestCount) => number) => stats(counts.map(pick))!.median;
  const total = med((c) => c.podGet + c.nadGet + c.statusWrite + c.events + c.other);
  const parts = ([
    [med((c) => c.podGet), "pod GET"],
    [med((c) => c.nadGet), "NAD GET"],
    [med((c) => c.statusWrite), "status write"],
    [med((c) => c.events), "events"],
    [med((c) => c.other), "other"],
  ] as [number, string][]).filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  return `${total}${parts.length ? ` (${parts.join(", ")})` : ""}; ${
    med((c) => c.critical)
  } during the ADD`;
}

/** One target of the issue, checked against the figures. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** undefined when a figure is missing. */
  met: boolean | undefined;
}

function scenarioOf(r: PeersResults, networks: number, arrival: Arrival): Scenario | undefined {
  return r.scenarios.find((s) => s.networks === networks && s.arrival === arrival);
}

function addStats(s: Scenario | undefined, impl: ImplId): Stats | undefined {
  const samples = s?.impls[impl];
  return samples ? stats(samples.add) : undefined;
}

function ratioCheck(
  r: PeersResults,
  target: string,
  networks: number,
  arrival: Arrival,
  theirs: ImplId,
  limit: number,
): TargetCheck {
  const s = scenarioOf(r, networks, arrival);
  const value = ratio(addStats(s, "oursDaemon"), addStats(s, theirs));
  return {
    target,
    measured: value === undefined
      ? "not measured"
      : `${value.toFixed(2)}× (${fmtStats(addStats(s, "oursDaemon"))} ms against ${
        fmtStats(addStats(s, theirs))
      } ms)`,
    met: value === undefined ? undefined : value <= limit,
  };
}

function limitCheck(target: string, value: number | undefined, limit: number, unit: string) {
  return {
    target,
    measured: value === undefined ? "not measured" : `${ms(value)} ${unit}`,
    met: value === undefined ? undefined : value <= limit,
  };
}

/** The issue's targets, each with what was measured and whether it is met. */
export function targetChecks(r: PeersResults): TargetCheck[] {
  const spaced1 = scenarioOf(r, 1, "spaced");
  const thin = addStats(spaced1, "oursThin");
  const floor = addStats(spaced1, "floor");
  const critical = spaced1?.impls.oursDaemon?.requests;
  const criticalMedian = critical?.length
    ? stats(critical.map((c) => c.critical))!.median
    : undefined;
  const checks: TargetCheck[] = [
    ratioCheck(
      r,
      "daemon, 1 network, spaced: ADD median ≤ 0.85× Go thin",
      1,
      "spaced",
      "goThin",
      0.85,
    ),
    ratioCheck(
      r,
      "daemon, 1 network, spaced: ADD median ≤ 1.0× Go thick",
      1,
      "spaced",
      "goThick",
      1.0,
    ),
    ratioCheck(
      r,
      "daemon, 1 network, back to back: ADD median ≤ 0.3× Go thick",
      1,
      "back-to-back",
      "goThick",
      0.3,
    ),
    ratioCheck(
      r,
      "daemon, 16 networks, spaced: ADD median ≤ 0.4× Go thin",
      16,
      "spaced",
      "goThin",
      0.4,
    ),
    ratioCheck(
      r,
      "daemon, 16 networks, back to back: ADD median ≤ 0.4× Go thin",
      16,
      "back-to-back",
      "goThin",
      0.4,
    ),
    limitCheck(
      "daemon, 1 network, spaced: 1 API request on the ADD's critical path (median)",
      criticalMedian,
      1,
      "requests",
    ),
    limitCheck(
      `daemon RSS idle with ${r.backgroundPods} pods and ${r.backgroundNads} NADs ≤ 80 MiB`,
      r.daemons.oursDaemon?.idleRssMiB,
      80,
      "MiB",
    ),
    limitCheck(
      `daemon RSS peak during a ${r.burstPods}-pod burst ≤ 200 MiB`,
      r.daemons.oursDaemon?.burstPeakMiB,
      200,
      "MiB",
    ),
    limitCheck(
      "thin, 1 network, spaced: ADD overhead over the delegates' own time ≤ 140 ms (median)",
      thin && floor ? thin.median - floor.median : undefined,
      140,
      "ms",
    ),
  ];
  return checks;
}

const verdict = (met: boolean | undefined) =>
  met === undefined ? "not measured" : met ? "**met**" : "**missed**";

/** The latency table: one row per scenario and implementation, with the ratios. */
export function latencyTable(r: PeersResults): string {
  const lines = [
    "| networks | arrival | implementation | ADD median / p90 | ADD ×Go thin | ADD ×Go thick | DEL median / p90 | DEL ×Go thin | DEL ×Go thick | API requests per ADD (median) | failed |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
  ];
  for (const s of r.scenarios) {
    const goThin = s.impls.goThin;
    const goThick = s.impls.goThick;
    for (const id of Object.keys(IMPL_LABELS) as ImplId[]) {
      const samples = s.impls[id];
      if (!samples) continue;
      const add = stats(samples.add);
      const del = stats(samples.del);
      const vs = (theirs: ImplSamples | undefined, pick: "add" | "del") =>
        id === "goThin" && theirs === goThin || id === "goThick" && theirs === goThick
          ? "1×"
          : fmtRatio(ratio(pick === "add" ? add : del, theirs && stats(theirs[pick])));
      lines.push(
        `| ${s.networks} | ${s.arrival} | ${IMPL_LABELS[id]} | ${fmtStats(add)} | ${
          vs(goThin, "add")
        } | ${vs(goThick, "add")} | ${fmtStats(del)} | ${vs(goThin, "del")} | ${
          vs(goThick, "del")
        } | ${id === "floor" ? "0" : describeRequests(samples.requests)} | ${samples.failures} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The daemons' memory and the shims' start-up, ours beside Go's. */
export function daemonTable(r: PeersResults): string {
  const ours = r.daemons.oursDaemon;
  const go = r.daemons.goThick;
  const ratioOf = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? "–" : fmtRatio(a / b);
  const row = (what: string, a: number | undefined, b: number | undefined, fmt = mib) =>
    `| ${what} | ${fmt(a)} | ${fmt(b)} | ${ratioOf(a, b)} |`;
  const msOrDash = (v: number | undefined) => (v === undefined ? "–" : `${ms(v)} ms`);
  const startup = (d: DaemonFigures | undefined) =>
    d?.shimAddMs === undefined || d.directAddMs === undefined
      ? undefined
      : d.shimAddMs - d.directAddMs;
  return [
    "| measurement | ours (`multus daemon`) | Go Multus v4.0.2 (`multus-daemon`) | ours / Go |",
    "|---|---:|---:|---:|",
    row(
      `RSS idle, ${r.backgroundPods} pods and ${r.backgroundNads} NADs in the cluster, after warm-up`,
      ours?.idleRssMiB,
      go?.idleRssMiB,
    ),
    row("RSS idle after every scenario", ours?.idleAfterRssMiB, go?.idleAfterRssMiB),
    row(
      `RSS peak (VmHWM) during a ${r.burstPods}-pod burst (ADD then DEL)`,
      ours?.burstPeakMiB,
      go?.burstPeakMiB,
    ),
    row(`burst: ${r.burstPods} ADDs at once, wall`, ours?.burstAddMs, go?.burstAddMs, msOrDash),
    row(`burst: ${r.burstPods} DELs at once, wall`, ours?.burstDelMs, go?.burstDelMs, msOrDash),
    `| burst: failed calls | ${ours?.burstFailures ?? "–"} | ${go?.burstFailures ?? "–"} | |`,
    row("ADD through the shim (median, 1 network)", ours?.shimAddMs, go?.shimAddMs, msOrDash),
    row(
      "the same request sent on the socket by the bench (median)",
      ours?.directAddMs,
      go?.directAddMs,
      msOrDash,
    ),
    row("shim start-up: the two above subtracted", startup(ours), startup(go), msOrDash),
    row("shim VERSION start-up (median)", ours?.shimVersionMs, go?.shimVersionMs, msOrDash),
    ...[ours?.shimNote, go?.shimNote].filter((n) => n).map((n) => `| note | ${n} | | |`),
  ].join("\n");
}

/** The targets table. */
export function targetsTable(r: PeersResults): string {
  return [
    "| target (issue 11) | measured | verdict |",
    "|---|---|---|",
    ...targetChecks(r).map((c) => `| ${c.target} | ${c.measured} | ${verdict(c.met)} |`),
  ].join("\n");
}

/** Min / mean / max of the sampled load averages. */
export function loadSummary(loads: number[]): string {
  if (loads.length === 0) return "not sampled";
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  return `min ${Math.min(...loads).toFixed(2)}, mean ${mean.toFixed(2)}, max ${
    Math.max(...loads).toFixed(2)
  } (${loads.length} samples)`;
}

/** docs/benchmarks-peers.md. */
export function reportDoc(r: PeersResults): string {
  const { host } = r;
  return [
    "# Benchmarks: ours against Go Multus v4.0.2, thin and thick",
    "",
    "Generated by `scripts/bench-peers`; do not edit by hand. Times are wall-clock milliseconds",
    "from spawning the CNI binary to its exit, as a container runtime sees them: **median / p90**",
    `of ${r.pods} pods per implementation and scenario. Ratios are ours / Go of the medians`,
    "(below 1× is faster than Go).",
    "",
    "- Every implementation runs against the same test API server (`tests/k8s_api/server.ts`,",
    `  TLS, HTTP/2 on 127.0.0.1) with **${r.apiLatencyMs} ms added to every request**. Each pod`,
    "  is created in the API server (bound to the bench node) just before its ADD, as the",
    "  kubelet would, gets its own network namespace, and is removed after its DEL.",
    "- Networks: the cluster network (`bridge` + `host-local`) plus N NetworkAttachmentDefinitions",
    "  named in the pod's `k8s.v1.cni.cncf.io/networks` (`macvlan` + `static` on a host veth).",
    `- **spaced**: one pod per implementation per round, rounds ${r.spacingMs} ms apart at least`,
    "  (implementations interleaved, the first rotating, so that the machine's load hits all",
    "  alike); then the DELs the same way. **back to back**: each implementation's pods one",
    "  right after the other (no pause), then its DELs.",
    `- **ours, thin**: ${r.oursProgram}. Go's binaries are static Go programs.`,
    "- **ours, daemon mode**: our binary as `multus-shim` (type `multus-shim`, with the thin",
    "  configuration beside it for fallback) and `multus daemon` with the same kubeconfig and",
    "  `MULTUS_NODE_NAME`. **Go thick**: Go's `multus-shim` and `multus-daemon` (v4.0.2 reads the",
    "  API through the in-cluster service account, here bind-mounted in a private mount",
    "  namespace; it has no pod or NAD informer: every lookup is a GET, under client-go's",
    "  default 5 requests/s limit). **Go thin** writes its status and events as protobuf; the",
    "  test server decodes them (`tests/k8s_api/protobuf.ts`).",
    "- **API requests per ADD**: from the server's request log, the requests naming the pod, the",
    "  events whose involved object is the pod (also those posted after the ADD returned), and",
    '  the NAD GETs while the ADD ran; "during the ADD" counts the non-event ones that arrived',
    "  while it ran (its critical path). Watches and lists are not counted.",
    "- **floor**: the same delegates called directly in the same order (DEL in reverse).",
    "",
    "## Machine and load",
    "",
    `- CPUs: ${host.nproc} × ${host.cpu}; memory ${host.memory}; kernel ${host.kernel}`,
    `- Deno: ${host.deno}`,
    `- date: ${r.date}; the run took ${Math.round(r.durationS)} s`,
    `- load average (1 min) during the run: ${loadSummary(r.loads)}`,
    "",
    "The machine was shared with other work while this ran: absolute figures are only good for",
    "comparing within this run and must be regenerated on an idle machine. The ratios, taken",
    "between implementations measured in the same rounds, are what counts.",
    "",
    "## Command",
    "",
    "```sh",
    r.command,
    "```",
    ...(r.quick
      ? [
        "",
        `**Quick run** (${r.pods} pods per scenario): it checks that the harness works; do not`,
        "quote its figures.",
      ]
      : []),
    "",
    "## Targets",
    "",
    targetsTable(r),
    "",
    "## ADD and DEL latency (ms, median / p90)",
    "",
    latencyTable(r),
    "",
    "## Daemons: memory, bursts, shim start-up",
    "",
    daemonTable(r),
    "",
    "RSS is the daemon process's `VmRSS` (`VmHWM` for the peak, reset through",
    "`/proc/<pid>/clear_refs` before the burst) from `/proc/<pid>/status`; delegates are child",
    `processes and not counted. The ${r.backgroundPods} pods (bound to the bench node) and`,
    `${r.backgroundNads} NADs are realistic objects (\`tests/helpers/realistic_objects.ts\`) stored`,
    "before the daemons start. Shim start-up is the shim's ADD wall minus the same request sent",
    "by the bench straight to the daemon's socket, interleaved pod by pod.",
    "",
    `Our daemon ran ${r.oursDaemonRequests} requests through its shim; ${r.oursFallbacks} of them`,
    "ran in the shim itself (fallback to thin: the daemon declined or was absent).",
    ...(r.notes.length ? ["", "## Notes", "", ...r.notes.map((n) => `- ${n}`)] : []),
    "",
  ].join("\n");
}
