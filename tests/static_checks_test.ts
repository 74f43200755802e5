/**
 * The tree stays clean: `deno fmt --check`, `deno lint` and `deno check` pass, and no JSR
 * specifier is used (JSR is unreachable from our machines).
 */

import assert from "node:assert/strict";
import { REPO_ROOT } from "./helpers/plugin_run.ts";

async function deno(args: string[]): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, output: text };
}

Deno.test("deno fmt --check passes", async () => {
  const { code, output } = await deno(["fmt", "--check"]);
  assert.equal(code, 0, output);
});

Deno.test("deno lint passes", async () => {
  const { code, output } = await deno(["lint"]);
  assert.equal(code, 0, output);
});

Deno.test("deno check passes on every module", async () => {
  const { code, output } = await deno(["check", "src/", "tests/", "scripts/"]);
  assert.equal(code, 0, output);
});

Deno.test("no JSR specifier anywhere", async () => {
  const out = await new Deno.Command("grep", {
    args: [
      "-rIl",
      "--include=*.ts",
      "--include=*.json",
      ["jsr", ":"].join(""),
      "deno.json",
      "src",
      "tests",
      "scripts",
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
  }).output();
  const files = new TextDecoder().decode(out.stdout).split("\n").filter((f) => f !== "");
  assert.deepEqual(files, []);
});
