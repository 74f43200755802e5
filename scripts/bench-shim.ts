/**
 * @module
 * Start-up of the plugin and the shim's overhead, on the bundled program (what
 * `deno compile --bundle` embeds):
 *
 * - VERSION start-up (the floor of any run of the binary);
 * - a delegates-mode ADD (one bridge + host-local network) and its DEL through the thin plugin;
 * - the same through the shim with `multus daemon` running from the same bundle: the shim's
 *   wall time, the daemon's own handling time (its metrics), and the difference, which is
 *   what the shim costs on top of the work;
 * - with `--baseline REV`, VERSION and the thin ADD of the program at git revision REV too,
 *   interleaved run by run with ours so that the machine's load hits both alike.
 *
 * Wall times are medians; CPU is user+system time of the process (less sensitive to a busy
 * machine). Run as root through `scripts/bench-shim [--runs N] [--baseline REV]`.
 */

import { join } from "node:path";
import { REPO_ROOT } from "../tests/helpers/plugin_run.ts";
import { exists } from "../src/util/exists.ts";

const args = Deno.args;
const RUNS = Number(args[args.indexOf("--runs") + 1] || 0) || 20;
const BASELINE = args.includes("--baseline") ? args[args.indexOf("--baseline") + 1] : undefined;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

async function sh(cmd: string[], options: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`${cmd.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** Bundles `src/main.ts` of `root` and writes a launcher for it; returns the launcher. */
async function bundle(root: string, dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const out = join(dir, "multus.js");
  await sh([
    Deno.execPath(),
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "--minify",
    "--config",
    join(root, "deno.json"),
    "-o",
    out,
    join(root, "src", "main.ts"),
  ], { cwd: root });
  const flags = (await Deno.readTextFile(join(REPO_ROOT, "scripts", "permission_flags"))).trim();
  const launcher = join(dir, "multus");
  await Deno.writeTextFile(
    launcher,
    `#!/bin/sh\nDENO_NO_UPDATE_CHECK=1 exec "${Deno.execPath()}" run --quiet --no-config ${flags} "${out}" "$@"\n`,
  );
  await Deno.chmod(launcher, 0o755);
  await Deno.symlink(launcher, join(dir, "multus-shim"));
  return launcher;
}

interface Sample {
  wallMs: number;
  cpuMs: number;
  code: number;
  stdout: string;
}

/** Runs a binary under /usr/bin/time: wall (spawn to exit) and user+system CPU. */
async function timed(binary: string, env: Record<string, string>, stdin: string): Promise<Sample> {
  const timeFile = await Deno.makeTempFile();
  const started = performance.now();
  const child = new Deno.Command("/usr/bin/time", {
    args: ["-f", "%U %S", "-o", timeFile, binary],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(stdin));
  await writer.close();
  const out = await child.output();
  const wallMs = performance.now() - started;
  const [user, system] = (await Deno.readTextFile(timeFile)).trim().split("\n").pop()!.split(" ")
    .map(Number);
  await Deno.remove(timeFile);
  const stdout = decoder.decode(out.stdout);
  if (out.code !== 0) throw new Error(`${binary} failed: ${stdout}${decoder.decode(out.stderr)}`);
  return { wallMs, cpuMs: (user + system) * 1000, code: out.code, stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const fmt = (ms: number) => ms.toFixed(1);

function row(name: string, samples: Sample[]): string {
  const wall = samples.map((s) => s.wallMs);
  return `| ${name} | ${fmt(median(wall))} | ${fmt(Math.min(...wall))} | ${
    fmt(median(samples.map((s) => s.cpuMs)))
  } |`;
}

async function main(): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "multus-bench-shim-" });
  const netns = `mtbs${crypto.randomUUID().slice(0, 6)}`;
  const bridge = `mtbsb${crypto.randomUUID().slice(0, 5)}`;
  let daemon: Deno.ChildProcess | undefined;
  try {
    const ours = await bundle(REPO_ROOT, join(work, "ours"));
    let base: string | undefined;
    if (BASELINE) {
      const src = join(work, "baseline-src");
      await Deno.mkdir(src);
      await sh(["sh", "-c", `git -C "${REPO_ROOT}" archive "${BASELINE}" | tar -x -C "${src}"`]);
      await Deno.symlink(join(REPO_ROOT, "node_modules"), join(src, "node_modules"));
      base = await bundle(src, join(work, "baseline"));
    }

    await sh(["ip", "netns", "add", netns]);
    const cniDir = join(work, "cache");
    const netconf = {
      cniDir,
      binDir: "/usr/lib/cni",
      delegates: [{
        cniVersion: "1.0.0",
        name: "bench-br",
        type: "bridge",
        bridge,
        ipam: { type: "host-local", subnet: "10.253.7.0/24", dataDir: join(work, "leases") },
      }],
    };
    const thin = JSON.stringify({
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      type: "multus",
      ...netconf,
    });
    const socketDir = join(work, "run");
    const shim = JSON.stringify({
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      type: "multus-shim",
      daemonSocketDir: socketDir,
      thinConfig: join(work, "thin.conf"),
    });
    await Deno.writeTextFile(join(work, "thin.conf"), thin);
    const cniEnv = (command: string, id: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: `/var/run/netns/${netns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod",
    });
    const version = { CNI_COMMAND: "VERSION" };

    const samples = new Map<string, Sample[]>();
    const add = (name: string, sample: Sample) =>
      samples.set(name, [...(samples.get(name) ?? []), sample]);

    // Warm-up: V8 code cache and the page cache, for both programs.
    for (const binary of [ours, base].filter((b): b is string => !!b)) {
      await timed(binary, version, "{}");
      await timed(binary, cniEnv("ADD", "warm"), thin);
      await timed(binary, cniEnv("DEL", "warm"), thin);
    }

    for (let i = 0; i < RUNS; i++) {
      add("VERSION", await timed(ours, version, "{}"));
      if (base) add("VERSION (baseline)", await timed(base, version, "{}"));
      add("ADD thin", await timed(ours, cniEnv("ADD", `t${i}`), thin));
      add("DEL thin", await timed(ours, cniEnv("DEL", `t${i}`), thin));
      if (base) {
        add("ADD thin (baseline)", await timed(base, cniEnv("ADD", `b${i}`), thin));
        add("DEL thin (baseline)", await timed(base, cniEnv("DEL", `b${i}`), thin));
      }
      add(
        "bridge ADD (floor)",
        await timed(
          "/usr/lib/cni/bridge",
          cniEnv("ADD", `f${i}`),
          JSON.stringify(netconf.delegates[0]),
        ),
      );
      await timed(
        "/usr/lib/cni/bridge",
        cniEnv("DEL", `f${i}`),
        JSON.stringify(netconf.delegates[0]),
      );
    }

    // The daemon, from the same bundle.
    const metricsPort = (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      return port;
    })();
    const daemonConfig = join(work, "daemon-config.json");
    await Deno.writeTextFile(
      daemonConfig,
      JSON.stringify({ socketDir, metricsPort, logToStderr: false, ...netconf }),
    );
    daemon = new Deno.Command(ours, {
      args: ["daemon", "--config", daemonConfig],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const scrape = async () => {
      for (;;) {
        try {
          return await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const handled = (text: string, command: string) => {
      const value = (series: string) =>
        Number(text.split("\n").find((l) => l.startsWith(`${series} `))?.split(" ")[1] ?? 0);
      return {
        sum: value(`multus_daemon_request_duration_seconds_sum{command="${command}"}`) * 1000,
        count: value(`multus_daemon_request_duration_seconds_count{command="${command}"}`),
      };
    };
    const rss = (text: string) =>
      Number(
        text.split("\n").find((l) => l.startsWith("process_resident_memory_bytes "))
          ?.split(" ")[1] ?? 0,
      ) / 1024 / 1024;
    const idleRss = rss(await scrape());
    await timed(ours, cniEnv("ADD", "warm-shim"), shim);
    await timed(ours, cniEnv("DEL", "warm-shim"), shim);
    const before = await scrape();
    for (let i = 0; i < RUNS; i++) {
      add("ADD shim", await timed(ours, cniEnv("ADD", `s${i}`), shim));
      add("DEL shim", await timed(ours, cniEnv("DEL", `s${i}`), shim));
      add("VERSION (daemon running)", await timed(ours, version, "{}"));
    }
    const after = await scrape();
    if (await exists(join(socketDir, "fallbacks.log"))) {
      throw new Error("a shim fell back: the daemon did not run every request");
    }

    print(
      `# Start-up and shim overhead (bundled program, ${RUNS} runs each, ${
        new Date().toISOString()
      })`,
    );
    print();
    print(
      `Machine: ${Deno.build.target}, ${navigator.hardwareConcurrency} CPUs, load ${
        (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
      }`,
    );
    print();
    print("| run | wall median (ms) | wall min (ms) | CPU median (ms) |");
    print("| --- | ---: | ---: | ---: |");
    for (const [name, list] of samples) print(row(name, list));
    print();
    print(
      `Daemon RSS: ${fmt(idleRss)} MiB idle after start, ${fmt(rss(after))} MiB after ` +
        `${2 * RUNS + 2} requests (delegates mode)`,
    );
    for (const command of ["ADD", "DEL"]) {
      const a = handled(after, command);
      const b = handled(before, command);
      const daemonMs = (a.sum - b.sum) / Math.max(1, a.count - b.count);
      const shimWall = samples.get(`${command} shim`)!.map((s) => s.wallMs);
      const meanShim = shimWall.reduce((x, y) => x + y, 0) / shimWall.length;
      const versionWall = samples.get("VERSION (daemon running)")!.map((s) => s.wallMs);
      const meanVersion = versionWall.reduce((x, y) => x + y, 0) / versionWall.length;
      print(
        `${command} through the shim: mean wall ${
          fmt(meanShim)
        } ms, of which the daemon's handling ` +
          `${fmt(daemonMs)} ms: shim overhead ${fmt(meanShim - daemonMs)} ms ` +
          `(VERSION start-up, the floor, mean ${fmt(meanVersion)} ms in the same loop)`,
      );
    }
  } finally {
    if (daemon) {
      daemon.kill("SIGTERM");
      await daemon.status;
    }
    await sh(["ip", "netns", "del", netns]).catch(() => {});
    await sh(["ip", "link", "del", bridge]).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

await main();
