/**
 * @module
 * The report of scripts/bench-peers from canned numbers (no timing): medians and p90s, the
 * ratios to Go thin and Go thick on every row, the request counts, the targets marked met or
 * missed (or not measured), and the load the run saw.
 */

import assert from "node:assert/strict";
import {
  daemonTable,
  describeRequests,
  type ImplSamples,
  latencyTable,
  type PeersResults,
  ratio,
  reportDoc,
  type RequestCount,
  type Scenario,
  stats,
  targetChecks,
} from "../../scripts/bench_peers_report.ts";

const requests = (over: Partial<RequestCount> = {}): RequestCount => ({
  podGet: 1,
  nadGet: 1,
  statusWrite: 1,
  events: 2,
  other: 0,
  critical: 3,
  ...over,
});

/** Samples whose median is `m` and p90 is `m + 10` (ten values). */
function samples(m: number, del = m, req: RequestCount = requests()): ImplSamples {
  const around = (x: number) => [x - 4, x - 3, x - 2, x - 1, x, x, x + 1, x + 2, x + 10, x + 20];
  return { add: around(m), del: around(del), requests: [req, req, req], failures: 0 };
}

function scenario(networks: number, arrival: Scenario["arrival"], daemon: number): Scenario {
  return {
    networks,
    arrival,
    impls: {
      oursThin: samples(300),
      oursDaemon: samples(daemon, 50, requests({ podGet: 0, nadGet: 0, critical: 1 })),
      goThin: samples(200, 100),
      goThick: samples(400, 200),
      ...(arrival === "spaced" ? { floor: samples(150) } : {}),
    },
  };
}

function results(over: Partial<PeersResults> = {}): PeersResults {
  return {
    command: "scripts/bench-peers",
    date: "2026-11-28 12:00 UTC",
    quick: false,
    host: { nproc: "2", cpu: "AMD EPYC", memory: "23.5 GiB", kernel: "6.18", deno: "2.9.6" },
    pods: 20,
    spacingMs: 1000,
    apiLatencyMs: 5,
    burstPods: 50,
    backgroundPods: 110,
    backgroundNads: 200,
    loads: [1, 2, 6],
    durationS: 600,
    scenarios: [
      scenario(1, "spaced", 160), // 0.80× Go thin, 0.40× Go thick
      scenario(1, "back-to-back", 100), // 0.25× Go thick
      scenario(16, "spaced", 100), // 0.50× Go thin: missed
    ],
    daemons: {
      oursDaemon: {
        idleRssMiB: 60,
        idleAfterRssMiB: 62,
        burstPeakMiB: 250,
        burstAddMs: 4000,
        burstDelMs: 2000,
        burstFailures: 0,
        shimAddMs: 150,
        directAddMs: 100,
        shimVersionMs: 45,
      },
      goThick: {
        idleRssMiB: 30,
        idleAfterRssMiB: 31,
        burstPeakMiB: 40,
        burstAddMs: 16000,
        burstDelMs: 4000,
        burstFailures: 2,
        shimAddMs: 110,
        directAddMs: 100,
        shimVersionMs: 10,
      },
    },
    oursFallbacks: 0,
    oursDaemonRequests: 120,
    oursProgram: "the bundled program",
    notes: [],
    ...over,
  };
}

Deno.test("stats: median of an even count is the mean of the middle two; p90 is nearest rank", () => {
  assert.deepEqual(stats([4, 1, 3, 2]), { median: 2.5, p90: 4, n: 4 });
  assert.deepEqual(stats([5, 1, 9]), { median: 5, p90: 9, n: 3 });
  assert.deepEqual(stats(Array.from({ length: 20 }, (_, i) => i + 1)), {
    median: 10.5,
    p90: 18,
    n: 20,
  });
  assert.equal(stats([]), undefined);
});

Deno.test("ratio: ours over theirs of the medians, nothing when a side is missing", () => {
  assert.equal(ratio(stats([100]), stats([400])), 0.25);
  assert.equal(ratio(stats([100]), undefined), undefined);
  assert.equal(ratio(undefined, stats([1])), undefined);
  assert.equal(ratio(stats([1]), stats([0])), undefined);
});

Deno.test("every latency row carries its ratios to Go thin and Go thick", () => {
  const table = latencyTable(results());
  const row = (networks: number, arrival: string, label: string) =>
    table.split("\n").find((l) =>
      l.startsWith(`| ${networks} | ${arrival} | `) && l.includes(label)
    )!.split("|").map((c) => c.trim());
  // Columns: networks, arrival, implementation, ADD, ×thin, ×thick, DEL, ×thin, ×thick, ...
  const daemon = row(1, "spaced", "daemon mode");
  assert.deepEqual(daemon.slice(4, 11), [
    "160 / 170",
    "0.80×",
    "0.40×",
    "50 / 60",
    "0.50×",
    "0.25×",
    "3 (1 status write, 2 events); 1 during the ADD",
  ]);
  const thin = row(1, "back-to-back", "ours, thin");
  assert.deepEqual(thin.slice(5, 7), ["1.50×", "0.75×"]);
  assert.deepEqual(row(1, "spaced", "Go Multus v4.0.2, thin").slice(5, 7), ["1×", "0.50×"]);
  assert.deepEqual(row(1, "spaced", "Go Multus v4.0.2, thick").slice(5, 7), ["2.00×", "1×"]);
  assert.equal(row(1, "spaced", "floor").at(-3), "0", "the floor makes no API request");
  assert.equal(
    table.split("\n").filter((l) => l.includes("floor")).length,
    2,
    "the floor is measured spaced only",
  );
});

Deno.test("the targets are met or missed by the ratios and limits of the issue", () => {
  const checks = Object.fromEntries(targetChecks(results()).map((c) => [c.target, c]));
  const met = (prefix: string) =>
    Object.entries(checks).find(([target]) => target.startsWith(prefix))![1].met;
  assert.equal(met("daemon, 1 network, spaced: ADD median ≤ 0.85× Go thin"), true);
  assert.equal(met("daemon, 1 network, spaced: ADD median ≤ 1.0× Go thick"), true);
  assert.equal(met("daemon, 1 network, back to back"), true);
  assert.equal(met("daemon, 16 networks, spaced"), false);
  assert.equal(met("daemon, 16 networks, back to back"), undefined, "not measured");
  assert.equal(met("daemon, 1 network, spaced: 1 API request"), true);
  assert.equal(met("daemon RSS idle"), true);
  assert.equal(met("daemon RSS peak"), false, "250 MiB > 200 MiB");
  // Thin overhead: 300 - 150 = 150 ms > 140 ms.
  const thin = checks[Object.keys(checks).find((t) => t.startsWith("thin, 1 network"))!];
  assert.equal(thin.met, false);
  assert.equal(thin.measured, "150 ms");

  const faster = results();
  faster.scenarios[0].impls.oursThin = samples(280);
  const thinMet = targetChecks(faster).find((c) => c.target.startsWith("thin, 1 network"))!;
  assert.equal(thinMet.met, true, "130 ms ≤ 140 ms");
  // A ratio exactly at its limit is met.
  const edge = results();
  edge.scenarios[0].impls.oursDaemon = samples(170);
  assert.equal(
    targetChecks(edge).find((c) => c.target.includes("0.85× Go thin"))!.met,
    true,
    "170 / 200 = 0.85",
  );
});

Deno.test("the daemon table subtracts the socket time from the shim's, and puts ours over Go", () => {
  const table = daemonTable(results());
  const line = (start: string) =>
    table.split("\n").find((l) => l.startsWith(`| ${start}`))!.split("|").map((c) => c.trim());
  assert.deepEqual(line("shim start-up").slice(2, 5), ["50 ms", "10 ms", "5.00×"]);
  assert.deepEqual(line("RSS idle, 110 pods").slice(2, 5), ["60.0 MiB", "30.0 MiB", "2.00×"]);
  assert.deepEqual(line("burst: 50 ADDs").slice(2, 5), ["4000 ms", "16000 ms", "0.25×"]);
  assert.deepEqual(line("burst: failed").slice(2, 4), ["0", "2"]);
});

Deno.test("request counts are medians per kind", () => {
  assert.equal(
    describeRequests([
      requests({ podGet: 3 }),
      requests({ podGet: 3 }),
      requests({ podGet: 1, events: 0 }),
    ]),
    "7 (3 pod GET, 1 NAD GET, 1 status write, 2 events); 3 during the ADD",
  );
  assert.equal(describeRequests([]), "–");
});

Deno.test("the report names the load the run saw and says a quick run is not for quoting", () => {
  const doc = reportDoc(results());
  assert.match(doc, /load average \(1 min\) during the run: min 1\.00, mean 3\.00, max 6\.00/);
  assert.match(doc, /must be regenerated on an idle machine/);
  assert.match(
    doc,
    /\| daemon RSS peak during a 50-pod burst ≤ 200 MiB \| 250 MiB \| \*\*missed\*\* \|/,
  );
  assert.doesNotMatch(doc, /Quick run/);
  assert.match(reportDoc(results({ quick: true })), /Quick run/);
});
