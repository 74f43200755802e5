/**
 * @module
 * Shared pieces of the "proof under stress" suites: running the plugin as a runtime does while
 * keeping hold of its process (to kill it), stand-in delegates written into a test bin dir,
 * and the checks every suite makes: CNI error JSON without stack traces, complete log lines,
 * and nothing left behind (interfaces, leases, cache and temp files, bridge ports).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { CniCall, PluginRun, RunningPlugin, TestRoot } from "../helpers/plugin_run.ts";
import { startPlugin as startPluginBinary, SYSTEM_CNI_DIR } from "../helpers/plugin_run.ts";
import { listFiles, sh, type TestNetns } from "../helpers/netns.ts";

export { type RunningPlugin, SYSTEM_CNI_DIR };

/** Starts the plugin of `root` with `call` (optionally under `wrapper`) and returns at once. */
export function startPlugin(root: TestRoot, call: CniCall, wrapper: string[] = []): RunningPlugin {
  return startPluginBinary(
    join(root.binDir, "multus"),
    { path: [root.binDir, SYSTEM_CNI_DIR], ...call },
    wrapper,
  );
}

/** Writes an executable shell script into `dir`. */
export async function writeScript(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, `#!/bin/sh\n${body.trim()}\n`, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
  return path;
}

/**
 * Stand-ins for real plugins, named like them so they shadow /usr/lib/cni in the test bin dir:
 * each runs the real plugin, except that when `STRESS_CRASH` is `before:<name>:<COMMAND>` it
 * SIGKILLs its parent (the plugin) instead, and with `after:<name>:<COMMAND>` it runs the real
 * plugin, then SIGKILLs the plugin before handing over the result.
 */
export async function writeCrashWrappers(binDir: string, names: string[]): Promise<void> {
  for (const name of names) {
    await writeScript(
      binDir,
      name,
      `
real=${SYSTEM_CNI_DIR}/${name}
case "$STRESS_CRASH" in
  "before:${name}:$CNI_COMMAND") kill -9 "$PPID"; exit 1 ;;
  "after:${name}:$CNI_COMMAND")
    out=$("$real"); rc=$?
    kill -9 "$PPID"
    printf '%s' "$out"
    exit $rc ;;
esac
exec "$real"
`,
    );
  }
}

/** A log line as the plugin writes it. */
export const LOG_LINE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \[(panic|error|verbose|debug)\] \S.*$/;

/** Asserts that every line of `file` is one complete log line; returns the lines. */
export async function assertCompleteLogLines(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(file);
  assert.ok(text === "" || text.endsWith("\n"), "the log ends with a complete line");
  const lines = text.split("\n").slice(0, -1);
  const bad = lines.filter((l) => !LOG_LINE.test(l));
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${lines.length} log lines are broken`);
  assertNoStackTrace(text, "log file");
  // Far below the rotation size: every line must still be in this one file.
  const dir = file.slice(0, file.lastIndexOf("/"));
  const stem = file.slice(dir.length + 1).replace(/\.[^.]*$/, "");
  const rotated = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(`${stem}-`));
  assert.deepEqual(rotated.map((e) => e.name), [], "the log was not rotated");
  return lines;
}

/** Asserts that a text holds no JavaScript stack trace or uncaught-error report. */
export function assertNoStackTrace(text: string, what: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `${what} holds a stack trace:\n${text.slice(0, 2000)}`);
  assert.doesNotMatch(text, /Uncaught|error: Top-level|panicked at/, `${what}: ${text}`);
}

/**
 * Asserts that a run failed as a CNI plugin must: non-zero exit, the CNI error JSON on stdout
 * (numeric `code`, non-empty `msg`), no stack trace anywhere. Returns the error object.
 */
export function assertCniError(
  run: PluginRun,
  label = "",
): { code: number; msg: string; details?: string } {
  const where = `${label}: stdout=${run.stdout} stderr=${run.stderr.slice(0, 2000)}`;
  assert.notEqual(run.code, 0, `${label}: the run must fail: ${where}`);
  assert.ok(run.json, `${label}: stdout is JSON: ${where}`);
  const err = run.json as { code: number; msg: string; details?: string };
  assert.equal(typeof err.code, "number", where);
  assert.ok(Number.isInteger(err.code) && err.code > 0, where);
  assert.equal(typeof err.msg, "string", where);
  assert.ok(err.msg.length > 0, where);
  assert.ok(err.details === undefined || typeof err.details === "string", where);
  assertNoStackTrace(run.stdout + run.stderr, label);
  return err;
}

/** Asserts a successful run: exit 0, no stack trace. */
export function assertOk(run: PluginRun, label = ""): void {
  assert.equal(run.code, 0, `${label}: stdout=${run.stdout} stderr=${run.stderr.slice(0, 3000)}`);
  assertNoStackTrace(run.stdout + run.stderr, label);
}

/** Lease files (named after an IP address) of host-local under `dir`. */
export async function leases(dir: string): Promise<string[]> {
  return (await listFiles(dir)).filter((p) => /(^|\/)\d+\.\d+\.\d+\.\d+$/.test(p));
}

/** Interfaces in a namespace. */
export async function linkNames(ns: TestNetns): Promise<string[]> {
  return (await ns.links()).map((l) => l.ifname).sort();
}

/** Ports of a host bridge ([] when it has none or does not exist). */
export async function bridgePorts(bridge: string): Promise<string[]> {
  const out = await sh(["ip", "-j", "link", "show", "master", bridge], { allowFail: true });
  if (!out.trim().startsWith("[")) return [];
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname);
}

/** Temp files of an interrupted atomic write (`.<name>.tmp-<pid>-<id>`) under `dir`. */
export async function tempFiles(dir: string): Promise<string[]> {
  return (await listFiles(dir)).filter((p) => /(^|\/)\.[^/]*\.tmp-/.test(p));
}

/** What must be gone after DEL or a rolled-back ADD. */
export interface Leftovers {
  namespaces?: TestNetns[];
  leaseDir?: string;
  cniDir?: string;
  bridge?: string;
}

/** Asserts that nothing is left: only `lo` in each namespace, no lease, no file, no port. */
export async function assertNothingLeft(what: Leftovers, label = ""): Promise<void> {
  for (const ns of what.namespaces ?? []) {
    assert.deepEqual(await linkNames(ns), ["lo"], `${label}: interfaces left in ${ns.name}`);
  }
  if (what.leaseDir) {
    assert.deepEqual(await leases(what.leaseDir), [], `${label}: host-local leases left`);
  }
  if (what.cniDir) {
    assert.deepEqual(await listFiles(what.cniDir), [], `${label}: files left in the cache dir`);
  }
  if (what.bridge) {
    assert.deepEqual(await bridgePorts(what.bridge), [], `${label}: ports left on the bridge`);
  }
}

/**
 * Asserts that every cache file under `cniDir` (not the temp files of an interrupted write)
 * is complete: the scratch cache a non-empty JSON array, a result cache a `cniCacheV1` object.
 */
export async function assertCacheFilesComplete(cniDir: string, label = ""): Promise<void> {
  for (const rel of await listFiles(cniDir)) {
    if (/(^|\/)\.[^/]*\.tmp-/.test(rel)) continue;
    const text = await Deno.readTextFile(join(cniDir, rel));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      assert.fail(`${label}: partial cache file ${rel}: ${JSON.stringify(text.slice(0, 200))}`);
    }
    if (rel.startsWith("results/")) {
      assert.equal((parsed as { kind?: string }).kind, "cniCacheV1", `${label}: ${rel}`);
    } else {
      assert.ok(Array.isArray(parsed) && parsed.length > 0, `${label}: ${rel} is not a list`);
    }
  }
}

/** A deterministic pseudo-random generator (mulberry32). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** Waits until `predicate` holds, polling every `everyMs`; false after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 10,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return await predicate();
}

/** A /24 third octet not used by other suites in this run. */
let octet = 10 + Math.floor(Math.random() * 200);
export function nextOctet(): number {
  octet = octet >= 250 ? 10 : octet + 1;
  return octet;
}

/** True when a process is alive (not a zombie). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}
