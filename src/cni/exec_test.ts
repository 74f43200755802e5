import assert from "node:assert/strict";
import { join } from "node:path";
import {
  execPlugin,
  findPlugin,
  MAX_PLUGIN_OUTPUT,
  type PluginEnv,
  processExecWith,
} from "./exec.ts";
import { DelegateError } from "./errors.ts";

async function writePlugin(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
  return path;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "exec_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, 0 as unknown as Deno.Signal);
    // A zombie still answers signal 0; look at its state.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const ENV: PluginEnv = {
  command: "ADD",
  containerId: "ctr1",
  netns: "/var/run/netns/x",
  ifName: "eth0",
  args: [["IgnoreUnknown", "true"], ["K8S_POD_NAME", "p"]],
  path: ["/opt/cni/bin", "/usr/lib/cni"],
};

async function rejected(promise: Promise<unknown>): Promise<DelegateError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DelegateError, `expected DelegateError, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

Deno.test("findPlugin() rejects types that are not file names", async () => {
  for (const type of ["", ".", "..", "/bin/sh", "a/b", "..\\x", "a\\b"]) {
    const err = await rejected(findPlugin(type, ["/usr/bin"]));
    assert.equal(err.code, 7);
    assert.equal(
      err.message,
      `plugin type "${type}" is not a plugin name: it must be a file name in the CNI bin directories`,
    );
  }
});

Deno.test("findPlugin() searches the directories in order", async () => {
  await withTempDir(async (root) => {
    const [a, b, c] = ["a", "b", "c"].map((d) => join(root, d));
    for (const d of [a, b, c]) await Deno.mkdir(d);
    await writePlugin(b, "bridge", "exit 0");
    await writePlugin(c, "bridge", "exit 0");
    // A directory with the plugin's name is not a plugin.
    await Deno.mkdir(join(a, "bridge"));
    assert.equal(await findPlugin("bridge", [a, b, c]), join(b, "bridge"));
    assert.equal(await findPlugin("bridge", [c, b]), join(c, "bridge"));
    // Symlinks are followed; a dangling one is skipped.
    await Deno.symlink(join(c, "bridge"), join(a, "linked"));
    assert.equal(await findPlugin("linked", [a]), join(a, "linked"));
    await Deno.symlink(join(c, "missing"), join(a, "dangling"));
    await writePlugin(c, "dangling", "exit 0");
    assert.equal(await findPlugin("dangling", [a, c]), join(c, "dangling"));
  });
});

Deno.test("findPlugin() names the directories when the plugin is missing", async () => {
  await withTempDir(async (dir) => {
    const err = await rejected(findPlugin("nope", [dir, "/nonexistent"]));
    assert.equal(err.code, 999);
    assert.equal(err.message, `failed to find plugin "nope" in path [${dir} /nonexistent]`);
    assert.match(err.details ?? "", /binDir.*CNI_PATH/);
  });
});

Deno.test("execPlugin() passes the CNI environment and stdin byte for byte", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "fake",
      `env > "${dir}/env"; cat > "${dir}/stdin"; echo '{"cniVersion":"1.0.0"}'`,
    );
    Deno.env.set("MT_INHERITED", "yes");
    Deno.env.set("CNI_IFNAME", "inherited-loses");
    try {
      const stdin = '{"z":1,"a":12345678901234567890, "name" : "x"}\n\t';
      const out = await execPlugin(plugin, stdin, ENV, { timeoutMs: 5000 });
      assert.deepEqual(out, { cniVersion: "1.0.0" });
      assert.equal(await Deno.readTextFile(join(dir, "stdin")), stdin);
      const env = Object.fromEntries(
        (await Deno.readTextFile(join(dir, "env"))).trim().split("\n").map((l) => {
          const i = l.indexOf("=");
          return [l.slice(0, i), l.slice(i + 1)];
        }),
      );
      assert.equal(env.CNI_COMMAND, "ADD");
      assert.equal(env.CNI_CONTAINERID, "ctr1");
      assert.equal(env.CNI_NETNS, "/var/run/netns/x");
      assert.equal(env.CNI_IFNAME, "eth0");
      assert.equal(env.CNI_ARGS, "IgnoreUnknown=true;K8S_POD_NAME=p");
      assert.equal(env.CNI_PATH, "/opt/cni/bin:/usr/lib/cni");
      assert.equal(env.MT_INHERITED, "yes");
    } finally {
      Deno.env.delete("MT_INHERITED");
      Deno.env.delete("CNI_IFNAME");
    }
  });
});

Deno.test("execPlugin() sets every CNI variable even when empty", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "fake",
      `for v in CNI_COMMAND CNI_CONTAINERID CNI_NETNS CNI_IFNAME CNI_ARGS CNI_PATH; do ` +
        `if [ -z "\${!v+x}" ]; then echo "$v unset"; else echo "$v=[\${!v}]"; fi; ` +
        `done > "${dir}/env"`,
    );
    const env: PluginEnv = {
      command: "STATUS",
      containerId: "",
      netns: "",
      ifName: "",
      args: [],
      path: [],
    };
    assert.equal(await execPlugin(plugin, "{}", env, { timeoutMs: 5000 }), undefined);
    assert.equal(
      await Deno.readTextFile(join(dir, "env")),
      "CNI_COMMAND=[STATUS]\nCNI_CONTAINERID=[]\nCNI_NETNS=[]\nCNI_IFNAME=[]\nCNI_ARGS=[]\n" +
        "CNI_PATH=[]\n",
    );
  });
});

Deno.test("execPlugin() returns undefined for whitespace output", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(dir, "fake", `printf ' \\n\\t\\n'`);
    assert.equal(await execPlugin(plugin, "{}", ENV, { timeoutMs: 5000 }), undefined);
  });
});

Deno.test("execPlugin() maps a CNI error on stdout to its code and message", async () => {
  await withTempDir(async (dir) => {
    const withDetails = await writePlugin(
      dir,
      "a",
      `echo '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"try later"}'; ` +
        `echo noise >&2; exit 1`,
    );
    let err = await rejected(execPlugin(withDetails, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(err.code, 11);
    assert.equal(err.message, "busy; try later");
    assert.equal(err.pluginType, "a");
    assert.equal(err.command, "ADD");

    // skel's pretty-printed error without cniVersion
    const skel = await writePlugin(
      dir,
      "b",
      `printf '{\\n    "code": 7,\\n    "msg": "missing network name"\\n}'; exit 1`,
    );
    err = await rejected(execPlugin(skel, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(err.code, 7);
    assert.equal(err.message, "missing network name");

    const status = await writePlugin(dir, "c", `echo '{"code":50,"msg":"not ready"}'; exit 1`);
    err = await rejected(execPlugin(status, "{}", { ...ENV, command: "STATUS" }, {
      timeoutMs: 5000,
    }));
    assert.equal(err.code, 50);
    assert.equal(err.command, "STATUS");
  });
});

Deno.test("execPlugin() maps failures without an error object as libcni does", async () => {
  await withTempDir(async (dir) => {
    const stderrOnly = await writePlugin(dir, "a", `echo '  it broke  ' >&2; exit 3`);
    let err = await rejected(execPlugin(stderrOnly, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(err.message, 'netplugin failed: "it broke"');
    assert.equal(err.code, 999);

    const garbage = await writePlugin(dir, "b", `echo 'oops not json'; exit 1`);
    err = await rejected(execPlugin(garbage, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(
      err.message,
      'netplugin failed but error parsing its diagnostic message "oops not json"',
    );

    const silent = await writePlugin(dir, "c", `exit 42`);
    err = await rejected(execPlugin(silent, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(err.message, "netplugin failed with no error message: exit status 42");
  });
});

Deno.test("execPlugin() rejects a successful run whose output is not JSON", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(dir, "weird", `echo 'hello world'`);
    const err = await rejected(execPlugin(plugin, "{}", ENV, { timeoutMs: 5000 }));
    assert.equal(err.code, 6);
    assert.match(err.message, /^plugin "weird" succeeded but printed output that is not JSON/);
  });
});

Deno.test("execPlugin() kills a plugin that runs past its timeout, children included", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "slow",
      `echo $$ > "${dir}/pid"; sleep 60 & echo $! > "${dir}/child"; wait`,
    );
    const started = Date.now();
    const err = await rejected(execPlugin(plugin, "{}", ENV, { timeoutMs: 500 }));
    assert.ok(Date.now() - started < 5000);
    assert.equal(err.code, 11);
    assert.equal(err.message, 'plugin "slow" did not finish within 0.5s and was killed');
    const pid = Number(await Deno.readTextFile(join(dir, "pid")));
    const child = Number(await Deno.readTextFile(join(dir, "child")));
    // The group is killed synchronously; give the kernel a moment to reap the orphan.
    for (let i = 0; i < 50 && (alive(pid) || alive(child)); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(alive(pid), false, "plugin still running");
    assert.equal(alive(child), false, "plugin's child still running");
  });
});

Deno.test("execPlugin() rejects output that is too large", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(dir, "chatty", `head -c ${MAX_PLUGIN_OUTPUT + 10} /dev/zero`);
    const err = await rejected(execPlugin(plugin, "{}", ENV, { timeoutMs: 10000 }));
    assert.match(err.message, /output too large$/);
  });
});

Deno.test("execPlugin() copes with a plugin that ignores a large stdin", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(dir, "deaf", `echo '{}'`);
    const stdin = JSON.stringify({ big: "x".repeat(1024 * 1024) });
    assert.deepEqual(await execPlugin(plugin, stdin, ENV, { timeoutMs: 5000 }), {});
  });
});

Deno.test("execPlugin() retries a plugin that is busy being written", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "busy");
    const file = await Deno.open(path, { write: true, create: true, mode: 0o755 });
    await file.write(new TextEncoder().encode("#!/bin/sh\necho '{\"ok\":true}'\n"));
    const closer = setTimeout(() => file.close(), 300);
    try {
      assert.deepEqual(await execPlugin(path, "{}", ENV, { timeoutMs: 5000 }), { ok: true });
    } finally {
      clearTimeout(closer);
      try {
        file.close();
      } catch { /* closed by the timer */ }
    }
  });
});

Deno.test("execPlugin() reports a plugin that cannot be run", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "noexec");
    await Deno.writeTextFile(path, "#!/bin/sh\n", { mode: 0o644 });
    const err = await rejected(execPlugin(path, "{}", ENV, { timeoutMs: 5000 }));
    assert.match(err.message, /^cannot run plugin "noexec"/);
  });
});

/** Kills the process whose pid a test plugin wrote into `file`. */
async function killRecorded(file: string): Promise<number> {
  const pid = Number(await Deno.readTextFile(file));
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
  return pid;
}

Deno.test("execPlugin() uses the result of a plugin whose background child holds its stdout", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "leaky",
      `echo '{"cniVersion":"1.0.0","ips":[]}'; sleep 300 & echo $! > "${dir}/holder"`,
    );
    try {
      const out = await execPlugin(plugin, "{}", ENV, { timeoutMs: 60_000 });
      assert.deepEqual(out, { cniVersion: "1.0.0", ips: [] });
      assert.ok(alive(Number(await Deno.readTextFile(join(dir, "holder")))), "not killed");
    } finally {
      await killRecorded(join(dir, "holder"));
    }
  });
});

Deno.test("execPlugin() names the process holding stdout when the output read is incomplete", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "halfway",
      `printf '{"cniVersion":"1.0.0",'; sleep 300 & echo $! > "${dir}/holder"`,
    );
    try {
      const err = await rejected(execPlugin(plugin, "{}", ENV, { timeoutMs: 60_000 }));
      const holder = Number(await Deno.readTextFile(join(dir, "holder")));
      assert.equal(err.code, 5);
      assert.equal(
        err.message,
        `plugin "halfway" exited, but process ${holder} (sleep), which it started, still ` +
          `holds its stdout open, and what the plugin printed before exiting is not a ` +
          `complete result: "{"cniVersion":"1.0.0","`,
      );
    } finally {
      await killRecorded(join(dir, "holder"));
    }
  });
});

Deno.test("execPlugin() does not wait for a child that holds stdin it never reads", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(
      dir,
      "deafchild",
      `sleep 300 & echo $! > "${dir}/holder"; echo '{}'`,
    );
    const stdin = JSON.stringify({ big: "x".repeat(1024 * 1024) });
    try {
      assert.deepEqual(await execPlugin(plugin, stdin, ENV, { timeoutMs: 60_000 }), {});
    } finally {
      await killRecorded(join(dir, "holder"));
    }
  });
});

Deno.test("findPlugin() under a root looks there and follows symlinks as a process chrooted there would", async () => {
  await withTempDir(async (root) => {
    const bin = join(root, "opt", "cni", "bin");
    await Deno.mkdir(bin, { recursive: true });
    await Deno.mkdir(join(root, "usr", "libexec"), { recursive: true });
    await writePlugin(join(root, "usr", "libexec"), "real", "exit 0");
    // Absolute targets start at the root; ".." stops there.
    await Deno.symlink("/usr/libexec/real", join(bin, "absolute"));
    await Deno.symlink("../../../../../usr/libexec/real", join(bin, "relative"));
    await Deno.symlink("/bin/sh", join(bin, "host-only"));
    const { findPlugin: inside } = processExecWith({ root });
    assert.equal(await inside("absolute", ["/opt/cni/bin"]), "/opt/cni/bin/absolute");
    assert.equal(await inside("relative", ["/opt/cni/bin"]), "/opt/cni/bin/relative");
    const err = await rejected(inside("host-only", ["/opt/cni/bin"]));
    assert.match(err.message, /failed to find plugin "host-only" in path \[\/opt\/cni\/bin\]/);
  });
});

Deno.test("processExecWith() runs the plugin under its wrapper with only the base environment and the CNI variables", async () => {
  await withTempDir(async (dir) => {
    const plugin = await writePlugin(dir, "dump", 'env | sort > "$0.env"; cat > "$0.stdin"');
    Deno.env.set("EXEC_TEST_DAEMON_SECRET", "leak");
    try {
      const exec = processExecWith({
        baseEnv: { PATH: "/usr/bin:/bin" },
        wrapper: ["/usr/bin/env", "WRAPPED=yes"],
      });
      await exec.execPlugin(plugin, '{"a":1}', ENV, { timeoutMs: 10_000 });
    } finally {
      Deno.env.delete("EXEC_TEST_DAEMON_SECRET");
    }
    const env = (await Deno.readTextFile(`${plugin}.env`)).split("\n").filter((l) => l !== "");
    const names = env.map((l) => l.slice(0, l.indexOf("=")));
    assert.ok(!names.includes("EXEC_TEST_DAEMON_SECRET"), env.join("\n"));
    assert.ok(env.includes("WRAPPED=yes"), "run under the wrapper");
    assert.ok(env.includes("PATH=/usr/bin:/bin"));
    assert.ok(env.includes("CNI_CONTAINERID=ctr1"));
    assert.deepEqual(
      names.filter((n) =>
        !n.startsWith("CNI_") && !["PATH", "WRAPPED", "PWD", "SHLVL", "_"].includes(n)
      ),
      [],
    );
    assert.equal(await Deno.readTextFile(`${plugin}.stdin`), '{"a":1}', "stdin unchanged");
  });
});
