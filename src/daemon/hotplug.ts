/**
 * @module
 * The daemon's hot-plug reconciler (daemon key `hotPlug`): for each pod of this node whose
 * sandbox this node's multus set up, the networks its `k8s.v1.cni.cncf.io/networks`
 * annotation names are attached and those it no longer names detached, while the pod runs.
 *
 * Level-based: a pod's key is queued at start, after every change the pod watch reports
 * (events and relists alike) and at every resync; a pass compares what the annotation asks
 * for with what the scratch cache says is attached, so a restart, a missed event or a
 * failure in the middle ends in the same state. The queue holds each pod once (a pod queued
 * while its pass runs is passed again after it), is bounded, and a failed pass is retried
 * after a capped exponential backoff.
 *
 * Safe against the runtime: each sandbox's pass runs through the daemon's request limiter
 * under the container's key, so it never runs beside a CNI request for that container (a
 * runtime ADD or DEL waits for it or it waits for them); inside, the cache is read again
 * (gone: deleted meanwhile), the pod's UID must be the cached one, the pod must be on this
 * node, and the netns must exist.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { type Exec, processExec } from "../cni/exec.ts";
import { convertResult, type ResultCurrent } from "../cni/result.ts";
import type { Pod } from "../k8s/types.ts";
import type { Logger } from "../log/logger.ts";
import type { MultusNetConf } from "../multus/config/netconf.ts";
import type { Invocation, KubeSession } from "../multus/config/invocation.ts";
import { type OpenKubeAccess, openKubeSession } from "../multus/kube/session.ts";
import {
  type HotplugOutcome,
  needsPass,
  reconcileSandbox,
  type Sandbox,
  sandboxInvocation,
  sandboxPod,
} from "../multus/run/hotplug.ts";
import { backoffDelay, type BackoffOptions } from "../util/backoff.ts";
import { errorMessage } from "../util/errors.ts";
import { exists } from "../util/exists.ts";
import { lockSandbox } from "../multus/run/sandbox_lock.ts";
import { SandboxIndex } from "./hotplug_sandboxes.ts";
import { Counter, Gauge, type MetricsRegistry } from "./metrics.ts";
import { LimiterRefusal, type RequestLimiter } from "./limiter.ts";

/** Where the reconciler reads the node's pods: a watch cache, by `namespace/name`. */
export interface PodSource {
  /** The pod as last seen, or undefined. */
  get(namespace: string, name: string): Pod | undefined;
  /** Every pod seen. */
  list(): Iterable<Pod>;
  /**
   * Calls `listener` with the `namespace/name` of each pod that changed (watch event or
   * relist); returns the function that stops it.
   */
  onChange(listener: (key: string) => void): () => void;
  /** Resolves true once the first list is in, false at the deadline. */
  waitForSync(timeoutMs: number): Promise<boolean>;
}

/** Counters and gauges of hot-plug. */
export class HotplugMetrics {
  /** Networks attached, by result. */
  readonly attaches: Counter;
  readonly detaches: Counter;
  /** Passes that failed (each retried). */
  readonly failures: Counter;
  readonly passes: Counter;

  constructor(registry: MetricsRegistry, queueDepth: () => number) {
    this.attaches = registry.register(
      new Counter("multus_hotplug_attaches_total", "Networks hot-plugged into running pods"),
    );
    this.detaches = registry.register(
      new Counter("multus_hotplug_detaches_total", "Networks hot-unplugged from running pods"),
    );
    this.failures = registry.register(
      new Counter(
        "multus_hotplug_failures_total",
        "Hot-plug passes that failed and were rolled back (each is retried)",
      ),
    );
    this.passes = registry.register(
      new Counter("multus_hotplug_passes_total", "Hot-plug passes over a sandbox that changed it"),
    );
    registry.register(
      new Gauge("multus_hotplug_queue_depth", "Pods waiting for a hot-plug pass", {
        collect: (g) => g.set({}, queueDepth()),
      }),
    );
  }
}

/** What a {@linkcode HotplugReconciler} needs. */
export interface HotplugOptions {
  /** This node's name: pods elsewhere are never touched. */
  nodeName: string;
  /** The configuration delegates run with (the daemon's netconf keys). */
  conf: (network: string) => MultusNetConf;
  pods: PodSource;
  /** The daemon's API access (shared client, caches) for a configuration. */
  openAccess: OpenKubeAccess;
  limiter: RequestLimiter;
  /** How long a pass may wait for its container's slot. */
  queueWaitMs: number;
  /** How long one pass over a pod may take before its worker moves on (it goes on). */
  passTimeoutMs: number;
  /** Pods that may wait; beyond, a pod is dropped (the next resync queues it again). */
  maxQueued: number;
  /** Passes over different pods at once. */
  workers: number;
  /** Backoff of a failing pod. */
  backoff: BackoffOptions;
  /** Every pod is queued again this often (0: never). */
  resyncMs: number;
  metrics: HotplugMetrics;
  log: Logger;
  env: Record<string, string | undefined>;
  exec?: Exec;
}

/** The reconciler: start it once, stop it before the daemon exits. */
export class HotplugReconciler {
  #o: HotplugOptions;
  #sandboxes: SandboxIndex;
  /** Pods waiting, in order. */
  #queue = new Set<string>();
  /** Pods with a pass running. */
  #running = new Set<string>();
  /** Pods queued again while their pass ran. */
  #dirty = new Set<string>();
  /** Failing pods: failures in a row and the timer of their retry. */
  #retries = new Map<string, { failures: number; timer?: ReturnType<typeof setTimeout> }>();
  /** Idle workers, woken one per queued pod. */
  #idle: (() => void)[] = [];
  #stopped = false;
  #unsubscribe: (() => void) | undefined;
  #resync: ReturnType<typeof setInterval> | undefined;
  #workers: Promise<void>[] = [];

  constructor(options: HotplugOptions) {
    this.#o = options;
    this.#sandboxes = new SandboxIndex(options.conf("multus-cni-network").cniDir);
  }

  /** Pods waiting for a pass (retries included). */
  get queueDepth(): number {
    return this.#queue.size + [...this.#retries.values()].filter((r) => r.timer).length;
  }

  /**
   * Subscribes to pod changes, waits (bounded) for the first list, then queues every pod;
   * the workers start at once.
   */
  async start(syncTimeoutMs = 30_000): Promise<void> {
    this.#unsubscribe = this.#o.pods.onChange((key) => this.enqueue(key));
    for (let i = 0; i < this.#o.workers; i++) this.#workers.push(this.#work());
    if (!await this.#o.pods.waitForSync(syncTimeoutMs)) {
      this.#o.log.warn(
        `hot-plug: the pod list is not in after ${
          syncTimeoutMs / 1000
        } s; pods are passed as they come`,
      );
    }
    this.#enqueueAll();
    if (this.#o.resyncMs > 0) {
      this.#resync = setInterval(() => this.#enqueueAll(), this.#o.resyncMs);
    }
  }

  /** Stops taking pods; resolves when the passes running are over. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#resync);
    for (const r of this.#retries.values()) clearTimeout(r.timer);
    this.#retries.clear();
    this.#queue.clear();
    for (const wake of this.#idle.splice(0)) wake();
    await Promise.all(this.#workers);
  }

  /** Queues a pod (`namespace/name`) once; a pod waiting for its retry keeps waiting. */
  enqueue(key: string): void {
    if (this.#stopped) return;
    if (this.#retries.get(key)?.timer) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queue.has(key)) return;
    if (this.#queue.size >= this.#o.maxQueued) {
      this.#o.log.warn(
        `hot-plug: ${this.#queue.size} pods wait already; pod "${key}" is passed at the next resync`,
      );
      return;
    }
    this.#queue.add(key);
    this.#idle.shift()?.();
  }

  #enqueueAll(): void {
    for (const pod of this.#o.pods.list()) {
      if (pod.metadata.namespace) this.enqueue(`${pod.metadata.namespace}/${pod.metadata.name}`);
    }
  }

  async #work(): Promise<void> {
    while (!this.#stopped) {
      const key = this.#queue.values().next().value;
      if (key === undefined) {
        await new Promise<void>((resolve) => this.#idle.push(resolve));
        continue;
      }
      this.#queue.delete(key);
      this.#running.add(key);
      let failed: CniError | undefined;
      try {
        failed = await this.#withDeadline(key, this.#passPod(key));
      } catch (err) {
        failed = err instanceof CniError
          ? err
          : new CniError(CniErrorCode.Internal, errorMessage(err));
      }
      this.#running.delete(key);
      if (this.#stopped) break;
      if (failed) this.#retryLater(key, failed);
      else this.#retries.delete(key);
      if (this.#dirty.delete(key) && !failed) this.enqueue(key);
    }
  }

  async #withDeadline<T>(key: string, work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() =>
        reject(
          new CniError(
            CniErrorCode.TryAgainLater,
            `hot-plug of pod "${key}" still runs after ${this.#o.passTimeoutMs / 1000} s`,
          ),
        ), this.#o.passTimeoutMs);
    });
    work.catch(() => {});
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #retryLater(key: string, error: CniError): void {
    const entry = this.#retries.get(key) ?? { failures: 0 };
    entry.failures++;
    const delay = backoffDelay(entry.failures, this.#o.backoff);
    this.#o.log.error(
      `hot-plug of pod "${key}" failed (${entry.failures} in a row, next try in ${
        Math.round(delay / 100) / 10
      } s): ${error.message}${error.details ? ` (${error.details})` : ""}`,
    );
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.enqueue(key);
    }, delay);
    this.#retries.set(key, entry);
  }

  /** One pass over every sandbox of a pod; resolves with the first failure, if any. */
  async #passPod(key: string): Promise<CniError | undefined> {
    const [namespace, name] = key.split("/");
    const pod = this.#o.pods.get(namespace, name);
    if (!pod) return undefined;
    if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== this.#o.nodeName) {
      return undefined;
    }
    let first: CniError | undefined;
    for (const containerId of await this.#sandboxes.containersOf(key)) {
      const error = await this.#passSandbox(key, containerId, pod);
      first ??= error;
    }
    return first;
  }

  async #passSandbox(key: string, containerId: string, seen: Pod): Promise<CniError | undefined> {
    const o = this.#o;
    const log = o.log.child({ containerId, pod: key });
    let outcome: HotplugOutcome | undefined;
    let fresh: Pod | undefined;
    try {
      outcome = await o.limiter.run(containerId, o.queueWaitMs, async () => {
        // Under the container's key and lock: no CNI request for it runs now, in this
        // process or another.
        const lock = await lockSandbox(containerId, log);
        let cached = true;
        try {
          const { sandbox, why } = await this.#sandboxes.load(containerId);
          if (!sandbox) {
            cached = false;
            log.debug(`hot-plug: container skipped: ${why}`);
            return undefined;
          }
          const result = await this.#passLocked(log, sandbox, seen);
          fresh = result?.pod;
          return result?.outcome;
        } finally {
          await lock.release({ remove: !cached });
        }
      });
    } catch (err) {
      if (err instanceof LimiterRefusal) {
        if (err.reason === "draining") return undefined;
        return new CniError(
          CniErrorCode.TryAgainLater,
          `hot-plug of pod "${key}" could not run: ${err.message}`,
        );
      }
      const error = err instanceof CniError
        ? err
        : new CniError(CniErrorCode.Internal, errorMessage(err));
      if (fresh ?? seen) {
        await this.#events(fresh ?? seen, {
          detached: [],
          attached: [],
          statusWritten: false,
          error,
        });
      }
      o.metrics.failures.inc();
      return error;
    }
    if (!outcome) return undefined;
    const changed = outcome.attached.length + outcome.detached.length > 0;
    if (changed || outcome.statusWritten) o.metrics.passes.inc();
    o.metrics.attaches.inc({}, outcome.attached.length);
    o.metrics.detaches.inc({}, outcome.detached.length);
    for (const d of outcome.detached) log.verbose(`hot-plug: detached ${d.name} (${d.ifName})`);
    for (const a of outcome.attached) {
      log.verbose(`hot-plug: attached ${a.delegate.name} as ${a.delegate.ifName}`);
    }
    if (outcome.error) o.metrics.failures.inc();
    await this.#events(fresh!, outcome);
    return outcome.error;
  }

  /** The pass proper, once the sandbox is locked and read. */
  async #passLocked(
    log: Logger,
    sandbox: Sandbox,
    seen: Pod,
  ): Promise<{ pod: Pod; outcome: HotplugOutcome } | undefined> {
    const o = this.#o;
    const conf = o.conf(sandbox.network);
    const cachedPod = sandboxPod(sandbox);
    if (!cachedPod || !this.#samePod(log, cachedPod.uid, seen)) return undefined;
    if (!needsPass(sandbox, seen, conf)) return undefined;
    if (!await exists(sandbox.sandbox.netns)) {
      log.verbose(`hot-plug: netns ${sandbox.sandbox.netns} is gone; the runtime's DEL follows`);
      return undefined;
    }
    let session: Promise<KubeSession | undefined> | undefined;
    const inv: Invocation = sandboxInvocation(sandbox, {
      conf,
      env: o.env,
      log,
      exec: o.exec ?? processExec,
      kube: () => session ??= openKubeSession(inv, o.openAccess),
    });
    const kube = await inv.kube();
    if (!kube) return undefined;
    // The watch may lag: the pass works on the pod as the API has it now.
    const pod = await kube.client.getPod(cachedPod.namespace, cachedPod.name);
    if (!this.#samePod(log, cachedPod.uid, pod)) return undefined;
    if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== o.nodeName) return undefined;
    return { pod, outcome: await reconcileSandbox(inv, sandbox, { pod, kube }) };
  }

  /** The pod's UID must be the one its sandbox was set up for. */
  #samePod(log: Logger, cachedUid: string | undefined, pod: Pod): boolean {
    const uid = pod.metadata.uid ?? "";
    if (cachedUid && uid && cachedUid === uid) return true;
    log.debug(
      `hot-plug: container skipped: it was set up for pod UID "${
        cachedUid ?? ""
      }", the pod now has "${uid}"`,
    );
    return false;
  }

  /** One event per network attached or detached, one for a failure. */
  async #events(pod: Pod, outcome: HotplugOutcome): Promise<void> {
    const o = this.#o;
    const access = await o.openAccess(o.conf("multus-cni-network"), o.env).catch(() => undefined);
    if (!access) return;
    const client = access.client;
    const send = (type: "Normal" | "Warning", reason: string, message: string) =>
      client.createEvent(pod, { type, reason, message }).then(
        () => {},
        (err) => this.#o.log.verbose(`hot-plug: event "${message}" not sent: ${errorMessage(err)}`),
      );
    const sends: Promise<void>[] = [];
    for (const d of outcome.detached) {
      sends.push(
        send("Normal", "RemovedInterface", `Remove ${d.ifName} from ${d.name} (hot-plug)`),
      );
    }
    for (const { delegate, result } of outcome.attached) {
      const current = convertResult(result, "1.1.0") as ResultCurrent;
      const ips = (current.ips ?? []).map((ip) => ip.address).join(" ");
      sends.push(
        send(
          "Normal",
          "AddedInterface",
          `Add ${delegate.ifName} [${ips}] from ${delegate.name} (hot-plug)`,
        ),
      );
    }
    if (outcome.error) {
      const e = outcome.error;
      sends.push(
        send(
          "Warning",
          "HotPlugFailed",
          `${e.message}${e.details ? ` (${e.details})` : ""}; retried with backoff`,
        ),
      );
    }
    await Promise.all(sends);
  }
}
