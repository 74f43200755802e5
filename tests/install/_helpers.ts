/**
 * @module
 * Helpers for the `multus install` tests: a temporary install root (bin dir, conf dir, service
 * account) and the installer run as a real child process through `scripts/dev-multus`, the
 * same entry (src/main.ts) and permissions as the compiled binary.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DEV_MULTUS = join(REPO, "scripts", "dev-multus");
const RUN_INSTALL = fileURLToPath(new URL("./_run_install.ts", import.meta.url));

/** A temporary install root. */
export interface InstallRoot {
  /** The temporary directory holding everything. */
  dir: string;
  /** CNI bin dir. */
  bin: string;
  /** CNI conf dir. */
  conf: string;
  /** Service account dir (token, ca.crt). */
  sa: string;
  /** Multus's own conf dir (--multus-cni-conf-dir). */
  multusNetd: string;
  /** Flags pointing the installer at this root. */
  args: string[];
  /** Environment for the child. */
  env: Record<string, string>;
}

/** Creates a root with a service account (token "token-1", a CA) and empty bin/conf dirs. */
export async function makeRoot(): Promise<InstallRoot> {
  const dir = await Deno.makeTempDir({ prefix: "multus-install-test-" });
  const root: InstallRoot = {
    dir,
    bin: join(dir, "opt", "cni", "bin"),
    conf: join(dir, "etc", "cni", "net.d"),
    sa: join(dir, "sa"),
    multusNetd: join(dir, "etc", "cni", "multus", "net.d"),
    args: [],
    env: {
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      MULTUS_DENO: Deno.execPath(),
    },
  };
  for (const d of [root.bin, root.conf, root.sa]) await Deno.mkdir(d, { recursive: true });
  await Deno.writeTextFile(join(root.sa, "token"), "token-1");
  await Deno.writeTextFile(join(root.sa, "ca.crt"), "-----BEGIN CERTIFICATE-----\nca-1\n");
  root.args = [
    `--cni-bin-dir=${root.bin}`,
    `--cni-conf-dir=${root.conf}`,
    `--service-account-dir=${root.sa}`,
    `--multus-cni-conf-dir=${root.multusNetd}`,
    "--poll-interval=100ms",
  ];
  return root;
}

/** Removes a root. */
export async function removeRoot(root: InstallRoot): Promise<void> {
  await Deno.remove(root.dir, { recursive: true });
}

/** Writes a JSON file (not atomically, like many primary CNIs do). */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2));
}

/** Writes a file atomically (temp + rename), as a well-behaved writer or the kubelet does. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-test`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

function command(args: string[], env: Record<string, string>): Deno.Command {
  const useDev = exists(DEV_MULTUS) && exists(join(REPO, "src", "main.ts"));
  return useDev
    ? new Deno.Command(DEV_MULTUS, {
      args: ["install", ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...Deno.readTextFileSync(join(REPO, "scripts", "permission_flags")).trim().split(/\s+/),
        RUN_INSTALL,
        ...args,
      ],
      env: { ...env, DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Output of a finished install run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `multus install <args>` to completion. */
export async function runInstallOnce(
  root: InstallRoot,
  extra: string[] = [],
  options: { args?: string[] } = {},
): Promise<RunResult> {
  const out = await command([...(options.args ?? root.args), ...extra], root.env).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** A running `multus install` (watch mode). */
export class RunningInstall {
  #child: Deno.ChildProcess;
  #stderr = "";
  #stdout: Promise<string>;
  #stderrDone: Promise<void>;

  constructor(root: InstallRoot, extra: string[] = []) {
    this.#child = command([...root.args, ...extra], root.env).spawn();
    this.#stdout = new Response(this.#child.stdout).text();
    this.#stderrDone = this.#child.stderr
      .pipeThrough(new TextDecoderStream())
      .pipeTo(
        new WritableStream({
          write: (chunk) => {
            this.#stderr += chunk;
          },
        }),
      );
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Waits until stderr contains `text`. */
  async waitForLog(text: string | RegExp, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      () => typeof text === "string" ? this.#stderr.includes(text) : text.test(this.#stderr),
      { timeoutMs, what: `log ${text}`, detail: () => this.#stderr },
    );
  }

  /** Sends `signal` and waits for the exit status. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<RunResult> {
    try {
      this.#child.kill(signal);
    } catch {
      // already gone
    }
    const status = await this.#child.status;
    await this.#stderrDone;
    return { code: status.code, stdout: await this.#stdout, stderr: this.#stderr };
  }

  /** Kills the child if a test failed before stopping it. */
  async dispose(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await this.#child.status;
    await this.#stderrDone.catch(() => {});
    await this.#stdout.catch(() => {});
  }
}

/** Polls `check` until it is true (or throws after `timeoutMs`). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; what?: string; detail?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `Timed out waiting for ${options.what ?? "condition"}` +
      (options.detail ? `\n--- stderr ---\n${options.detail()}` : ""),
  );
}

/** Reads a file, or undefined when it does not exist. */
export async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** Sorted relative paths of everything under `dir` (directories end with `/`). */
export async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      out.push(`${rel}/`);
      out.push(...await tree(dir, rel));
    } else {
      out.push(rel);
    }
  }
  return out.sort();
}
