/**
 * @module
 * Go Multus v4.0.2's binaries (`multus`, `multus-daemon`, `multus-shim`) for side-by-side tests
 * and benchmarks: unpacked from the shared peers folder (`MULTUS_PEERS_DIR`, `../shared/peers`
 * beside the repository, or `/work/shared/peers`) by its own `unpack` script.
 */

import { join } from "../../src/util/path.ts";
import { REPO_ROOT } from "./plugin_run.ts";

/**
 * Unpacks the Go binaries into `target` and returns it, or says what is missing (no peers
 * folder found, or its `unpack` failed).
 */
export async function unpackGoPeers(target: string): Promise<string | { missing: string }> {
  const candidates = [
    Deno.env.get("MULTUS_PEERS_DIR"),
    join(REPO_ROOT, "..", "shared", "peers"),
    "/work/shared/peers",
  ].filter((d): d is string => !!d);
  for (const dir of candidates) {
    try {
      await Deno.stat(join(dir, "unpack"));
    } catch {
      continue;
    }
    const out = await new Deno.Command(join(dir, "unpack"), {
      args: [target],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      return { missing: `${dir}/unpack failed: ${new TextDecoder().decode(out.stderr)}` };
    }
    return target;
  }
  return { missing: `no Go Multus peers in ${candidates.join(", ")} (set MULTUS_PEERS_DIR)` };
}
