/**
 * @module
 * The benchmark chart (scripts/bench.ts, docs/latency.svg) from made-up rows: the x axis is
 * proportional to the number of networks, and a line never joins two modes (delegates mode
 * is a lone marker at 0, Kubernetes mode one line per API latency, the floor its own line).
 */

import assert from "node:assert/strict";
import { latencyChart } from "../../scripts/bench.ts";

type Rows = Parameters<typeof latencyChart>[0];

const stat = (median: number) => ({ median, p90: median, max: median });

/** Rows as scripts/bench makes them, with recognisable medians. */
function rows(): Rows {
  const out: Rows = [{
    networks: 0,
    mode: "delegates",
    apiMs: undefined,
    pluginAdd: stat(111),
    pluginDel: stat(1),
    floorAdd: stat(20),
    floorDel: stat(1),
    requests: [],
  }];
  for (const networks of [0, 1, 4, 16]) {
    for (const apiMs of [0, 5]) {
      out.push({
        networks,
        mode: "kubernetes",
        apiMs,
        pluginAdd: stat(200 + 10 * networks + apiMs),
        pluginDel: stat(1),
        floorAdd: stat(20 + 10 * networks),
        floorDel: stat(1),
        requests: [],
      });
    }
  }
  return out;
}

function polylines(svg: string): [number, number][][] {
  return [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) =>
    m[1].split(" ").map((p) => p.split(",").map(Number) as [number, number])
  );
}

Deno.test("the latency chart's x axis is proportional to the number of networks", () => {
  const lines = polylines(latencyChart(rows()));
  assert.equal(lines.length, 3, "two API latencies and the floor");
  for (const line of lines) {
    assert.equal(line.length, 4);
    const [x0, x1, x4, x16] = line.map(([x]) => x);
    const unit = x1 - x0;
    assert.ok(unit > 0);
    assert.ok(Math.abs((x4 - x0) - 4 * unit) < 0.5, `4 networks at 4 units: ${line}`);
    assert.ok(Math.abs((x16 - x0) - 16 * unit) < 0.5, `16 networks at 16 units: ${line}`);
  }
});

Deno.test("the latency chart draws one mode per line; delegates mode is a lone marker", () => {
  const svg = latencyChart(rows());
  const lines = polylines(svg);
  // y grows downwards: the same medians give the same y, so compare the lines' y at 0.
  const yAt0 = lines.map((line) => line[0][1]);
  const marker = /<rect x="([\d.]+)" y="([\d.]+)" width="10" height="10" fill="#9467bd"\/>/
    .exec(svg);
  assert.ok(marker, "the delegates-mode marker");
  const markerY = Number(marker[2]) + 5;
  for (const y of yAt0) assert.ok(Math.abs(y - markerY) > 1, "no line passes through it");
  // The Kubernetes lines start at their own 0-network medians (200, 205), not delegates mode's.
  const ordered = [...yAt0].sort((a, b) => a - b);
  assert.ok(ordered[0] < markerY && ordered[1] < markerY, "both Kubernetes lines above it");
  assert.match(svg, /plugin, delegates mode \(no API\): 111 ms/);
  assert.match(svg, /plugin, Kubernetes mode, API latency \+5 ms/);
});
