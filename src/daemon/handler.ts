/**
 * @module
 * What the daemon does with a CNI request once it may run: behind a small interface, so a
 * handler built on a per-request session can replace the in-process one below.
 */

import type { CniCommand } from "../cni/request.ts";
import { type CommandOutcome, commandOutcome } from "../cni/outcome.ts";
import { sniffCniVersion } from "../cni/config_sniff.ts";
import { loadMultusNetConf } from "../multus/netconf.ts";

/** One CNI request as the daemon received it (environment checked, overlay applied). */
export interface CniCall {
  command: CniCommand;
  /** `CNI_CONTAINERID` ("" for STATUS and GC). */
  containerId: string;
  /** The CNI variables (`CNI_*`) of the request. */
  env: Record<string, string>;
  /** The configuration text, with the daemon's keys laid over it. */
  config: string;
}

/** Runs CNI requests for the daemon. */
export interface CniHandler {
  /**
   * Why this handler must not run `call` (the shim then runs it itself), or undefined when
   * it can. Cheap: called before the request waits for a slot.
   */
  declines(call: CniCall): string | undefined;
  /** Runs the request: what the thin plugin would print, and its exit status. */
  handle(call: CniCall): Promise<CommandOutcome>;
}

/**
 * Runs requests in this process with the thin plugin's own code (`runCniCommand`), so the
 * daemon's ADD and DEL give exactly the thin plugin's results, caches and annotations.
 *
 * That code keeps its Kubernetes client, NAD reads and pod read in module state for one run;
 * in a long-lived process they would be shared by every request (stale pods and NADs, the
 * first request's credentials). Requests that would use the API are therefore declined and
 * run by the shim until a per-request session replaces that state.
 */
export class InProcessCniHandler implements CniHandler {
  #env: Record<string, string | undefined>;

  /** @param processEnv The daemon's environment (in-cluster API variables are read there). */
  constructor(processEnv: Record<string, string | undefined>) {
    this.#env = processEnv;
  }

  declines(call: CniCall): string | undefined {
    if (call.command === "VERSION") return undefined;
    let kubeconfig = "";
    try {
      kubeconfig = loadMultusNetConf(call.config).kubeconfig;
    } catch {
      // The plugin reports a broken configuration itself (DEL then uses the scratch cache).
    }
    const inCluster = this.#env.KUBERNETES_SERVICE_HOST !== undefined &&
      this.#env.KUBERNETES_SERVICE_PORT !== undefined;
    return kubeconfig !== "" || inCluster ? "kubernetes-mode" : undefined;
  }

  handle(call: CniCall): Promise<CommandOutcome> {
    return commandOutcome(call.command, sniffCniVersion(call.config), async () => {
      const { runCniCommand } = await import("../multus/plugin.ts");
      return await runCniCommand(call.env, () => Promise.resolve(call.config));
    });
  }
}
