/**
 * @module
 * What the benchmarks of the bundled program share: the bundle and its launcher, a CNI run
 * timed under `/usr/bin/time`, medians, the bundle's daemon started with its metrics scraped
 * over HTTP, and the report's output.
 */

import { join } from "node:path";
import { REPO_ROOT } from "../tests/helpers/plugin_run.ts";
import { freePort } from "../tests/daemon/_helpers.ts";
import { exists } from "../src/util/exists.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes a line of the report to stdout. */
export function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** Runs a command to its end; its stdout, or an error with its stderr when it failed. */
export async function sh(cmd: string[], options: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`${cmd.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/**
 * Bundles `src/main.ts` of the source tree `root` into `dir` and writes a launcher for it
 * (also as `multus-shim`) with the plugin's permission flags; returns the launcher.
 */
export async function bundle(root: string, dir: string): Promise<string> {
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

/** One timed run of a binary. */
export interface Sample {
  /** Spawn to exit. */
  wallMs: number;
  /** User + system CPU of the process and the children it waited for. */
  cpuMs: number;
  code: number;
  stdout: string;
}

/**
 * Runs `binary` under `/usr/bin/time` with `env` and `stdin`; throws with its output when it
 * exits non-zero.
 */
export async function timed(
  binary: string,
  env: Record<string, string>,
  stdin: string,
): Promise<Sample> {
  const timeFile = await Deno.makeTempFile();
  try {
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
    const stdout = decoder.decode(out.stdout);
    if (out.code !== 0) {
      throw new Error(
        `${binary} (${env.CNI_COMMAND}) failed: ${stdout}${decoder.decode(out.stderr)}`,
      );
    }
    const [user, system] = (await Deno.readTextFile(timeFile)).trim().split("\n").pop()!
      .split(" ").map(Number);
    return { wallMs, cpuMs: (user + system) * 1000, code: out.code, stdout };
  } finally {
    await Deno.remove(timeFile).catch(() => {});
  }
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The daemon's `/metrics` text on `port`, waiting until it answers. */
export async function scrapeMetrics(port: number): Promise<string> {
  for (;;) {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The report's line on the machine: target, CPUs and load. */
export async function machineLine(): Promise<string> {
  return `Machine: ${Deno.build.target}, ${navigator.hardwareConcurrency} CPUs, load ${
    (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
  }`;
}

/** `multus daemon` of a bundle, running. */
export interface BundledDaemon {
  pid: number;
  /** Its `/metrics` text (waits until it answers). */
  scrape(): Promise<string>;
  /** SIGTERM, then waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Writes `config` plus a free metrics port as the daemon configuration in `work` and starts
 * `launcher daemon --config FILE` with `env`, its output discarded.
 */
export async function startBundledDaemon(
  launcher: string,
  work: string,
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<BundledDaemon> {
  const metricsPort = freePort();
  const configFile = join(work, "daemon-config.json");
  await Deno.writeTextFile(configFile, JSON.stringify({ metricsPort, ...config }));
  const child = new Deno.Command(launcher, {
    args: ["daemon", "--config", configFile],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    pid: child.pid,
    scrape: () => scrapeMetrics(metricsPort),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Throws when a shim ran a request itself (its record in the daemon's `socketDir`). */
export async function assertNoFallback(socketDir: string): Promise<void> {
  if (await exists(join(socketDir, "fallbacks.log"))) {
    throw new Error("a shim fell back: the daemon did not run every request");
  }
}
