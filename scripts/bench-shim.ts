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
import { metricValue } from "../tests/daemon/_helpers.ts";
import {
  assertNoFallback,
  bundle,
  type BundledDaemon,
  machineLine,
  median,
  print,
  type Sample,
  sh,
  startBundledDaemon,
  timed,
} from "./_bundled_bench.ts";

const args = Deno.args;
const RUNS = Number(args[args.indexOf("--runs") + 1] || 0) || 20;
const BASELINE = args.includes("--baseline") ? args[args.indexOf("--baseline") + 1] : undefined;
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
  let daemon: BundledDaemon | undefined;
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
    daemon = await startBundledDaemon(ours, work, { socketDir, logToStderr: false, ...netconf });
    const scrape = daemon.scrape;
    const handled = (text: string, command: string) => {
      const value = (series: string) => metricValue(text, series);
      return {
        sum: value(`multus_daemon_request_duration_seconds_sum{command="${command}"}`) * 1000,
        count: value(`multus_daemon_request_duration_seconds_count{command="${command}"}`),
      };
    };
    const rss = (text: string) => metricValue(text, "process_resident_memory_bytes") / 1024 / 1024;
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
    await assertNoFallback(socketDir);

    print(
      `# Start-up and shim overhead (bundled program, ${RUNS} runs each, ${
        new Date().toISOString()
      })`,
    );
    print();
    print(await machineLine());
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
    await daemon?.stop();
    await sh(["ip", "netns", "del", netns]).catch(() => {});
    await sh(["ip", "link", "del", bridge]).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

await main();
