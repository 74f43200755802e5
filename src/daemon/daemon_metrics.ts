/**
 * @module
 * The daemon's metrics: requests by command and result, how long they ran and waited, what
 * runs and waits now, the fallbacks shims recorded, Multus's own request counter, and the
 * process's memory.
 */

import { Counter, Gauge, Histogram, MetricsRegistry, ObservedCounter } from "./metrics.ts";
import type { FallbackRecord } from "./fallback_record.ts";
import type { RequestLimiter } from "./limiter.ts";
import type { DaemonKube } from "./daemon_kube.ts";
import type { WatchCacheStats } from "../k8s/watch_cache.ts";

/** Buckets (seconds) of the latency histograms: a VERSION answer up to a slow delegate. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The daemon's metric set. */
export class DaemonMetrics {
  readonly registry: MetricsRegistry = new MetricsRegistry();
  /** `result`: success, error, busy (code 11, not run), fallback (left to the shim), timeout. */
  readonly requests: Counter;
  /** Time from a request's start (slot taken) to its end. */
  readonly duration: Histogram;
  /** Time a request waited for a slot (also for refused ones). */
  readonly queueWait: Histogram;
  /** Multus's `multus_server_request_total{handler,code,method}`. */
  readonly httpRequests: Counter;
  /** How long each delegate plugin ran, by plugin file, CNI command and result. */
  readonly delegateDuration: Histogram;

  constructor(
    sources: { limiter: RequestLimiter; fallbacks: FallbackRecord; kube?: DaemonKube },
  ) {
    const r = this.registry;
    this.requests = r.register(
      new Counter(
        "multus_daemon_requests_total",
        "CNI requests by command and result (success, error, busy, fallback, timeout)",
        ["command", "result"],
      ),
    );
    this.duration = r.register(
      new Histogram(
        "multus_daemon_request_duration_seconds",
        "Time a CNI request ran in the daemon, by command",
        LATENCY_BUCKETS,
        ["command"],
      ),
    );
    this.queueWait = r.register(
      new Histogram(
        "multus_daemon_queue_wait_seconds",
        "Time a CNI request waited for a free slot",
        LATENCY_BUCKETS,
      ),
    );
    r.register(
      new Gauge("multus_daemon_requests_running", "CNI requests running now", {
        collect: (g) => g.set({}, sources.limiter.running),
      }),
    );
    r.register(
      new Gauge("multus_daemon_requests_waiting", "CNI requests waiting for a slot now", {
        collect: (g) => g.set({}, sources.limiter.queued),
      }),
    );
    r.register(
      new ObservedCounter(
        "multus_shim_fallbacks_total",
        "CNI requests shims ran themselves because the daemon did not, by command and reason",
        ["command", "reason"],
        () =>
          sources.fallbacks.read().map((c) => ({
            labels: { command: c.command, reason: c.reason },
            value: c.count,
          })),
      ),
    );
    this.httpRequests = r.register(
      new Counter("multus_server_request_total", "Counter of HTTP requests", [
        "handler",
        "code",
        "method",
      ]),
    );
    this.delegateDuration = r.register(
      new Histogram(
        "multus_daemon_delegate_duration_seconds",
        "Time a delegate plugin ran, by plugin, command and result (success, error)",
        LATENCY_BUCKETS,
        ["plugin", "command", "result"],
      ),
    );
    if (sources.kube) registerKubeMetrics(r, sources.kube);
    r.register(
      new Gauge("process_resident_memory_bytes", "Resident memory size in bytes", {
        collect: (g) => g.set({}, Deno.memoryUsage().rss),
      }),
    );
    r.register(
      new Gauge(
        "process_heap_bytes",
        "JavaScript heap in bytes: used and total (V8's heap), external (buffers outside it)",
        {
          labels: ["kind"],
          collect: (g) => {
            const usage = Deno.memoryUsage();
            g.set({ kind: "used" }, usage.heapUsed);
            g.set({ kind: "total" }, usage.heapTotal);
            g.set({ kind: "external" }, usage.external);
          },
        },
      ),
    );
  }
}

/** API calls, watch caches and the event queue of the daemon's Kubernetes access. */
function registerKubeMetrics(r: MetricsRegistry, kube: DaemonKube): void {
  r.register(
    new ObservedCounter(
      "multus_daemon_api_requests_total",
      "Kubernetes API calls (retries included) by verb, resource and result (ok, error)",
      ["verb", "resource", "result"],
      () => kube.apiCalls.entries(),
    ),
  );
  const caches = (): [string, WatchCacheStats][] => {
    const stats = kube.caches?.stats();
    if (!stats) return [];
    const out: [string, WatchCacheStats][] = [["network-attachment-definitions", stats.nads]];
    if (stats.pods) out.unshift(["pods", stats.pods]);
    const slices = kube.dra?.stats().slices;
    if (slices) out.push(["resourceslices", slices]);
    return out;
  };
  r.register(
    new Gauge(
      "multus_daemon_cache_objects",
      "Objects in the watch caches and the resource claim cache, by resource",
      {
        labels: ["resource"],
        collect: (g) => {
          caches().forEach(([resource, s]) => g.set({ resource }, s.size));
          const dra = kube.dra?.stats();
          if (dra) g.set({ resource: "resourceclaims" }, dra.claims);
        },
      },
    ),
  );
  r.register(
    new Gauge("multus_daemon_cache_synced", "1 once a watch cache has listed, by resource", {
      labels: ["resource"],
      collect: (g) => caches().forEach(([resource, s]) => g.set({ resource }, s.synced ? 1 : 0)),
    }),
  );
  r.register(
    new Gauge(
      "multus_daemon_cache_stale_seconds",
      "Seconds since a watch cache last heard from the server (event, bookmark or list)",
      {
        labels: ["resource"],
        collect: (g) =>
          caches().forEach(([resource, s]) => {
            const last = Math.max(s.lastEventAt ?? 0, s.lastListAt ?? 0);
            if (last > 0) g.set({ resource }, (Date.now() - last) / 1000);
          }),
      },
    ),
  );
  r.register(
    new ObservedCounter(
      "multus_daemon_cache_relists_total",
      "Lists of a watch cache after its first (410 Gone, a broken event), by resource",
      ["resource"],
      () => caches().map(([resource, s]) => ({ labels: { resource }, value: s.relists })),
    ),
  );
  r.register(
    new ObservedCounter(
      "multus_daemon_cache_events_total",
      "Watch events (added, modified, deleted) applied to a watch cache, by resource",
      ["resource"],
      () => caches().map(([resource, s]) => ({ labels: { resource }, value: s.events })),
    ),
  );
  r.register(
    new ObservedCounter(
      "multus_daemon_cache_watch_errors_total",
      "Failed lists and watches of a watch cache, by resource",
      ["resource"],
      () => caches().map(([resource, s]) => ({ labels: { resource }, value: s.errors })),
    ),
  );
  r.register(
    new Gauge("multus_daemon_event_queue_depth", "Pod events waiting or being posted", {
      collect: (g) => g.set({}, kube.events.depth),
    }),
  );
  r.register(
    new ObservedCounter(
      "multus_daemon_events_total",
      "Pod events by result (sent, failed, dropped: the queue was full)",
      ["result"],
      () => [
        { labels: { result: "sent" }, value: kube.events.sent },
        { labels: { result: "failed" }, value: kube.events.failed },
        { labels: { result: "dropped" }, value: kube.events.dropped },
      ],
    ),
  );
}
