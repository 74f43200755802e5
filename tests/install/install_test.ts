import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  type InstallRoot,
  makeRoot,
  readOrUndefined,
  removeRoot,
  REPO,
  runInstallOnce,
  RunningInstall,
  tree,
  waitFor,
  writeAtomic,
  writeJson,
} from "./_helpers.ts";

const PTP_LIST = {
  cniVersion: "0.4.0",
  name: "kindnet",
  plugins: [
    { type: "ptp", ipam: { type: "host-local" } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};

async function withRoot(fn: (root: InstallRoot) => Promise<void>): Promise<void> {
  const root = await makeRoot();
  try {
    await fn(root);
  } finally {
    await removeRoot(root);
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("install (from source) writes the launcher, 00-multus.conf and the kubeconfig", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const run = await runInstallOnce(root, ["--skip-config-watch"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "");

    // The launcher: same deno, same entry, same permissions as the compiled binary.
    const launcher = join(root.bin, "multus");
    const info = await Deno.stat(launcher);
    assert.equal((info.mode ?? 0) & 0o777, 0o755);
    const script = await Deno.readTextFile(launcher);
    assert.match(script, /^#!\/bin\/sh\n/);
    assert.ok(script.includes(Deno.execPath()), script);
    assert.ok(script.includes(join(REPO, "src", "main.ts")), script);
    const flags = (await Deno.readTextFile(join(REPO, "scripts", "permission_flags"))).trim();
    assert.ok(script.includes(flags), script);
    assert.match(run.stderr, /Running from source, not as a compiled binary/);
    const version = await new Deno.Command(launcher, { args: ["--version"] }).output();
    assert.match(new TextDecoder().decode(version.stdout), /^multus: version/);

    // The Multus config: clusterNetwork is the primary's path, capabilities pulled up.
    const conf = await readJson(join(root.conf, "00-multus.conf"));
    assert.deepEqual(conf, {
      cniVersion: "0.4.0",
      name: "multus-cni-network",
      type: "multus",
      capabilities: { portMappings: true },
      confDir: root.multusNetd,
      kubeconfig: join(root.conf, "multus.d", "multus.kubeconfig"),
      clusterNetwork: join(root.conf, "10-kindnet.conflist"),
    });
    assert.equal(await readOrUndefined(join(root.conf, "00-multus.conflist")), undefined);
    assert.match(run.stderr, /Wrote .*00-multus\.conf:\n {4}\+ \{\n/);

    // The kubeconfig: 0600, token and CA embedded.
    const kcPath = join(root.conf, "multus.d", "multus.kubeconfig");
    assert.equal(((await Deno.stat(kcPath)).mode ?? 0) & 0o777, 0o600);
    const kc = parseYaml(await Deno.readTextFile(kcPath));
    assert.equal(kc.clusters[0].cluster.server, "https://10.96.0.1:443");
    assert.equal(
      atob(kc.clusters[0].cluster["certificate-authority-data"]),
      "-----BEGIN CERTIFICATE-----\nca-1\n",
    );
    assert.equal(kc.users[0].user.token, "token-1");
    assert.equal(kc["current-context"], "multus-context");
    assert.ok(!run.stderr.includes("token-1"), "the token must never be logged");

    // Multus's own conf dir is created.
    assert.ok((await Deno.stat(root.multusNetd)).isDirectory);
  });
});

Deno.test("install run again rewrites nothing (same inode and mtime)", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    assert.equal((await runInstallOnce(root, ["--skip-config-watch"])).code, 0);
    const files = [
      join(root.conf, "00-multus.conf"),
      join(root.conf, "multus.d", "multus.kubeconfig"),
      join(root.bin, "multus"),
    ];
    const before = await Promise.all(files.map((f) => Deno.stat(f)));
    await new Promise((r) => setTimeout(r, 20));
    const again = await runInstallOnce(root, ["--skip-config-watch"]);
    assert.equal(again.code, 0, again.stderr);
    const after = await Promise.all(files.map((f) => Deno.stat(f)));
    for (let i = 0; i < files.length; i++) {
      assert.equal(after[i].ino, before[i].ino, files[i]);
      assert.equal(after[i].mtime?.getTime(), before[i].mtime?.getTime(), files[i]);
    }
    assert.match(again.stderr, /00-multus\.conf is up to date/);
    assert.match(again.stderr, /multus\.kubeconfig is up to date/);
    assert.doesNotMatch(again.stderr, /Wrote|Updated/);
    assert.deepEqual(await tree(root.conf), [
      "00-multus.conf",
      "10-kindnet.conflist",
      "multus.d/",
      "multus.d/multus.kubeconfig",
    ]);
  });
});

Deno.test("install writes thin_entrypoint's options into the config", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-test.conf"), {
      cniVersion: "0.3.1",
      name: "test1",
      type: "bridge",
      capabilities: { bandwidth: true },
    });
    const run = await runInstallOnce(root, [
      "--skip-config-watch",
      "--skip-multus-binary-copy",
      "-namespace-isolation",
      "--global-namespaces=foobar,barfoo",
      "--multus-log-level=DEBUG",
      "--multus-log-file",
      "/var/log/multus.log",
      "--multus-log-to-stderr=false",
      "--additional-bin-dir=/opt/extra/bin",
      "--readiness-indicator-file=/run/ready",
      "--multus-kubeconfig-file-host=/etc/foobar_kubeconfig",
      "--override-network-name",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const conf = await readJson(join(root.conf, "00-multus.conf"));
    assert.deepEqual(conf, {
      cniVersion: "0.3.1",
      name: "test1",
      type: "multus",
      capabilities: { bandwidth: true },
      namespaceIsolation: true,
      globalNamespaces: "foobar,barfoo",
      logToStderr: false,
      logLevel: "debug",
      logFile: "/var/log/multus.log",
      binDir: "/opt/extra/bin",
      confDir: root.multusNetd,
      readinessindicatorfile: "/run/ready",
      kubeconfig: "/etc/foobar_kubeconfig",
      clusterNetwork: join(root.conf, "10-test.conf"),
    });
    assert.deepEqual(await tree(root.bin), [], "--skip-multus-binary-copy installs nothing");
  });
});

Deno.test("install maps /host paths to host paths and references a host-path service account", async () => {
  await withRoot(async (root) => {
    // Lay the root out like the DaemonSet's mounts: <dir>/host is the host's /.
    const host = join(root.dir, "host");
    const conf = join(host, "etc", "cni", "net.d");
    const sa = join(host, "var", "lib", "multus", "sa");
    await Deno.mkdir(conf, { recursive: true });
    await Deno.mkdir(sa, { recursive: true });
    await Deno.writeTextFile(join(sa, "token"), "host-token");
    await Deno.writeTextFile(join(sa, "ca.crt"), "ca");
    await writeJson(join(conf, "10-calico.conflist"), { ...PTP_LIST, cniVersion: "1.0.0" });
    const run = await runInstallOnce(root, [], {
      args: [
        `--host-prefix=${host}`,
        `--cni-conf-dir=${conf}`,
        `--multus-cni-conf-dir=${join(host, "etc", "cni", "multus", "net.d")}`,
        `--service-account-dir=${sa}`,
        "--skip-multus-binary-copy",
        "--skip-config-watch",
      ],
    });
    assert.equal(run.code, 0, run.stderr);
    const list = await readJson(join(conf, "00-multus.conflist"));
    assert.deepEqual(list, {
      cniVersion: "1.0.0",
      name: "multus-cni-network",
      plugins: [{
        type: "multus",
        capabilities: { portMappings: true },
        kubeconfig: "/etc/cni/net.d/multus.d/multus.kubeconfig",
        clusterNetwork: "/etc/cni/net.d/10-calico.conflist",
      }],
    });
    const kc = parseYaml(await Deno.readTextFile(join(conf, "multus.d", "multus.kubeconfig")));
    assert.equal(kc.users[0].user.tokenFile, "/var/lib/multus/sa/token");
    assert.equal(kc.users[0].user.token, undefined);
    assert.equal(kc.clusters[0].cluster["certificate-authority"], "/var/lib/multus/sa/ca.crt");
  });
});

Deno.test("install picks the primary config as the runtime would, never a Multus config", async () => {
  await withRoot(async (root) => {
    const w = (name: string, value: unknown) => writeJson(join(root.conf, name), value);
    await w("00-multus.conf", {
      cniVersion: "0.3.1",
      name: "multus-cni-network",
      type: "multus",
      delegates: [{ cniVersion: "0.3.1", name: "old", type: "flannel" }],
    });
    await w("05-other-multus.conflist", {
      cniVersion: "0.4.0",
      name: "x",
      plugins: [{ type: "multus" }],
    });
    await w("10-flannel.conflist", {
      cniVersion: "0.3.1",
      name: "cbr0",
      plugins: [{ type: "flannel" }],
    });
    await w("20-bridge.conf", { cniVersion: "0.3.1", name: "br", type: "bridge" });
    await w("30-extra.json", { cniVersion: "0.3.1", name: "js", type: "bridge" });
    await Deno.writeTextFile(join(root.conf, "01-notes.txt"), "{broken");
    const base = ["--skip-config-watch", "--skip-multus-binary-copy"];

    const first = await runInstallOnce(root, base);
    assert.equal(first.code, 0, first.stderr);
    const conf = await readJson(join(root.conf, "00-multus.conf"));
    assert.equal(conf.clusterNetwork, join(root.conf, "10-flannel.conflist"));
    assert.equal(conf.delegates, undefined);
    assert.match(
      first.stderr,
      /passed over the Multus configs 00-multus\.conf, 05-other-multus\.conflist/,
    );
    assert.match(first.stderr, /Updated .*00-multus\.conf:\n(.*\n)*? {4}- {3}"delegates": \[/);

    const named = await runInstallOnce(root, [
      ...base,
      "--multus-master-cni-file-name=30-extra.json",
    ]);
    assert.equal(named.code, 0, named.stderr);
    assert.equal(
      (await readJson(join(root.conf, "00-multus.conf"))).clusterNetwork,
      join(root.conf, "30-extra.json"),
    );

    const self = await runInstallOnce(root, [
      ...base,
      "--multus-master-cni-file-name=05-other-multus.conflist",
    ]);
    assert.equal(self.code, 1);
    assert.match(
      self.stderr,
      /05-other-multus\.conflist as the primary CNI config: it is a Multus config/,
    );

    // A config that does not parse stops the search instead of being skipped.
    await Deno.writeTextFile(join(root.conf, "09-partial.conf"), '{"cniVersion":');
    const broken = await runInstallOnce(root, base);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /09-partial\.conf as the primary CNI config: it is not valid JSON/);
  });
});

Deno.test("install writes 00-multus.conflist for cniVersion >= 1.0.0 and removes a stale .conf", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const base = ["--skip-config-watch", "--skip-multus-binary-copy"];
    assert.equal((await runInstallOnce(root, base)).code, 0);
    await writeJson(join(root.conf, "10-kindnet.conflist"), { ...PTP_LIST, cniVersion: "1.1.0" });
    const run = await runInstallOnce(root, base);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await readOrUndefined(join(root.conf, "00-multus.conf")), undefined);
    const list = await readJson(join(root.conf, "00-multus.conflist"));
    assert.equal(list.cniVersion, "1.1.0");
    assert.match(run.stderr, /Removed .*00-multus\.conf: superseded by .*00-multus\.conflist/);

    const mismatch = await runInstallOnce(root, [...base, "--cni-version=0.4.0"]);
    assert.equal(mismatch.code, 1);
    assert.match(
      mismatch.stderr,
      /--cni-version is "0\.4\.0" but the primary CNI config .*10-kindnet\.conflist has cniVersion "1\.1\.0"/,
    );
    const forced = await runInstallOnce(root, [
      ...base,
      "--cni-version=0.4.0",
      "--force-cni-version",
    ]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal((await readJson(join(root.conf, "00-multus.conf"))).cniVersion, "0.4.0");
    assert.equal(await readOrUndefined(join(root.conf, "00-multus.conflist")), undefined);
  });
});

Deno.test("install copies --multus-conf-file when it is not auto", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const source = join(root.dir, "70-multus.conf");
    const text = JSON.stringify({
      cniVersion: "0.3.1",
      name: "m",
      type: "multus",
      clusterNetwork: "kindnet",
    });
    await Deno.writeTextFile(source, text);
    const run = await runInstallOnce(root, [
      "--skip-config-watch",
      "--skip-multus-binary-copy",
      `--multus-conf-file=${source}`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await Deno.readTextFile(join(root.conf, "70-multus.conf")), text);
    assert.match(run.stderr, /10-kindnet\.conflist sorts before 70-multus\.conf/);
  });
});

Deno.test("install fails with a message naming the path when an input is missing", async () => {
  await withRoot(async (root) => {
    const missingConf = join(root.dir, "no", "net.d");
    const noConf = await runInstallOnce(root, [
      "--skip-config-watch",
      `--cni-conf-dir=${missingConf}`,
    ]);
    assert.equal(noConf.code, 1);
    assert.match(
      noConf.stderr,
      new RegExp(`error: --cni-conf-dir ${missingConf} cannot be used: no such file or directory`),
    );
    assert.deepEqual(await tree(root.bin), [], "nothing is installed when the inputs are wrong");

    const noBin = await runInstallOnce(root, [
      "--skip-config-watch",
      `--cni-bin-dir=${join(root.dir, "nobin")}`,
    ]);
    assert.equal(noBin.code, 1);
    assert.match(noBin.stderr, /--cni-bin-dir .*nobin cannot be used/);

    const noSa = await runInstallOnce(root, [
      "--skip-config-watch",
      `--service-account-dir=${join(root.dir, "nosa")}`,
    ]);
    assert.equal(noSa.code, 1);
    assert.match(noSa.stderr, /Cannot read the service account token .*nosa\/token: no such file/);

    const noPrimary = await runInstallOnce(root, ["--skip-config-watch"]);
    assert.equal(noPrimary.code, 1);
    assert.match(
      noPrimary.stderr,
      new RegExp(`no \\*\\.conf, \\*\\.conflist, \\*\\.json file in ${root.conf}`),
    );

    const env = { ...root.env };
    delete (env as Record<string, string | undefined>).KUBERNETES_SERVICE_HOST;
    const noEnv = await runInstallOnce({ ...root, env }, ["--skip-config-watch"]);
    assert.equal(noEnv.code, 1);
    assert.match(noEnv.stderr, /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set/);

    const badFlag = await runInstallOnce(root, ["--cni-conf-dri=/x"]);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /Unknown flag "--cni-conf-dri": did you mean --cni-conf-dir\?/);

    const help = await runInstallOnce(root, ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--multus-kubeconfig-file-host=<value>/);
  });
});

Deno.test("install copies a binary atomically, even over one that is running", async () => {
  await withRoot(async (root) => {
    // Use real executables as the "binary": /bin/sleep first, then /bin/true.
    const sleepCopy = join(root.dir, "src-sleep");
    const trueCopy = join(root.dir, "src-true");
    await Deno.copyFile(await Deno.realPath("/bin/sleep"), sleepCopy);
    await Deno.copyFile(await Deno.realPath("/bin/true"), trueCopy);
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const target = join(root.bin, "multus");

    const first = await runInstallOnce(root, [
      "--skip-config-watch",
      `--multus-bin-file=${sleepCopy}`,
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(await Deno.readFile(target), await Deno.readFile(sleepCopy));
    assert.equal(((await Deno.stat(target)).mode ?? 0) & 0o777, 0o755);
    const ino = (await Deno.stat(target)).ino;

    const same = await runInstallOnce(root, [
      "--skip-config-watch",
      `--multus-bin-file=${sleepCopy}`,
    ]);
    assert.equal(same.code, 0, same.stderr);
    assert.equal((await Deno.stat(target)).ino, ino, "an identical binary is not rewritten");

    // The runtime is executing the installed plugin: `cp` would fail with "text file busy".
    const running = new Deno.Command(target, { args: ["30"], stdout: "null", stderr: "null" })
      .spawn();
    try {
      const replaced = await runInstallOnce(root, [
        "--skip-config-watch",
        `--multus-bin-file=${trueCopy}`,
      ]);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.deepEqual(await Deno.readFile(target), await Deno.readFile(trueCopy));
      assert.notEqual(
        (await Deno.stat(target)).ino,
        ino,
        "replaced by rename, not rewritten in place",
      );
      const leftovers = (await tree(root.bin)).filter((n) => n !== "multus");
      assert.deepEqual(leftovers, [], "no temp file is left behind");
    } finally {
      running.kill("SIGKILL");
      await running.status;
    }
  });
});

Deno.test("install keeps watching: regenerates on change, removes the config when the primary goes", async () => {
  await withRoot(async (root) => {
    const primary = join(root.conf, "10-kindnet.conflist");
    const confPath = join(root.conf, "00-multus.conf");
    const listPath = join(root.conf, "00-multus.conflist");
    const child = new RunningInstall(root, ["--skip-multus-binary-copy"]);
    try {
      // No primary yet: it waits, writing nothing.
      await child.waitForLog("No primary CNI config yet");
      assert.equal(await readOrUndefined(confPath), undefined);

      await writeJson(primary, PTP_LIST);
      await waitFor(async () => (await readOrUndefined(confPath)) !== undefined, {
        what: "00-multus.conf",
        detail: () => child.stderr,
      });

      // The primary changes: capabilities follow.
      await writeJson(primary, {
        ...PTP_LIST,
        plugins: [...PTP_LIST.plugins, { type: "bandwidth", capabilities: { bandwidth: true } }],
      });
      await waitFor(
        async () => (await readOrUndefined(confPath) ?? "").includes('"bandwidth": true'),
        {
          what: "bandwidth capability",
          detail: () => child.stderr,
        },
      );
      await child.waitForLog(/Updated .*00-multus\.conf:\n(.*\n)*? {4}\+ {5}"bandwidth": true,/);

      // cniVersion 1.0.0: the .conflist replaces the .conf.
      await writeJson(primary, { ...PTP_LIST, cniVersion: "1.0.0" });
      await waitFor(async () =>
        (await readOrUndefined(listPath)) !== undefined &&
        (await readOrUndefined(confPath)) === undefined, {
        what: "00-multus.conflist",
        detail: () => child.stderr,
      });

      // The primary disappears: our config goes too.
      await Deno.remove(primary);
      await waitFor(async () => (await readOrUndefined(listPath)) === undefined, {
        what: "removal of 00-multus.conflist",
        detail: () => child.stderr,
      });
      await child.waitForLog(
        /The primary CNI config .*10-kindnet\.conflist is gone: removed .*00-multus\.conflist/,
      );

      // It comes back under another name: regenerated, pointing at it.
      await writeJson(join(root.conf, "05-cilium.conf"), {
        cniVersion: "0.3.1",
        name: "cilium",
        type: "cilium-cni",
      });
      await waitFor(
        async () => (await readOrUndefined(confPath) ?? "").includes("05-cilium.conf"),
        {
          what: "config for 05-cilium.conf",
          detail: () => child.stderr,
        },
      );

      const stopped = await child.stop("SIGTERM");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(
        stopped.stderr,
        /Received SIGTERM: stopping; the Multus config and kubeconfig stay/,
      );
      // Without --cleanup-config-on-exit the files stay for the plugin.
      assert.ok(await readOrUndefined(confPath));
      assert.ok(await readOrUndefined(join(root.conf, "multus.d", "multus.kubeconfig")));
    } finally {
      await child.dispose();
    }
  });
});

Deno.test("install refreshes the kubeconfig when the service account token rotates", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const kcPath = join(root.conf, "multus.d", "multus.kubeconfig");
    const child = new RunningInstall(root, ["--skip-multus-binary-copy"]);
    try {
      await child.waitForLog("Watching");
      assert.equal(parseYaml(await Deno.readTextFile(kcPath)).users[0].user.token, "token-1");
      await writeAtomic(join(root.sa, "token"), "token-2");
      await waitFor(
        async () => parseYaml(await Deno.readTextFile(kcPath)).users[0].user.token === "token-2",
        {
          what: "rotated token in the kubeconfig",
          detail: () => child.stderr,
        },
      );
      await child.waitForLog(
        /Refreshed kubeconfig .*multus\.kubeconfig: the service account token changed/,
      );
      assert.equal(((await Deno.stat(kcPath)).mode ?? 0) & 0o777, 0o600);
      await writeAtomic(join(root.sa, "ca.crt"), "-----BEGIN CERTIFICATE-----\nca-2\n");
      await child.waitForLog(/Refreshed kubeconfig .*: the cluster CA changed/);
      const stopped = await child.stop("SIGINT");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.ok(!stopped.stderr.includes("token-2"), "the token must never be logged");
    } finally {
      await child.dispose();
    }
  });
});

Deno.test("install --cleanup-config-on-exit leaves exactly what was there before", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    await writeJson(join(root.conf, "99-loopback.conf"), {
      cniVersion: "0.3.1",
      name: "lo",
      type: "loopback",
    });
    const before = await tree(root.dir);
    const primaryText = await Deno.readTextFile(join(root.conf, "10-kindnet.conflist"));

    const child = new RunningInstall(root, ["--cleanup-config-on-exit", "--rename-conf-file"]);
    try {
      await child.waitForLog("Watching");
      const during = await tree(root.dir);
      assert.ok(during.includes("etc/cni/net.d/00-multus.conf"), during.join("\n"));
      assert.ok(during.includes("etc/cni/net.d/10-kindnet.conflist.old"), "primary renamed");
      assert.ok(!during.includes("etc/cni/net.d/10-kindnet.conflist"));
      // The renamed file no longer tells by its extension that it is a list: embedded instead.
      const conf = await readJson(join(root.conf, "00-multus.conf"));
      assert.equal(conf.clusterNetwork, undefined);
      assert.deepEqual(conf.delegates, [PTP_LIST]);

      const stopped = await child.stop("SIGTERM");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /Removed .*00-multus\.conf/);
      assert.match(stopped.stderr, /Removed .*multus\.kubeconfig/);
      assert.match(stopped.stderr, /Renamed .*10-kindnet\.conflist\.old back to/);
    } finally {
      await child.dispose();
    }
    // Everything is as before, except the plugin binary, which stays (see README-notes).
    assert.deepEqual(await tree(root.dir), [...before, "opt/cni/bin/multus"].sort());
    assert.equal(await Deno.readTextFile(join(root.conf, "10-kindnet.conflist")), primaryText);
  });
});

Deno.test("install --cleanup-config-on-exit keeps files someone else changed", async () => {
  await withRoot(async (root) => {
    await writeJson(join(root.conf, "10-kindnet.conflist"), PTP_LIST);
    const child = new RunningInstall(root, [
      "--cleanup-config-on-exit",
      "--skip-config-watch",
      "--skip-multus-binary-copy",
    ]);
    try {
      await child.waitForLog("Waiting for SIGTERM or SIGINT");
      const foreign = '{"cniVersion":"0.3.1","name":"mine","type":"multus","delegates":[]}';
      await Deno.writeTextFile(join(root.conf, "00-multus.conf"), foreign);
      const stopped = await child.stop("SIGTERM");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal(await Deno.readTextFile(join(root.conf, "00-multus.conf")), foreign);
      assert.match(stopped.stderr, /Left .*00-multus\.conf in place: it changed/);
      assert.equal(
        await readOrUndefined(join(root.conf, "multus.d", "multus.kubeconfig")),
        undefined,
      );
    } finally {
      await child.dispose();
    }
  });
});

Deno.test("install waits out a broken primary config while watching, then uses it", async () => {
  await withRoot(async (root) => {
    const primary = join(root.conf, "10-kindnet.conflist");
    await Deno.writeTextFile(primary, '{"cniVersion": "0.4.0", "name": ');
    const child = new RunningInstall(root, ["--skip-multus-binary-copy"]);
    try {
      await child.waitForLog(
        /Cannot use .*10-kindnet\.conflist as the primary CNI config: it is not valid JSON/,
      );
      assert.equal(await readOrUndefined(join(root.conf, "00-multus.conf")), undefined);
      await writeJson(primary, PTP_LIST);
      await waitFor(
        async () => (await readOrUndefined(join(root.conf, "00-multus.conf"))) !== undefined,
        {
          what: "00-multus.conf after the fix",
          detail: () => child.stderr,
        },
      );
      assert.equal((await child.stop()).code, 0);
    } finally {
      await child.dispose();
    }
  });
});
