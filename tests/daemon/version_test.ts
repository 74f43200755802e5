/**
 * `multus daemon -version` as Multus's `multus-daemon -version`: the version on stdout in
 * Multus's `multus-daemon: version:...` form, exit status 4.
 */

import assert from "node:assert/strict";
import { daemonRun } from "./_helpers.ts";

Deno.test("daemon -version and --version print the version as Multus's multus-daemon does and exit 4", async () => {
  for (const flag of ["-version", "--version"]) {
    const run = await daemonRun([flag]);
    assert.equal(run.code, 4, `${flag}: ${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^multus-daemon: version:\S+\n$/, flag);
    assert.equal(run.stderr, "", flag);
  }
});
