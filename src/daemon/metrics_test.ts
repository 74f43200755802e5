import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, MetricsRegistry, ObservedCounter } from "./metrics.ts";

Deno.test("the text exposition has HELP, TYPE, labels (escaped) and cumulative histogram buckets", () => {
  const registry = new MetricsRegistry();
  const counter = registry.register(new Counter("x_total", "Things\ncounted", ["kind"]));
  counter.inc({ kind: 'a"b\\c' });
  counter.inc({ kind: 'a"b\\c' }, 2);
  counter.inc({ kind: "plain" });
  registry.register(new Gauge("x_now", "Now", { collect: (g) => g.set({}, 7) }));
  const histogram = registry.register(new Histogram("x_seconds", "Time", [1, 0.1], ["cmd"]));
  histogram.observe({ cmd: "ADD" }, 0.05);
  histogram.observe({ cmd: "ADD" }, 0.5);
  histogram.observe({ cmd: "ADD" }, 5);
  registry.register(
    new ObservedCounter(
      "y_total",
      "Read",
      ["reason"],
      () => [{ labels: { reason: "r" }, value: 3 }],
    ),
  );
  assert.equal(
    registry.render(),
    [
      "# HELP x_total Things\\ncounted",
      "# TYPE x_total counter",
      'x_total{kind="a\\"b\\\\c"} 3',
      'x_total{kind="plain"} 1',
      "# HELP x_now Now",
      "# TYPE x_now gauge",
      "x_now 7",
      "# HELP x_seconds Time",
      "# TYPE x_seconds histogram",
      'x_seconds_bucket{cmd="ADD",le="0.1"} 1',
      'x_seconds_bucket{cmd="ADD",le="1"} 2',
      'x_seconds_bucket{cmd="ADD",le="+Inf"} 3',
      'x_seconds_sum{cmd="ADD"} 5.55',
      'x_seconds_count{cmd="ADD"} 3',
      "# HELP y_total Read",
      "# TYPE y_total counter",
      'y_total{reason="r"} 3',
      "",
    ].join("\n"),
  );
});

Deno.test("a counter refuses to go down, a missing label and a duplicate metric are errors", () => {
  const registry = new MetricsRegistry();
  const counter = registry.register(new Counter("c_total", "C", ["a"]));
  assert.throws(() => counter.inc({ a: "x" }, -1), RangeError);
  assert.throws(() => counter.inc({}), /Missing label "a"/);
  assert.throws(() => registry.register(new Counter("c_total", "again")), /Duplicate metric/);
});
