/** The README's first command, the demo, runs and proves its own cleanup. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/plugin_run.ts";

Deno.test("scripts/demo attaches eth0 and net1, prints them, and DEL leaves nothing", async () => {
  const out = await new Deno.Command(join(REPO_ROOT, "scripts", "demo"), {
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
  assert.match(stdout, /^eth0@\S+\s+UP\s+10\.88\.\d+\.2\/24/m);
  assert.match(stdout, /^net1@\S+\s+UP\s+10\.89\.0\.10\/24/m);
  assert.match(stdout, /"cniVersion":"1\.0\.0"/);
  assert.match(stdout, /only lo; IP leases left: none; cache files left: none/);
  assert.match(stdout, /^demo: OK$/m);
  const netns = new TextDecoder().decode(
    (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
  );
  assert.doesNotMatch(netns, /multus-demo-/, "the demo namespace is gone");
});
