/**
 * @module
 * The scripts that need root (demo, test, bench, bench-demo, bench-peers) work as written for root, where
 * a fresh machine may have no sudo at all (tests/e2e/demo_test.ts runs the demo as root);
 * started by another user they run themselves again through sudo when it is installed, and
 * otherwise say they need root, before doing anything.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/plugin_run.ts";

const SCRIPTS = ["demo", "test", "bench", "bench-demo", "bench-peers"];
/** The unprivileged user the scripts are started as. */
const NOBODY = "65534";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script as `nobody` with only `path` as PATH (no sudo unless a fake one is there). */
async function runAsNobody(script: string, args: string[], path: string): Promise<Run> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--",
      join(REPO_ROOT, "scripts", script),
      ...args,
    ],
    clearEnv: true,
    env: { PATH: path, HOME: "/nonexistent" },
    cwd: "/",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** A directory nobody can read holding a fake `sudo` that prints its arguments and exits 7. */
async function fakeSudoDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "multus-fake-sudo-" });
  await Deno.chmod(dir, 0o755);
  const sudo = join(dir, "sudo");
  await Deno.writeTextFile(sudo, '#!/bin/sh\nprintf "%s\\n" "$@"\nexit 7\n');
  await Deno.chmod(sudo, 0o755);
  return dir;
}

/** PATH without any sudo: the system directories, checked to hold none. */
async function pathWithoutSudo(): Promise<string> {
  const dirs = ["/usr/bin", "/bin"];
  for (const dir of dirs) {
    const present = await Deno.stat(join(dir, "sudo")).then(() => true, () => false);
    assert.equal(present, false, `${dir}/sudo exists here: this test needs a machine without it`);
  }
  return dirs.join(":");
}

Deno.test("scripts needing root, started by another user without sudo, say so and stop", async () => {
  const path = await pathWithoutSudo();
  for (const script of SCRIPTS) {
    const run = await runAsNobody(script, ["--quick"], path);
    assert.equal(run.code, 1, `${script}: ${run.stdout}${run.stderr}`);
    assert.equal(run.stdout, "", `${script} did nothing before stopping`);
    assert.match(
      run.stderr,
      new RegExp(
        `^${script}: must be run as root .*sudo is not installed: run it in a root shell\n$`,
      ),
    );
  }
});

Deno.test("scripts needing root, started by another user, run themselves again through sudo", async () => {
  const dir = await fakeSudoDir();
  try {
    const path = `${dir}:${await pathWithoutSudo()}`;
    for (const script of SCRIPTS) {
      const run = await runAsNobody(script, ["--quick", "two words"], path);
      assert.equal(run.code, 7, `${script}: sudo's exit code is the script's (${run.stderr})`);
      assert.deepEqual(run.stdout.split("\n"), [
        "-H",
        "--",
        join(REPO_ROOT, "scripts", script),
        "--quick",
        "two words",
        "",
      ]);
      assert.equal(run.stderr, `${script}: needs root; running it again with sudo\n`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README starts with the two commands as a root shell runs them, without sudo", async () => {
  const readme = await Deno.readTextFile(join(REPO_ROOT, "README.md"));
  const block = /```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "the README has a sh block");
  const commands = block[1].trim().split("\n").map((line) => line.split("#")[0].trim());
  assert.deepEqual(commands, ["scripts/demo", "scripts/test"]);
  assert.doesNotMatch(readme, /^\s*sudo /m, "no README command starts with sudo");
});
