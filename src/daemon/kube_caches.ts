/**
 * @module
 * The daemon's watch caches: the pods of its node (`spec.nodeName=<node>`) and every
 * NetworkAttachmentDefinition, listed then watched with the daemon's shared client, trimmed
 * to the fields the plugin reads. Requests read them before asking the server
 * ({@linkcode KubeObjectCache}); other parts of the daemon (the hot-plug reconciler) follow the
 * node's pods with {@linkcode DaemonKubeCaches.onPodChange}.
 */

import type { KubeClient } from "../k8s/client.ts";
import { type CacheChange, WatchCache, type WatchCacheStats } from "../k8s/watch_cache.ts";
import {
  NAD_RESOURCE,
  type NetworkAttachmentDefinition,
  type Pod,
  POD_RESOURCE,
  trimNad,
  trimPod,
} from "../k8s/types.ts";
import type { KubeObjectCache } from "../multus/kube/session.ts";

/** A listener of the node's pod changes. */
export type PodChangeListener = (change: CacheChange<Pod>) => void;

/** Options of {@linkcode DaemonKubeCaches}. */
export interface DaemonKubeCachesOptions {
  /** The daemon's shared client (not closed by the caches). */
  client: Pick<KubeClient, "list" | "watch">;
  /** The node's name; without it there is no pod cache (requests read their pod directly). */
  nodeName: string;
  /** Where the caches report (list failures, relists); default nowhere. */
  log?: (level: "debug" | "warn", message: string) => void;
  /** Backoff of the watches after failures (default: the WatchCache's, 200 ms to 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

/** Counters of both caches, for metrics and logs. */
export interface DaemonKubeCachesStats {
  /** Absent without a node name. */
  pods?: WatchCacheStats;
  nads: WatchCacheStats;
}

/**
 * The node's pods and all NADs, kept up to date while the daemon runs. Memory: only the
 * current objects, each trimmed to its name, namespace, UID, resourceVersion, annotations
 * (and a NAD's `spec.config`); events are applied as they arrive, never kept.
 */
export class DaemonKubeCaches implements KubeObjectCache {
  /** The node's pods; undefined without a node name. */
  readonly pods: WatchCache<Pod> | undefined;
  /** Every NetworkAttachmentDefinition of the cluster. */
  readonly nads: WatchCache<NetworkAttachmentDefinition>;
  readonly #podListeners = new Set<PodChangeListener>();
  readonly #log: (level: "debug" | "warn", message: string) => void;

  constructor(options: DaemonKubeCachesOptions) {
    this.#log = options.log ?? (() => {});
    const backoff = options.backoff;
    this.pods = options.nodeName === "" ? undefined : new WatchCache<Pod>({
      client: options.client,
      resource: POD_RESOURCE,
      fieldSelector: `spec.nodeName=${options.nodeName}`,
      trim: trimPod,
      onChange: (change) => this.#firePodChange(change),
      log: this.#log,
      backoff,
    });
    this.nads = new WatchCache<NetworkAttachmentDefinition>({
      client: options.client,
      resource: NAD_RESOURCE,
      trim: trimNad,
      log: this.#log,
      backoff,
    });
  }

  /** Starts listing and watching. */
  start(): void {
    this.pods?.start();
    this.nads.start();
  }

  /** Stops both caches; resolves once their requests have ended. */
  async stop(): Promise<void> {
    await Promise.all([this.pods?.stop(), this.nads.stop()]);
  }

  /**
   * Calls `listener` for every change of the node's pods (from watch events and relists),
   * synchronously and in order; what it throws is logged. Returns the unsubscribe function.
   * Without a pod cache it is never called.
   */
  onPodChange(listener: PodChangeListener): () => void {
    this.#podListeners.add(listener);
    return () => {
      this.#podListeners.delete(listener);
    };
  }

  /** The cached pod when it has `uid` and the cache has synced; else undefined. */
  pod(namespace: string, name: string, uid: string): Pod | undefined {
    if (!this.pods?.synced) return undefined;
    const pod = this.pods.get(namespace, name);
    return pod && pod.metadata.uid === uid ? pod : undefined;
  }

  /** The cached NetworkAttachmentDefinition once the cache has synced; else undefined. */
  nad(namespace: string, name: string): NetworkAttachmentDefinition | undefined {
    if (!this.nads.synced) return undefined;
    return this.nads.get(namespace, name);
  }

  /** Counters and state of both caches. */
  stats(): DaemonKubeCachesStats {
    return { pods: this.pods?.stats(), nads: this.nads.stats() };
  }

  #firePodChange(change: CacheChange<Pod>): void {
    for (const listener of [...this.#podListeners]) {
      try {
        listener(change);
      } catch (err) {
        this.#log("warn", `a pod change listener failed on ${change.key}: ${err}`);
      }
    }
  }
}
