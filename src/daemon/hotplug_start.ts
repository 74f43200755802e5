/**
 * @module
 * Starts hot-plug in the daemon (daemon key `hotPlug`): its API client (the daemon
 * configuration's `kubeconfig`, else the in-cluster one), a watch of this node's pods, and
 * the reconciler; stops them.
 */

import type { KubeClient } from "../k8s/client.ts";
import { type Pod, POD_RESOURCE, trimPod } from "../k8s/types.ts";
import { WatchCache } from "../k8s/watch_cache.ts";
import type { Logger } from "../log/logger.ts";
import type { ConfOverlay } from "../multus/config/conf_overlay.ts";
import { hotplugNetConf } from "./hotplug_conf.ts";
import { openKubeClient } from "../multus/kube/session.ts";
import { HotplugMetrics, HotplugReconciler, type PodSource } from "./hotplug.ts";
import type { RequestLimiter } from "./limiter.ts";
import type { MetricsRegistry } from "./metrics.ts";

/** A {@linkcode PodSource} over a watch of this node's pods of its own. */
export class WatchedPods implements PodSource {
  #cache: WatchCache<Pod>;
  #listeners = new Set<(key: string) => void>();

  constructor(client: KubeClient, nodeName: string, log: Logger) {
    this.#cache = new WatchCache<Pod>({
      client,
      resource: POD_RESOURCE,
      fieldSelector: `spec.nodeName=${nodeName}`,
      trim: trimPod,
      onChange: (change) => {
        for (const listener of this.#listeners) listener(change.key);
      },
      log: (level, message) =>
        level === "warn" ? log.warn(`pod watch: ${message}`) : log.debug(`pod watch: ${message}`),
    });
  }

  start(): void {
    this.#cache.start();
  }

  stop(): Promise<void> {
    return this.#cache.stop();
  }

  get(namespace: string, name: string): Pod | undefined {
    return this.#cache.get(namespace, name);
  }

  list(): Iterable<Pod> {
    return [...this.#cache.values()];
  }

  onChange(listener: (key: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  waitForSync(timeoutMs: number): Promise<boolean> {
    return this.#cache.waitForSync({ timeoutMs });
  }
}

/** A running hot-plug. */
export interface RunningHotplug {
  reconciler: HotplugReconciler;
  /** Stops the reconciler (passes running go on until their end) and the pod watch. */
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
}

/**
 * Opens the API client, starts the pod watch and the reconciler. Throws (a message for the
 * daemon's log) when the configuration gives no API access or cannot be used.
 */
export async function startHotplug(o: HotplugStartOptions): Promise<RunningHotplug> {
  const conf = hotplugNetConf(o.overlay, "multus-cni-network");
  const client = await openKubeClient(conf, o.env);
  if (!client) {
    throw new Error(
      'hotPlug needs the API server: set "kubeconfig" in the daemon configuration, or run ' +
        "the daemon in the cluster",
    );
  }
  const pods = new WatchedPods(client, o.nodeName, o.log);
  const depth = { of: () => 0 };
  const metrics = new HotplugMetrics(o.registry, () => depth.of());
  const reconciler = new HotplugReconciler({
    nodeName: o.nodeName,
    conf: (network) => hotplugNetConf(o.overlay, network),
    pods,
    client,
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
  });
  depth.of = () => reconciler.queueDepth;
  pods.start();
  // Not awaited: the first list may take long; pods are passed as they come.
  const started = reconciler.start();
  return {
    reconciler,
    async stop() {
      await Promise.race([
        Promise.all([started, reconciler.stop()]),
        new Promise((resolve) => setTimeout(resolve, 1000)),
      ]);
      await pods.stop();
      client.close();
    },
  };
}
