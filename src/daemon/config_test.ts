import assert from "node:assert/strict";
import {
  DAEMON_DEFAULTS,
  DaemonConfigError,
  DEFAULT_CONFIG_FILE,
  parseDaemonArgs,
  parseDaemonConfig,
} from "./config.ts";

const where = { file: "/etc/cni/net.d/multus.d/daemon-config.json", nodeName: "" };

Deno.test("parseDaemonArgs() takes Go's -config FILE, -config=FILE and --config FILE, and the node name", () => {
  for (const args of [["-config", "/a.json"], ["-config=/a.json"], ["--config", "/a.json"]]) {
    assert.equal(parseDaemonArgs(args, {}).configFile, "/a.json");
  }
  assert.equal(parseDaemonArgs([], {}).configFile, DEFAULT_CONFIG_FILE);
  assert.equal(parseDaemonArgs([], { MULTUS_NODE_NAME: "n1" }).nodeName, "n1");
  assert.equal(parseDaemonArgs(["--node-name", "n2"], { MULTUS_NODE_NAME: "n1" }).nodeName, "n2");
  assert.throws(
    () => parseDaemonArgs(["--what"], {}),
    (err) => err instanceof DaemonConfigError && err.exitCode === 2,
  );
});

Deno.test("parseDaemonConfig() applies Multus's defaults and ours", () => {
  const config = parseDaemonConfig("{}", where);
  assert.equal(config.socketPath, "/run/multus/multus.sock");
  assert.equal(config.metricsPort, undefined);
  assert.equal(config.maxParallelRequests, DAEMON_DEFAULTS.maxParallelRequests);
  assert.equal(config.queueTimeoutSeconds, DAEMON_DEFAULTS.queueTimeoutSeconds);
  assert.equal(config.logging.toStderr, true);
  assert.deepEqual(config.warnings, []);
  assert.deepEqual(config.overlay, {});
});

Deno.test("parseDaemonConfig() matches keys case-insensitively and maps connectionLimit", () => {
  const config = parseDaemonConfig(
    '{"SocketDir": "/host/run/multus/", "connectionLimit": 4, "METRICSPORT": 9091}',
    where,
  );
  assert.equal(config.socketPath, "/host/run/multus/multus.sock");
  assert.equal(config.maxParallelRequests, 4);
  assert.equal(config.metricsPort, 9091);
});

Deno.test("parseDaemonConfig() lays netconf keys but the logging ones over requests, as their text", () => {
  const text =
    '{"socketDir":"/run/x","cniDir":"/var/lib/cni/multus","delegates":[{"cniVersion":"1.0.0","name":"n","type":"bridge","big":12345678901234567890}],"logLevel":"debug","logFile":"/var/log/multus.log","chrootDir":"/hostroot"}';
  const config = parseDaemonConfig(text, where);
  const overlay = Object.fromEntries(Object.entries(config.overlay).map(([k, v]) => [k, v.text]));
  assert.deepEqual(overlay, {
    cniDir: '"/var/lib/cni/multus"',
    delegates: '[{"cniVersion":"1.0.0","name":"n","type":"bridge","big":12345678901234567890}]',
  });
  assert.equal(config.logging.level, "debug");
  assert.equal(config.logging.file, "/var/log/multus.log");
  assert.equal(config.chrootDir, "/hostroot", "the daemon's own key");
  assert.deepEqual(config.warnings, []);
});

Deno.test("parseDaemonConfig() errors name the file and the key", () => {
  const cases: [string, RegExp][] = [
    ['{"maxParallelRequests": 0}', /"maxParallelRequests" must be greater than 0, got number 0/],
    ['{"metricsPort": 70000}', /"metricsPort" must be at most 65535/],
    [
      '{"queueTimeoutSeconds": "30"}',
      /"queueTimeoutSeconds" must be a number, got the string "30"/,
    ],
    ['{"cniVersion": "9.9.9"}', /"cniVersion" is "9.9.9", not a CNI version/],
    ['{"logToStderr": "yes"}', /"logToStderr" must be a boolean/],
    ['{"delegates": [{"name": "x"}]}', /delegates\[0\]/],
    ["[1]", /must be a JSON object/],
    ['{"a": ', /Cannot parse the daemon configuration/],
  ];
  for (const [text, message] of cases) {
    assert.throws(
      () => parseDaemonConfig(text, where),
      (err) =>
        err instanceof DaemonConfigError && err.message.includes(where.file) &&
        message.test(err.message),
      text,
    );
  }
});

Deno.test("parseDaemonConfig() warns about unknown keys and keys it does not apply", () => {
  const config = parseDaemonConfig(
    '{"sokcetDir": "/x", "multusConfigFile": "auto", "enablePprof": true, "logLevel": "loud"}',
    where,
  );
  assert.equal(config.warnings.length, 4, config.warnings.join("\n"));
  assert.match(config.warnings.join("\n"), /unknown key "sokcetDir"/);
  assert.match(config.warnings.join("\n"), /"multusConfigFile" is not used/);
  assert.match(config.warnings.join("\n"), /unknown logLevel "loud"/);
});
