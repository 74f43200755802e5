/**
 * The plugin reads its whole configuration from stdin, however large, as UTF-8 (characters
 * split between two reads included).
 */

import assert from "node:assert/strict";
import { makeTestRoot } from "../helpers/plugin_run.ts";

Deno.test("a configuration of several hundred KiB is read whole, multi-byte characters intact", async () => {
  const root = await makeTestRoot();
  try {
    // 2-byte characters across 64 KiB reads; the name is echoed back in the error details.
    const name = "x" + "é".repeat(150_000);
    const run = await root.run({
      command: "ADD",
      containerId: "ctr-stdin",
      netns: "/var/run/netns/none",
      config: {
        cniVersion: "1.0.0",
        name,
        type: "multus",
        delegates: [{ cniVersion: "1.0.0", name: "n", type: "bridge" }],
      },
    });
    assert.equal(run.code, 1);
    assert.equal(
      run.json!.msg,
      'invalid characters found in network name (ADD of container "ctr-stdin")',
    );
    assert.equal(run.json!.details, name);
  } finally {
    await root.cleanup();
  }
});
