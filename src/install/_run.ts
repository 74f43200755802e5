/**
 * @module
 * The state of one `multus install` run, shared by its steps: the resolved directories, what
 * this run wrote (so cleanup removes exactly that), and how it speaks (a timestamped line on
 * stderr, a lasting problem said once). Also the few file helpers the steps share.
 */

import { join, resolve } from "../util/path.ts";
import { errorMessage } from "../util/errors.ts";
import { exists as existsOnDisk } from "../util/exists.ts";
import { type InstallFlags, toHostPath } from "./flags.ts";
import type { RenderedKubeconfig } from "./_kubeconfig.ts";

/** Raised for a problem that stops the installer; the message names the path and reason. */
export class InstallError extends Error {
  override name = "InstallError";
}

/** Outcome of one pass over the Multus config. */
export type SyncState = "ok" | "waiting" | "error";

/** One installer run: its flags, directories, what it wrote, and its output. */
export class InstallRun {
  readonly flags: InstallFlags;
  readonly env: Record<string, string>;
  readonly binDir: string;
  readonly confDir: string;
  readonly autoconfDir: string;
  readonly multusCniConfDir: string;
  readonly kubeconfigPath: string;
  /** Files we wrote (or found exactly as we would write them), with that content. */
  readonly owned = new Map<string, string>();
  /** Directories we created, in creation order. */
  readonly createdDirs: string[] = [];
  /** Primary configs renamed by --rename-conf-file: original path → renamed path. */
  readonly renamed = new Map<string, string>();
  /** The primary config in use, once found. */
  primaryPath: string | undefined;
  /** The kubeconfig last written or found up to date. */
  lastKubeconfig: RenderedKubeconfig | undefined;
  /** Why the Multus config was not written on the last pass ("" after a success). */
  lastProblem = "";
  /** Targets whose "up to date" line was said. */
  readonly said = new Set<string>();
  /** Last message said per topic, so a lasting problem is said once. */
  readonly #onceByTopic = new Map<string, string>();

  constructor(flags: InstallFlags, env: Record<string, string>) {
    this.flags = flags;
    this.env = env;
    this.binDir = resolve(flags.cniBinDir);
    this.confDir = resolve(flags.cniConfDir);
    this.autoconfDir = resolve(flags.multusAutoconfigDir);
    this.multusCniConfDir = resolve(flags.multusCniConfDir);
    this.kubeconfigPath = join(this.confDir, "multus.d", "multus.kubeconfig");
  }

  /** `path` as the host (the runtime) sees it, given `--host-prefix`. */
  hostPath(path: string): string {
    return toHostPath(path, this.flags.hostPrefix);
  }

  /** Says `message` (and indented detail lines) on stderr with a timestamp. */
  say(message: string, detail: string[] = []): void {
    const lines = [`${new Date().toISOString()} multus install: ${message}`];
    for (const line of detail) lines.push(`    ${line}`);
    writeErr(lines.join("\n") + "\n");
  }

  /** Says `message` unless it is what was last said on `topic` (cleared on success). */
  sayOnce(topic: string, message: string): void {
    if (this.#onceByTopic.get(topic) === message) return;
    this.#onceByTopic.set(topic, message);
    this.say(message);
  }

  /** Forgets what was said on `topic`: the problem is over. */
  clearTopic(topic: string): void {
    this.#onceByTopic.delete(topic);
  }

  /** Says the error that stops the run. */
  fail(message: string): void {
    writeErr(`${new Date().toISOString()} multus install: error: ${message}\n`);
  }
}

/** Writes `text` on stderr; a closed stderr is ignored. */
export function writeErr(text: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  } catch {
    // stderr closed: nothing else to do
  }
}

/** True when something (even a dangling link) is at `path`. */
export function exists(path: string): Promise<boolean> {
  return existsOnDisk(path, { followLinks: false });
}

/** The text of `path`, or undefined when it cannot be read. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** A file system error as a message names it. */
export function describeFsError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(err);
}
