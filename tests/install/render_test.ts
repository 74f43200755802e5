import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { lineDiff } from "../../src/install/_diff.ts";
import { apiServerUrl, renderKubeconfig } from "../../src/install/_kubeconfig.ts";
import { type MultusConfOptions, renderMultusConf } from "../../src/install/_multus_conf.ts";
import { findPrimaryConfig, isMultusConfig } from "../../src/install/_primary.ts";

const BASE: MultusConfOptions = {
  primaryHostPath: "/etc/cni/net.d/10-test.conf",
  kubeconfigHostPath: "/etc/foobar_kubeconfig",
  cniVersion: "",
  forceCniVersion: false,
  overrideNetworkName: false,
  namespaceIsolation: false,
  globalNamespaces: "",
  logToStderr: true,
  logLevel: "",
  logFile: "",
  binDir: "",
  confDirHostPath: "/etc/cni/multus/net.d",
  readinessIndicatorFile: "",
};

Deno.test("renderMultusConf() writes a .conf for cniVersion 0.x with clusterNetwork = path", () => {
  const r = renderMultusConf({ cniVersion: "0.3.1", name: "test1", type: "cnitesttype" }, BASE);
  assert.equal(r.fileName, "00-multus.conf");
  assert.equal(
    r.text,
    `{
  "cniVersion": "0.3.1",
  "name": "multus-cni-network",
  "type": "multus",
  "kubeconfig": "/etc/foobar_kubeconfig",
  "clusterNetwork": "/etc/cni/net.d/10-test.conf"
}
`,
  );
});

Deno.test("renderMultusConf() writes a .conflist for cniVersion 1.0.0 and later", () => {
  for (const v of ["1.0.0", "1.1.0"]) {
    const r = renderMultusConf({ cniVersion: v, name: "test1", type: "cnitesttype" }, BASE);
    assert.equal(r.fileName, "00-multus.conflist");
    const conf = JSON.parse(r.text);
    assert.deepEqual(conf, {
      cniVersion: v,
      name: "multus-cni-network",
      plugins: [{
        type: "multus",
        kubeconfig: "/etc/foobar_kubeconfig",
        clusterNetwork: "/etc/cni/net.d/10-test.conf",
      }],
    });
  }
});

Deno.test("renderMultusConf() writes the options in thin_entrypoint's order, confDir not cniConf", () => {
  const r = renderMultusConf(
    { cniVersion: "0.3.1", name: "test1", type: "t", capabilities: { bandwidth: true } },
    {
      ...BASE,
      namespaceIsolation: true,
      globalNamespaces: "foobar,barfoo",
      logToStderr: false,
      logLevel: "debug",
      logFile: "/tmp/foobar.log",
      binDir: "/tmp/add_bin_dir",
      confDirHostPath: "/tmp/multus/net.d",
      readinessIndicatorFile: "/var/lib/foobar_indicator",
    },
  );
  const conf = JSON.parse(r.text);
  assert.deepEqual(Object.keys(conf), [
    "cniVersion",
    "name",
    "type",
    "capabilities",
    "namespaceIsolation",
    "globalNamespaces",
    "logToStderr",
    "logLevel",
    "logFile",
    "binDir",
    "confDir",
    "readinessindicatorfile",
    "kubeconfig",
    "clusterNetwork",
  ]);
  assert.equal(conf.confDir, "/tmp/multus/net.d");
  assert.equal(conf.cniConf, undefined);
  assert.deepEqual(conf.capabilities, { bandwidth: true });
});

Deno.test("renderMultusConf() pulls up the union of a list's capabilities", () => {
  const r = renderMultusConf({
    cniVersion: "0.4.0",
    name: "k",
    plugins: [
      { type: "ptp" },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "bandwidth", capabilities: { bandwidth: true, portMappings: false } },
    ],
  }, BASE);
  assert.deepEqual(JSON.parse(r.text).capabilities, { bandwidth: true, portMappings: false });
});

Deno.test("renderMultusConf() handles cniVersion flags and the network name", () => {
  const primary = { cniVersion: "0.3.1", name: "calico", type: "calico" };
  assert.throws(
    () => renderMultusConf(primary, { ...BASE, cniVersion: "0.4.0" }),
    /--cni-version is "0.4.0" but the primary CNI config \/etc\/cni\/net.d\/10-test.conf has cniVersion "0.3.1"/,
  );
  const forced = renderMultusConf(primary, { ...BASE, cniVersion: "1.0.0", forceCniVersion: true });
  assert.equal(forced.fileName, "00-multus.conflist");
  assert.equal(JSON.parse(forced.text).cniVersion, "1.0.0");
  const named = renderMultusConf(primary, { ...BASE, overrideNetworkName: true });
  assert.equal(JSON.parse(named.text).name, "calico");
  assert.throws(
    () => renderMultusConf({ name: "x", type: "y" }, BASE),
    /10-test.conf has no cniVersion/,
  );
});

Deno.test("findPrimaryConfig() picks the first config by name, never a Multus config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-primary-" });
  try {
    const w = (name: string, conf: unknown) =>
      Deno.writeTextFile(join(dir, name), JSON.stringify(conf));
    await w("00-multus.conf", { cniVersion: "0.3.1", name: "m", type: "multus" });
    await w("01-old-multus.conflist", {
      cniVersion: "1.0.0",
      name: "m",
      plugins: [{ type: "multus-shim" }],
    });
    await w("20-b.conf", { cniVersion: "0.3.1", name: "b", type: "bridge" });
    await w("10-a.conflist", { cniVersion: "1.0.0", name: "a", plugins: [{ type: "ptp" }] });
    await Deno.writeTextFile(join(dir, "05-readme.txt"), "not a config");
    await Deno.mkdir(join(dir, "03-dir.conf"));
    const found = await findPrimaryConfig(dir);
    assert.equal(found.kind, "found");
    if (found.kind !== "found") return;
    assert.equal(found.path, join(dir, "10-a.conflist"));
    assert.deepEqual(found.skipped, ["00-multus.conf", "01-old-multus.conflist"]);

    const named = await findPrimaryConfig(dir, { fileName: "20-b.conf" });
    assert.equal(named.kind === "found" && named.path, join(dir, "20-b.conf"));
    const self = await findPrimaryConfig(dir, { fileName: "00-multus.conf" });
    assert.equal(self.kind, "invalid");
    const absent = await findPrimaryConfig(dir, { fileName: "99-none.conf" });
    assert.equal(absent.kind, "missing");

    await Deno.writeTextFile(join(dir, "09-partial.conf"), '{"cniVersion": "0.3');
    const broken = await findPrimaryConfig(dir);
    assert.equal(broken.kind, "invalid");
    assert.equal(broken.kind === "invalid" && broken.path, join(dir, "09-partial.conf"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findPrimaryConfig() takes .json files and reports an empty directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-primary-" });
  try {
    const empty = await findPrimaryConfig(dir);
    assert.equal(empty.kind, "missing");
    assert.match(
      empty.kind === "missing" ? empty.reason : "",
      /no \*\.conf, \*\.conflist, \*\.json/,
    );
    await Deno.writeTextFile(
      join(dir, "50-x.json"),
      '{"cniVersion":"0.4.0","name":"x","type":"x"}',
    );
    const found = await findPrimaryConfig(dir);
    assert.equal(found.kind === "found" && found.path, join(dir, "50-x.json"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isMultusConfig() recognises multus and multus-shim, also inside lists", () => {
  assert.equal(isMultusConfig({ type: "multus" }), true);
  assert.equal(isMultusConfig({ plugins: [{ type: "x" }, { type: "multus-shim" }] }), true);
  assert.equal(isMultusConfig({ type: "calico" }), false);
});

Deno.test("apiServerUrl() brackets IPv6 and honours KUBERNETES_SERVICE_PROTOCOL", () => {
  const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
  assert.equal(apiServerUrl(env), "https://10.96.0.1:443");
  assert.equal(
    apiServerUrl({ ...env, KUBERNETES_SERVICE_HOST: "fd00:10:96::1" }),
    "https://[fd00:10:96::1]:443",
  );
  assert.equal(
    apiServerUrl({ ...env, KUBERNETES_SERVICE_PROTOCOL: "http" }),
    "http://10.96.0.1:443",
  );
  assert.throws(() => apiServerUrl({}), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/);
});

Deno.test("renderKubeconfig() embeds, references or skips TLS as configured", async () => {
  const root = await Deno.makeTempDir({ prefix: "multus-kc-" });
  try {
    const sa = join(root, "host", "var", "lib", "sa");
    await Deno.mkdir(sa, { recursive: true });
    await Deno.writeTextFile(join(sa, "token"), "abc.def\n");
    await Deno.writeTextFile(join(sa, "ca.crt"), "-----BEGIN CERTIFICATE-----\nx\n");
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };

    const embedded = await renderKubeconfig({
      serviceAccountDir: sa,
      hostPrefix: "/host",
      skipTlsVerify: false,
      env,
    });
    const e = parseYaml(embedded.text);
    assert.equal(embedded.credentials, "embedded");
    assert.equal(e.users[0].user.token, "abc.def");
    assert.equal(
      atob(e.clusters[0].cluster["certificate-authority-data"]),
      "-----BEGIN CERTIFICATE-----\nx\n",
    );
    assert.equal(e["current-context"], "multus-context");

    const referenced = await renderKubeconfig({
      serviceAccountDir: sa,
      hostPrefix: join(root, "host"),
      skipTlsVerify: false,
      env,
    });
    const r = parseYaml(referenced.text);
    assert.equal(referenced.credentials, "referenced");
    assert.equal(r.users[0].user.tokenFile, "/var/lib/sa/token");
    assert.equal(r.users[0].user.token, undefined);
    assert.equal(r.clusters[0].cluster["certificate-authority"], "/var/lib/sa/ca.crt");
    assert.equal(referenced.text.includes("abc.def"), false);

    const insecure = await renderKubeconfig({
      serviceAccountDir: sa,
      hostPrefix: "/host",
      skipTlsVerify: true,
      env,
    });
    assert.equal(parseYaml(insecure.text).clusters[0].cluster["insecure-skip-tls-verify"], true);

    await assert.rejects(
      renderKubeconfig({
        serviceAccountDir: join(root, "nope"),
        hostPrefix: "",
        skipTlsVerify: false,
        env,
      }),
      new RegExp(`Cannot read the service account token ${join(root, "nope", "token")}`),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lineDiff() shows removed and added lines with a little context", () => {
  const before = "a\nb\nc\nd\ne\nf\ng\n";
  const after = "a\nb\nc\nD\ne\nf\ng\n";
  assert.deepEqual(lineDiff(before, after, 1), ["  ...", "  c", "- d", "+ D", "  e", "  ..."]);
  assert.deepEqual(lineDiff(undefined, "x\ny\n"), ["+ x", "+ y"]);
});
