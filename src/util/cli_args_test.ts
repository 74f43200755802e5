import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseLongOptions } from "./cli_args.ts";

const options = {
  config: { type: "string" as const },
  "bin-dir": { type: "string" as const, multiple: true },
  json: { type: "boolean" as const },
  help: { type: "boolean" as const, short: "h" },
};

Deno.test("parseLongOptions() reads what node:util parseArgs reads", () => {
  const samples = [
    ["--config", "a.conf", "x.yaml", "-"],
    ["--config=a.conf", "--bin-dir=/a", "--bin-dir", "/b", "--json"],
    ["-h", "--", "--json"],
    [],
  ];
  for (const args of samples) {
    const ours = parseLongOptions(args, { options, allowPositionals: true });
    const node = parseArgs({ args, options, allowPositionals: true, strict: true });
    assert.deepEqual(ours.values, { ...node.values }, args.join(" "));
    assert.deepEqual(ours.positionals, node.positionals, args.join(" "));
  }
});

Deno.test("parseLongOptions() rejects what strict parseArgs rejects", () => {
  for (const args of [["--nope"], ["--json=yes"], ["--config"], ["-x"]]) {
    assert.throws(
      () => parseLongOptions(args, { options, allowPositionals: true }),
      TypeError,
      args.join(" "),
    );
    assert.throws(
      () => parseArgs({ args, options, allowPositionals: true, strict: true }),
      args.join(" "),
    );
  }
  assert.throws(() => parseLongOptions(["file"], { options }), /Unexpected argument 'file'/);
});
