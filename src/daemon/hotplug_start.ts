/**
 * @module
 * Starts hot-plug in the daemon (daemon key `hotPlug`) on the daemon's Kubernetes access:
 * its shared client (the daemon configuration's `kubeconfig`, else the in-cluster one) and
 * its watch cache of the node's pods; stops it.
 */

import type { Exec } from "../cni/exec.ts";
import type { Pod } from "../k8s/types.ts";
import type { Logger } from "../log/logger.ts";
import type { ConfOverlay } from "../multus/config/conf_overlay.ts";
import { hotplugNetConf } from "./hotplug_conf.ts";
import type { DaemonKube } from "./daemon_kube.ts";
import { HotplugMetrics, HotplugReconciler, type PodSource } from "./hotplug.ts";
import type { RequestLimiter } from "./limiter.ts";
import type { MetricsRegistry } from "./metrics.ts";

/** The daemon's pod cache as a {@linkcode PodSource}. */
export class DaemonKubePods implements PodSource {
  #kube: DaemonKube;

  constructor(kube: DaemonKube) {
    this.#kube = kube;
  }

  get(namespace: string, name: string): Pod | undefined {
    return this.#kube.caches?.pods?.get(namespace, name);
  }

  list(): Iterable<Pod> {
    return [...(this.#kube.caches?.pods?.values() ?? [])];
  }

  onChange(listener: (key: string) => void): () => void {
    return this.#kube.onPodChange((change) => listener(change.key));
  }

  async waitForSync(timeoutMs: number): Promise<boolean> {
    const pods = this.#kube.caches?.pods;
    return pods ? await pods.waitForSync({ timeoutMs }) : false;
  }
}

/** A running hot-plug. */
export interface RunningHotplug {
  reconciler: HotplugReconciler;
  /** Stops the reconciler (passes running go on until their end). */
  stop(): Promise<void>;
}

/** What {@linkcode startHotplug} needs of the daemon. */
export interface HotplugStartOptions {
  nodeName: string;
  overlay: ConfOverlay;
  limiter: RequestLimiter;
  registry: MetricsRegistry;
  queueWaitMs: number;
  passTimeoutMs: number;
  log: Logger;
  env: Record<string, string | undefined>;
  /** The daemon's clients and caches. */
  kube: DaemonKube;
  /** How delegates run (the daemon's: clean environment, chrootDir, timed). */
  exec: Exec;
}

/**
 * Opens the API client, starts the pod watch and the reconciler. Throws (a message for the
 * daemon's log) when the configuration gives no API access or cannot be used.
 */
export async function startHotplug(o: HotplugStartOptions): Promise<RunningHotplug> {
  const conf = hotplugNetConf(o.overlay, "multus-cni-network");
  const access = await o.kube.access(conf, o.env);
  if (!access) {
    throw new Error(
      'hotPlug needs the API server: set "kubeconfig" in the daemon configuration, or run ' +
        "the daemon in the cluster",
    );
  }
  if (!o.kube.caches?.pods) {
    // The daemon's caches watch the API server of its own configuration, which must read as
    // a multus configuration (it names the cluster network) and give a node name.
    throw new Error(
      "hotPlug needs the daemon's cache of the node's pods, which it has only when the daemon " +
        'configuration is a usable multus configuration (with "clusterNetwork" or "delegates") ' +
        "naming its API server, and a node name is given",
    );
  }
  const pods = new DaemonKubePods(o.kube);
  const depth = { of: () => 0 };
  const metrics = new HotplugMetrics(o.registry, () => depth.of());
  const reconciler = new HotplugReconciler({
    nodeName: o.nodeName,
    conf: (network) => hotplugNetConf(o.overlay, network),
    pods,
    openAccess: o.kube.access,
    limiter: o.limiter,
    queueWaitMs: o.queueWaitMs,
    passTimeoutMs: o.passTimeoutMs,
    maxQueued: 4096,
    workers: 2,
    backoff: { initialMs: 1000, maxMs: 5 * 60_000 },
    resyncMs: 5 * 60_000,
    metrics,
    log: o.log,
    env: o.env,
    exec: o.exec,
  });
  depth.of = () => reconciler.queueDepth;
  // Not awaited: the first list may take long; pods are passed as they come.
  const started = reconciler.start();
  return {
    reconciler,
    async stop() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([started, reconciler.stop()]),
        new Promise((resolve) => timer = setTimeout(resolve, 1000)),
      ]);
      clearTimeout(timer);
    },
  };
}
