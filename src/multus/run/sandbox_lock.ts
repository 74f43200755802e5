/**
 * @module
 * One lock per sandbox, across processes: the runtime's ADD and DEL (thin plugin, shim
 * fallback or daemon) and the daemon's hot-plug each hold it while they read and change a
 * container's networks and scratch cache, so hot-plug never acts on a sandbox being added or
 * deleted. An advisory `flock` on `/run/multus/locks/<containerId>`: the kernel drops it when
 * its holder dies, so a killed plugin leaves no lock behind, only an empty file that the
 * next ADD or DEL of the container removes. A lock that cannot be taken (no `/run`) is
 * skipped: the runtime's requests must not fail for it.
 */

import { join } from "../../util/path.ts";
import { validateContainerId } from "../../cni/request.ts";
import type { Logger } from "../../log/logger.ts";
import { errorMessage } from "../../util/errors.ts";

/** Where the lock files are. */
export const SANDBOX_LOCK_DIR = "/run/multus/locks";

/** A held lock. */
export interface SandboxLock {
  /**
   * Releases it; with `remove`, the lock file goes first (when the container has nothing
   * left to protect: no scratch cache).
   */
  release(options?: { remove?: boolean }): Promise<void>;
}

/** Takes the lock of a container's sandbox, waiting for its holder. */
export async function lockSandbox(
  containerId: string,
  log?: Logger,
  dir: string = SANDBOX_LOCK_DIR,
): Promise<SandboxLock> {
  const path = join(dir, containerId);
  try {
    validateContainerId(containerId);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for (;;) {
      const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
      await file.lock(true);
      // The holder before may have removed the file as it released: that lock protects
      // nothing any more; take the lock of the file now at the path.
      const held = await file.stat();
      const now = await Deno.stat(path).catch(() => undefined);
      if (now && now.ino === held.ino && now.dev === held.dev) {
        return {
          async release(options = {}) {
            if (options.remove) await Deno.remove(path).catch(() => {});
            file.close();
          },
        };
      }
      file.close();
    }
  } catch (err) {
    log?.verbose(`sandbox lock ${path} not taken: ${errorMessage(err)}`);
    return { release: () => Promise.resolve() };
  }
}
