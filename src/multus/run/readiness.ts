/**
 * @module
 * `readinessindicatorfile`: ADD waits, bounded, for the default network to say it is ready.
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import { resolve } from "../../util/path.ts";
import { type Invocation, podLabel } from "../config/invocation.ts";
import { errorMessage } from "../../util/errors.ts";

/** Waits until the readiness indicator file exists; fails clearly after the timeout. */
export async function waitForReadinessIndicator(inv: Invocation): Promise<void> {
  const file = inv.conf.readinessIndicatorFile;
  if (file === "") return;
  const path = resolve(file);
  const deadline = Date.now() + inv.conf.readinessIndicatorTimeoutSeconds * 1000;
  for (;;) {
    try {
      await Deno.stat(path);
      return;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new CniError(
          CniErrorCode.IoFailure,
          `Cannot check the readiness indicator file ${path} for ${podLabel(inv)}: ${
            errorMessage(err)
          }`,
        );
      }
    }
    if (Date.now() >= deadline) {
      throw new CniError(
        CniErrorCode.TryAgainLater,
        `Cannot add ${
          podLabel(inv)
        }: the default network is not ready: ${path} did not appear within ${inv.conf.readinessIndicatorTimeoutSeconds}s`,
        {
          details:
            "Check that the default network's agent (e.g. its DaemonSet) runs on this node; it creates this file when ready",
        },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
