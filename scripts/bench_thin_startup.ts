/**
 * @module
 * The thin plugin's Kubernetes-mode ADD overhead: an ADD of a pod with the cluster network and
 * one NAD (bridge + macvlan) through the plugin, minus the same two delegates called directly
 * in the same round (what any meta-plugin must spend). This tree against a base revision,
 * interleaved run by run so both see the same load; then where one ADD's time goes, read from
 * the debug log of extra runs (a debug log costs time itself: those runs are not in the
 * overhead figures).
 *
 *     deno run --allow-all scripts/bench_thin_startup.ts [--runs N] [--base REV] [--from-source]
 *
 * `--base REV` (default `main`) is checked out into a temporary worktree (removed at the end);
 * `--base none` measures this tree alone. Without `--from-source` each tree runs as the
 * bundled program (`deno bundle`, what `deno compile --bundle` embeds) under the release
 * permission flags; with it, each tree's `scripts/dev-multus` (`deno run src/main.ts`). Run as
 * root: it creates network namespaces, links and a test API server on 127.0.0.1.
 */

import { join } from "node:path";
import { REPO_ROOT, startPlugin, SYSTEM_CNI_DIR } from "../tests/helpers/plugin_run.ts";
import { startK8sFixture } from "../tests/helpers/k8s_fixture.ts";

const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

function flag(name: string): string | undefined {
  const at = Deno.args.indexOf(name);
  return at >= 0 ? Deno.args[at + 1] : undefined;
}

const RUNS = Number(flag("--runs") ?? 20);
const WARMUP = 2;
const TRACE_RUNS = Math.max(3, Math.min(10, Math.round(RUNS / 2)));
const BASE = flag("--base") ?? "main";
const FROM_SOURCE = Deno.args.includes("--from-source");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function p90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)];
}

const fmt = (ms: number) => ms.toFixed(0);

async function run(cmd: string[], cwd = REPO_ROOT): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), cwd, stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

/** A program under test: a name and the launcher the bin dir holds for it. */
interface Program {
  name: string;
  binary: string;
}

/** Writes the launcher of the tree at `tree` into `binDir` as `multus-<name>`. */
async function install(name: string, tree: string, binDir: string, dir: string): Promise<Program> {
  const launcher = join(binDir, `multus-${name}`);
  const deno = Deno.execPath();
  const flags = (await Deno.readTextFile(join(tree, "scripts", "permission_flags"))).trim();
  let command: string;
  if (FROM_SOURCE) {
    command = `"${deno}" run --quiet --cached-only --config "${tree}/deno.json" ${flags} ` +
      `"${tree}/src/main.ts"`;
  } else {
    const bundle = join(dir, `multus-${name}.js`);
    await run([
      deno,
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--minify",
      "-o",
      bundle,
      "src/main.ts",
    ], tree);
    command = `"${deno}" run --quiet --no-config ${flags} "${bundle}"`;
  }
  await Deno.writeTextFile(
    launcher,
    `#!/bin/sh\nDENO_NO_UPDATE_CHECK=1 NO_COLOR=1 exec ${command} "$@"\n`,
  );
  await Deno.chmod(launcher, 0o755);
  return { name, binary: launcher };
}

/** A checkout of `rev` beside this tree, sharing its node_modules; removed by the caller. */
async function checkout(rev: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "multus-bench-base-" });
  await Deno.remove(dir);
  await run(["git", "worktree", "add", "--detach", "--quiet", dir, rev]);
  await Deno.symlink(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** One timed run: ms from spawn to exit, the epoch ms of spawn and exit, CPU ms used. */
interface Timed {
  ms: number;
  spawnedAt: number;
  exitedAt: number;
  /** User + system CPU time of the process and its children (10 ms ticks). */
  cpuMs: number;
}

const CLOCK_TICKS = Number(
  (await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output().then((o) =>
    new TextDecoder().decode(o.stdout)
  ).catch(() => "")).trim(),
) || 100;

/**
 * CPU time (ms) of this process's children that have been waited for, grandchildren included
 * (`cutime` + `cstime` of /proc/self/stat). Counted in clock ticks: a single run's figure is
 * coarse, the mean of many is not; and unlike wall time it hardly moves with other load.
 */
async function childrenCpuMs(): Promise<number> {
  const stat = await Deno.readTextFile("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

async function main(): Promise<void> {
  const env = await startK8sFixture({
    clusterSubnet: `10.240.${10 + Math.floor(Math.random() * 200)}`,
  });
  let baseTree: string | undefined;
  try {
    const { root, api, ns, veth } = env;
    const octet = 10 + Math.floor(Math.random() * 200);
    const macvlan = {
      cniVersion: "1.0.0",
      type: "macvlan",
      master: veth.a,
      mode: "bridge",
      ipam: { type: "static", addresses: [{ address: `10.239.${octet}.11/24` }] },
    };
    api.setNad({
      metadata: { name: "mv-1", namespace: "bench" },
      spec: { config: JSON.stringify(macvlan) },
    });
    api.setPod({
      metadata: {
        name: "pod",
        namespace: "bench",
        annotations: { "k8s.v1.cni.cncf.io/networks": "mv-1" },
      },
    });
    const programs = [await install("this", REPO_ROOT, root.binDir, root.dir)];
    if (BASE !== "none") {
      baseTree = await checkout(BASE);
      programs.unshift(await install("base", baseTree, root.binDir, root.dir));
    }
    const bridgeConf = JSON.parse(await Deno.readTextFile(env.clusterNetworkFile));
    let counter = 0;
    const call = (command: string, id: string, ifName: string, config: unknown, path: string) => ({
      command,
      containerId: id,
      netns: ns.path,
      ifName,
      args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod",
      path: path.split(":"),
      config: JSON.stringify(config),
    });
    const timed = async (binary: string, c: ReturnType<typeof call>): Promise<Timed> => {
      const cpuBefore = await childrenCpuMs();
      const spawnedAt = Date.now();
      const started = performance.now();
      const out = await startPlugin(binary, c).done;
      const ms = performance.now() - started;
      const exitedAt = Date.now();
      if (out.code !== 0) throw new Error(`${binary} ${c.command}: ${out.stdout} ${out.stderr}`);
      return { ms, spawnedAt, exitedAt, cpuMs: (await childrenCpuMs()) - cpuBefore };
    };
    const pluginPath = `${root.binDir}:${SYSTEM_CNI_DIR}`;
    const conf = (debug: boolean) => ({
      ...env.multusConf(),
      ...(debug ? { logLevel: "debug", logFile: root.logFile } : { logLevel: "panic" }),
      // The figures of interest are the plugin's own: no readiness file, no API latency.
    });
    /** ADD then DEL through `program`; the ADD's timing. */
    const pluginRound = async (program: Program, debug: boolean): Promise<Timed> => {
      const id = `bench-${program.name}-${counter++}`;
      const add = await timed(program.binary, call("ADD", id, "eth0", conf(debug), pluginPath));
      await timed(program.binary, call("DEL", id, "eth0", conf(false), pluginPath));
      return add;
    };
    /** The two delegates called directly (ADD timed), then their DELs. */
    const floorRound = async (): Promise<{ ms: number; cpuMs: number }> => {
      const id = `bench-floor-${counter++}`;
      const delegates: [string, string, unknown][] = [
        ["bridge", "eth0", bridgeConf],
        ["macvlan", "net1", { ...macvlan, name: "mv-1" }],
      ];
      let ms = 0;
      let cpuMs = 0;
      for (const [type, ifName, c] of delegates) {
        const add = await timed(
          join(SYSTEM_CNI_DIR, type),
          call("ADD", id, ifName, c, SYSTEM_CNI_DIR),
        );
        ms += add.ms;
        cpuMs += add.cpuMs;
      }
      for (const [type, ifName, c] of delegates.reverse()) {
        await timed(join(SYSTEM_CNI_DIR, type), call("DEL", id, ifName, c, SYSTEM_CNI_DIR));
      }
      return { ms, cpuMs };
    };

    const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(", ");
    print(
      `# Thin plugin, Kubernetes-mode ADD, cluster network + 1 NAD (${
        FROM_SOURCE ? "from source: scripts/dev-multus" : "bundled program"
      }; ${RUNS} runs each, interleaved; load ${load})`,
    );
    const wall = new Map(programs.map((p) => [p.name, [] as number[]]));
    const overhead = new Map(programs.map((p) => [p.name, [] as number[]]));
    const cpu = new Map(programs.map((p) => [p.name, [] as number[]]));
    const floor: number[] = [];
    const floorCpu: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const f = await floorRound();
      // Alternate which program goes first, so neither always follows the floor.
      const order = i % 2 ? [...programs].reverse() : programs;
      for (const program of order) {
        const add = await pluginRound(program, false);
        if (i < WARMUP) continue;
        wall.get(program.name)!.push(add.ms);
        overhead.get(program.name)!.push(add.ms - f.ms);
        cpu.get(program.name)!.push(add.cpuMs);
      }
      if (i >= WARMUP) {
        floor.push(f.ms);
        floorCpu.push(f.cpuMs);
      }
    }
    print();
    print(
      "| program | ADD wall median / p90 (ms) | overhead over the delegates: median / p90 (ms) " +
        "| CPU per ADD, mean (ms) | CPU overhead, mean (ms) |",
    );
    print("| --- | ---: | ---: | ---: | ---: |");
    print(
      `| delegates called directly | ${fmt(median(floor))} / ${fmt(p90(floor))} | 0 | ${
        fmt(mean(floorCpu))
      } | 0 |`,
    );
    for (const p of programs) {
      const w = wall.get(p.name)!;
      const o = overhead.get(p.name)!;
      const c = cpu.get(p.name)!;
      const label = p.name === "base" ? `base (${BASE})` : "this tree";
      print(
        `| ${label} | ${fmt(median(w))} / ${fmt(p90(w))} | ${fmt(median(o))} / ${fmt(p90(o))} | ${
          fmt(mean(c))
        } | ${fmt(mean(c) - mean(floorCpu))} |`,
      );
    }

    // Where the time goes, from the debug log of further runs.
    for (const program of programs) {
      const traces: Map<string, number>[] = [];
      for (let i = 0; i < TRACE_RUNS; i++) {
        await Deno.writeTextFile(root.logFile, "");
        const add = await pluginRound(program, true);
        traces.push(timeline(await Deno.readTextFile(root.logFile), add));
      }
      print();
      print(
        `## Where one ADD goes: ${
          program.name === "base" ? `base (${BASE})` : "this tree"
        } (median of ${TRACE_RUNS} runs with the debug log; ms after spawn)`,
      );
      print();
      print("| mark | at | step |");
      print("| --- | ---: | ---: |");
      const marks = [...new Set(traces.flatMap((t) => [...t.keys()]))];
      const at = marks.map((m): [string, number] => [
        m,
        median(traces.map((t) => t.get(m)).filter((v): v is number => v !== undefined)),
      ]).sort((a, b) => a[1] - b[1]);
      let previous = 0;
      for (const [mark, ms] of at) {
        print(`| ${mark} | ${fmt(ms)} | ${fmt(ms - previous)} |`);
        previous = ms;
      }
    }
  } finally {
    await env.cleanup();
    if (baseTree) {
      await run(["git", "worktree", "remove", "--force", baseTree]).catch((err) =>
        print(`could not remove ${baseTree}: ${err}`)
      );
    }
  }
}

/** Debug-log lines that mark a step of ADD, and the name the breakdown gives each. */
const MARKS: [RegExp, string][] = [
  [/configuration loaded (\d+) ms after start/, "configuration loaded"],
  [/Kubernetes modules loaded/, "Kubernetes modules loaded"],
  [/API client .* ready/, "kubeconfig read, API client made"],
  [
    /API GET \/api\/v1\/namespaces\/[^/]+\/pods\/[^ ]+ answered \d+ in (\d+) ms/,
    "pod GET answered",
  ],
  [/API GET \/apis\/k8s\.cni\.cncf\.io.* answered/, "NAD GET answered"],
  [/running plugin "bridge" \(ADD\)/, "first delegate started"],
  [/ADD .* as net1 done/, "last delegate done"],
  [/API PATCH .*\/status answered/, "status PATCH answered"],
  [/API POST .*\/events answered/, "events answered"],
  [/ADD: done/, "ADD done (last line)"],
];

/** The time (ms after spawn) of each mark in one run's debug log, plus start and exit. */
function timeline(logText: string, add: Timed): Map<string, number> {
  const at = new Map<string, number>();
  for (const line of logText.split("\n")) {
    const stamp = Date.parse(line.slice(0, 24));
    if (Number.isNaN(stamp)) continue;
    for (const [pattern, name] of MARKS) {
      const match = pattern.exec(line);
      if (!match) continue;
      // The last events line: when both have an answer.
      if (!at.has(name) || name === "events answered") at.set(name, stamp - add.spawnedAt);
      if (!match[1]) continue;
      // "N ms after start" dates the start of the JavaScript clock (performance.timeOrigin);
      // "answered in N ms" when the request was sent.
      if (name === "pod GET answered") {
        at.set("pod GET sent (first TLS request)", stamp - Number(match[1]) - add.spawnedAt);
      } else {at.set(
          "runtime up (performance.timeOrigin)",
          stamp - Number(match[1]) - add.spawnedAt,
        );}
    }
  }
  at.set("process exited", add.exitedAt - add.spawnedAt);
  return at;
}

await main();
