import assert from "node:assert/strict";
import { ConfigError } from "../../cni/errors.ts";
import { loadMultusNetConf, NETCONF_DEFAULTS, recoverCniDir } from "./netconf.ts";

const bridge = '{"cniVersion":"1.0.0","name":"b","type":"bridge","mtu":12345678901234567890}';

Deno.test("loadMultusNetConf() applies Multus's defaults", () => {
  const conf = loadMultusNetConf(
    `{"cniVersion":"1.0.0","name":"m","type":"multus","delegates":[${bridge}]}`,
  );
  assert.equal(conf.confDir, "/etc/cni/multus/net.d");
  assert.equal(conf.cniDir, "/var/lib/cni/multus");
  assert.equal(conf.binDir, "/opt/cni/bin");
  assert.equal(conf.multusNamespace, "kube-system");
  assert.deepEqual(conf.systemNamespaces, ["kube-system"]);
  assert.deepEqual(conf.globalNamespaces, ["default"]);
  assert.equal(conf.logToStderr, true);
  assert.equal(conf.logLevel, undefined, "panic: nothing but panics");
  assert.equal(conf.namespaceIsolation, false);
  assert.equal(conf.delegateTimeoutSeconds, NETCONF_DEFAULTS.delegateTimeoutSeconds);
});

Deno.test("loadMultusNetConf() matches keys case-insensitively, legacy LogFile/LogLevel included", () => {
  const conf = loadMultusNetConf(
    `{"CNIVERSION":"0.3.1","Name":"m","type":"multus","LogFile":"/var/log/m.log","LogLevel":"DEBUG",` +
      `"NAMESPACEISOLATION":true,"globalnamespaces":" a , b ","Delegates":[${bridge}],"someKey":1}`,
  );
  assert.equal(conf.cniVersion, "0.3.1");
  assert.equal(conf.logFile, "/var/log/m.log");
  assert.equal(conf.logLevel, "debug");
  assert.equal(conf.namespaceIsolation, true);
  assert.deepEqual(conf.globalNamespaces, ["a", "b"]);
  assert.deepEqual(conf.unknownKeys, ["someKey"]);
  assert.equal(conf.delegates.length, 1);
});

Deno.test("loadMultusNetConf() keeps delegate configs byte for byte", () => {
  const conf = loadMultusNetConf(`{"name":"m","delegates":[ ${bridge} ]}`);
  assert.equal(conf.delegates[0].raw, bridge, "big integer and key order kept");
});

Deno.test("loadMultusNetConf() names the bad field, what was expected and what was found", () => {
  const cases: [string, string, RegExp][] = [
    [
      `{"name":"m","logToStderr":"yes","delegates":[${bridge}]}`,
      "logToStderr",
      /"logToStderr" must be a boolean, got the string "yes"/,
    ],
    [`{"name":"m","delegates":{}}`, "delegates", /"delegates" must be a list/],
    [
      `{"name":"m","defaultNetworks":[1],"clusterNetwork":"x"}`,
      "defaultNetworks[0]",
      /"defaultNetworks\[0\]" must be a string, got number 1/,
    ],
    [`{"name":"m"}`, "delegates", /at least one delegate\/clusterNetwork must be specified/],
    [`{"name":"m","delegates":[{"name":"x"}]}`, "delegates[0]", /delegates\[0\]/],
    [
      `{"name":"m","apiTimeoutSeconds":0,"clusterNetwork":"x"}`,
      "apiTimeoutSeconds",
      /positive number of seconds/,
    ],
  ];
  for (const [text, field, message] of cases) {
    assert.throws(() => loadMultusNetConf(text), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.code, 7);
      assert.ok(err.field.startsWith(field), `${err.field} for ${text}`);
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("loadMultusNetConf() keeps an unknown logLevel as a warning, as Multus does", () => {
  const conf = loadMultusNetConf(`{"name":"m","logLevel":"loud","delegates":[${bridge}]}`);
  assert.equal(conf.logLevel, undefined);
  assert.match(conf.warnings[0], /unknown logLevel "loud"/);
});

Deno.test("loadMultusNetConf() reads hand-written JSONC and cuts delegates as plain JSON", () => {
  const conf = loadMultusNetConf(`{
    // the pod network
    "name": "m",
    "delegates": [{"name": "b", "type": "bridge", /* inline */ "cniVersion": "1.0.0",},],
  }`);
  assert.deepEqual(JSON.parse(conf.delegates[0].raw), {
    name: "b",
    type: "bridge",
    cniVersion: "1.0.0",
  });
});

Deno.test("recoverCniDir() reads cniDir from a text that cannot be loaded, or says it cannot", () => {
  const d = NETCONF_DEFAULTS.cniDir;
  assert.equal(recoverCniDir('{"name":"m","delegates":5}'), d, "whole JSON without cniDir");
  assert.equal(recoverCniDir('{"cniDir":"","delegates":5}'), d, "empty means the default");
  assert.equal(recoverCniDir('{"cniDir":"/a","CNIDIR":"/b","delegates":5}'), "/b", "last wins");
  assert.equal(recoverCniDir('{"cniDir":7}'), undefined, "wrong type");
  assert.equal(recoverCniDir('{"name":"m","cnidir" : "/x\\"y", "delegates":['), '/x"y');
  assert.equal(recoverCniDir('{"cniDir":"/a","x":{"cniDir":"/a"},'), "/a", "the same twice");
  assert.equal(recoverCniDir('{"cniDir":"/a","x":{"cniDir":"/b"},'), undefined, "two differ");
  assert.equal(recoverCniDir('{"name":"m","delegates":[{"type":"x"}],"cniD'), undefined, "cut");
  assert.equal(recoverCniDir('{"cniDir":"/var/li'), undefined, "cut inside the value");
});
