/**
 * @module
 * The sandboxes of this node the daemon may hot-plug: the scratch caches in `cniDir` that
 * record their sandbox (netns, interface, plugin path), found by pod. The directory is
 * scanned again when its modification time changed (every cache write is a rename into it);
 * a file whose modification time did not change is not read again.
 */

import { join } from "../util/path.ts";
import { validateContainerId } from "../cni/request.ts";
import { loadScratchCache } from "../multus/run/scratch_cache.ts";
import { type Sandbox, sandboxPod } from "../multus/run/hotplug.ts";

interface Indexed {
  mtimeMs: number;
  /** `namespace/name` of its pod ("" when the cache does not say or cannot be read). */
  podKey: string;
}

/** Finds a pod's sandboxes among the scratch caches of one directory. */
export class SandboxIndex {
  #cniDir: string;
  #index = new Map<string, Indexed>();
  /** The directory's modification time at the last scan. */
  #scannedAt: number | undefined;

  constructor(cniDir: string) {
    this.#cniDir = cniDir;
  }

  /** Container ids of the sandboxes whose cache names `namespace/name`. */
  async containersOf(podKey: string): Promise<string[]> {
    await this.#refresh();
    return [...this.#index].filter(([, v]) => v.podKey === podKey).map(([id]) => id);
  }

  /**
   * The sandbox of a container as its cache says now; undefined when the cache is gone,
   * unreadable, or written before sandboxes were recorded (`why` says which).
   */
  async load(containerId: string): Promise<{ sandbox?: Sandbox; why?: string }> {
    const state = await loadScratchCache(this.#cniDir, containerId, "eth0");
    if (state.kind === "absent") return { why: "its scratch cache is gone (deleted)" };
    if (state.kind === "corrupt") {
      return { why: `its scratch cache is unreadable: ${state.reason}` };
    }
    if (!state.sandbox) {
      return {
        why: "its scratch cache does not record the sandbox (set up by Multus or an older " +
          "version); its networks change when the pod is recreated",
      };
    }
    const ifName = state.sandbox.ifName;
    // Interface names of entries without one derive from the default network's.
    const again = ifName === "eth0"
      ? state
      : await loadScratchCache(this.#cniDir, containerId, ifName);
    if (again.kind !== "found") return { why: "its scratch cache is gone (deleted)" };
    return {
      sandbox: {
        containerId,
        network: again.network ?? "multus-cni-network",
        sandbox: state.sandbox,
        delegates: again.delegates,
      },
    };
  }

  async #refresh(): Promise<void> {
    const dirTime = await Deno.stat(this.#cniDir).then((s) => s.mtime?.getTime(), () => -1);
    if (dirTime !== undefined && dirTime === this.#scannedAt) return;
    // Modification times are coarse (a clock tick): a change in the same tick as this scan
    // would keep the time; a directory changed less than a second ago is scanned every time.
    this.#scannedAt = dirTime !== undefined && Date.now() - dirTime > 1000 ? dirTime : undefined;
    const seen = new Set<string>();
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.#cniDir));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    for (const entry of entries) {
      if (!entry.isFile || entry.name.startsWith(".")) continue;
      try {
        validateContainerId(entry.name);
      } catch {
        continue;
      }
      let mtimeMs: number;
      try {
        mtimeMs = (await Deno.stat(join(this.#cniDir, entry.name))).mtime?.getTime() ?? 0;
      } catch {
        continue;
      }
      seen.add(entry.name);
      const known = this.#index.get(entry.name);
      if (known && known.mtimeMs === mtimeMs) continue;
      const state = await loadScratchCache(this.#cniDir, entry.name, "eth0");
      const pod = state.kind === "found" ? sandboxPod(state) : undefined;
      this.#index.set(entry.name, {
        mtimeMs,
        podKey: pod ? `${pod.namespace}/${pod.name}` : "",
      });
    }
    for (const id of this.#index.keys()) if (!seen.has(id)) this.#index.delete(id);
  }
}
