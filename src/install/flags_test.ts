import assert from "node:assert/strict";
import { FlagError, INSTALL_FLAGS, installHelp, parseInstallFlags, toHostPath } from "./flags.ts";

function assertFlagError(args: string[], pattern: RegExp): void {
  assert.throws(() => parseInstallFlags(args), (err: Error) => {
    assert.deepEqual(err instanceof FlagError, true, `expected FlagError, got ${err}`);
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("parseInstallFlags() applies thin_entrypoint's defaults", () => {
  const f = parseInstallFlags([]);
  assert.deepEqual(f.cniBinDir, "/host/opt/cni/bin");
  assert.deepEqual(f.cniConfDir, "/host/etc/cni/net.d");
  assert.deepEqual(f.multusAutoconfigDir, "/host/etc/cni/net.d");
  assert.deepEqual(f.multusConfFile, "auto");
  assert.deepEqual(f.multusCniConfDir, "/host/etc/cni/multus/net.d");
  assert.deepEqual(f.multusKubeconfigFileHost, "/etc/cni/net.d/multus.d/multus.kubeconfig");
  assert.deepEqual(f.multusLogToStderr, true);
  assert.deepEqual(f.multusLogLevel, "");
  assert.deepEqual(f.cniVersion, "");
  assert.deepEqual(f.forceCniVersion, false);
  assert.deepEqual(f.cleanupConfigOnExit, false);
  assert.deepEqual(f.skipConfigWatch, false);
  assert.deepEqual(f.skipMultusBinaryCopy, false);
  assert.deepEqual(f.multusBinFile, undefined);
  assert.deepEqual(f.serviceAccountDir, "/var/run/secrets/kubernetes.io/serviceaccount");
  assert.deepEqual(f.hostPrefix, "/host");
  assert.deepEqual(f.pollIntervalMs, 1000);
  assert.deepEqual(f.given.size, 0);
});

Deno.test("parseInstallFlags() accepts the Go flag spellings used in manifests", () => {
  const f = parseInstallFlags([
    "--cni-bin-dir=/a",
    "--cni-conf-dir",
    "/b",
    "-multus-autoconfig-dir=/c",
    "-multus-log-level",
    "DEBUG",
    "--namespace-isolation",
    "-cleanup-config-on-exit=true",
    "--multus-log-to-stderr=false",
    "--skip-config-watch=1",
    "--force-cni-version=T",
    "--cni-version=0.3.1",
  ]);
  assert.deepEqual(f.cniBinDir, "/a");
  assert.deepEqual(f.cniConfDir, "/b");
  assert.deepEqual(f.multusAutoconfigDir, "/c");
  assert.deepEqual(f.multusLogLevel, "debug");
  assert.deepEqual(f.namespaceIsolation, true);
  assert.deepEqual(f.cleanupConfigOnExit, true);
  assert.deepEqual(f.multusLogToStderr, false);
  assert.deepEqual(f.skipConfigWatch, true);
  assert.deepEqual(f.forceCniVersion, true);
  assert.deepEqual(f.cniVersion, "0.3.1");
});

Deno.test("parseInstallFlags() lets the last occurrence win, as Go does", () => {
  assert.deepEqual(
    parseInstallFlags(["--namespace-isolation", "--namespace-isolation=false"])
      .namespaceIsolation,
    false,
  );
  assert.deepEqual(
    parseInstallFlags(["--namespace-isolation=false", "--namespace-isolation"])
      .namespaceIsolation,
    true,
  );
  assert.deepEqual(parseInstallFlags(["--cni-bin-dir=/a", "--cni-bin-dir=/b"]).cniBinDir, "/b");
});

Deno.test("parseInstallFlags() derives the kubeconfig and autoconfig defaults", () => {
  const f = parseInstallFlags(["--cni-conf-dir=/host/etc/cni/other"]);
  assert.deepEqual(f.multusAutoconfigDir, "/host/etc/cni/other");
  assert.deepEqual(f.multusKubeconfigFileHost, "/etc/cni/other/multus.d/multus.kubeconfig");
  const g = parseInstallFlags(["--cni-conf-dir=/tmp/x/net.d", "--host-prefix="]);
  assert.deepEqual(g.multusKubeconfigFileHost, "/tmp/x/net.d/multus.d/multus.kubeconfig");
  const h = parseInstallFlags(["--multus-kubeconfig-file-host=/etc/foobar_kubeconfig"]);
  assert.deepEqual(h.multusKubeconfigFileHost, "/etc/foobar_kubeconfig");
});

Deno.test("parseInstallFlags() names an unknown flag and the closest known one", () => {
  assertFlagError(
    ["--cni-conf-dri=/x"],
    /Unknown flag "--cni-conf-dri": did you mean --cni-conf-dir\?/,
  );
  assertFlagError(["-multus_log_level=debug"], /did you mean --multus-log-level\?/);
  assertFlagError(
    ["--entirely-different"],
    /Unknown flag "--entirely-different": see multus install --help/,
  );
  assertFlagError(["---cni-bin-dir=/x"], /Unknown flag/);
});

Deno.test("parseInstallFlags() rejects bad values and stray arguments", () => {
  assertFlagError(
    ["--namespace-isolation=yes"],
    /Invalid boolean value "yes" for --namespace-isolation/,
  );
  assertFlagError(["--cni-bin-dir"], /--cni-bin-dir needs a value/);
  assertFlagError(
    ["--multus-log-level=loud"],
    /--multus-log-level: use one of debug, verbose, error, panic/,
  );
  assertFlagError(["--force-cni-version"], /needs --cni-version/);
  assertFlagError(["--cni-version=one"], /Invalid value "one" for --cni-version/);
  assertFlagError(["auto"], /Unexpected argument "auto"/);
  assertFlagError(["--poll-interval=fast"], /--poll-interval/);
  assert.deepEqual(parseInstallFlags(["--poll-interval=250ms"]).pollIntervalMs, 250);
  assert.deepEqual(parseInstallFlags(["--poll-interval=2s"]).pollIntervalMs, 2000);
});

Deno.test("parseInstallFlags() understands -h and --help", () => {
  assert.deepEqual(parseInstallFlags(["-h"]).help, true);
  assert.deepEqual(parseInstallFlags(["--help"]).help, true);
});

Deno.test("installHelp() lists every flag with its default and meaning", () => {
  const help = installHelp();
  for (const [name, spec] of Object.entries(INSTALL_FLAGS)) {
    assert.match(help, new RegExp(`--${name}\\b`));
    if (spec.default !== undefined && spec.type === "string") {
      assert.deepEqual(help.includes(`(default: ${JSON.stringify(spec.default)})`), true, name);
    }
  }
  assert.match(help, /--cni-bin-dir=<value>\n.*\(default: "\/host\/opt\/cni\/bin"\)/);
  assert.match(help, /--cleanup-config-on-exit\n.*\(default: false\)/);
});

Deno.test("toHostPath() strips the host prefix only from paths under it", () => {
  assert.deepEqual(toHostPath("/host/etc/cni/net.d", "/host"), "/etc/cni/net.d");
  assert.deepEqual(toHostPath("/hostile/etc", "/host"), "/hostile/etc");
  assert.deepEqual(toHostPath("/etc/cni/net.d", "/host"), "/etc/cni/net.d");
  assert.deepEqual(toHostPath("/host/etc", ""), "/host/etc");
});

Deno.test("parseInstallFlags() moves /host defaults with --host-prefix (by hand: --host-prefix=)", () => {
  const byHand = parseInstallFlags(["--host-prefix="]);
  assert.equal(byHand.cniConfDir, "/etc/cni/net.d");
  assert.equal(byHand.cniBinDir, "/opt/cni/bin");
  assert.equal(byHand.multusCniConfDir, "/etc/cni/multus/net.d");
  const daemonSet = parseInstallFlags([]);
  assert.equal(daemonSet.cniConfDir, "/host/etc/cni/net.d");
  assert.equal(parseInstallFlags(["--host-prefix=/h", "--cni-conf-dir=/x"]).cniConfDir, "/x");
});
