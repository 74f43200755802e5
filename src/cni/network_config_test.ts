import assert from "node:assert/strict";
import { ConfigError } from "./errors.ts";
import { parseNetworkConfig, withTopLevelKeys } from "./network_config.ts";

Deno.test("parseNetworkConfig() reads a single conf", () => {
  const raw = '{"cniVersion":"0.3.1","name":"m","type":"macvlan","master":"eth0",' +
    '"capabilities":{"ips":true,"mac":false,"x":"true"},"big":12345678901234567890}';
  assert.deepEqual(parseNetworkConfig(raw, "delegates[1]"), {
    name: "m",
    cniVersion: "0.3.1",
    isList: false,
    disableCheck: false,
    disableGC: false,
    plugins: [{ type: "macvlan", capabilities: { ips: true }, raw }],
    raw,
  });
});

Deno.test("parseNetworkConfig() treats a conf with type as single even with plugins", () => {
  const raw = '{"type":"bridge","plugins":[{"type":"x"}]}';
  const conf = parseNetworkConfig(raw, "d");
  assert.equal(conf.isList, false);
  assert.equal(conf.name, "");
  assert.equal(conf.cniVersion, "");
  assert.deepEqual(conf.plugins, [{ type: "bridge", capabilities: {}, raw }]);
});

Deno.test("parseNetworkConfig() reads a conflist with exact plugin texts", () => {
  const raw = `{
  "cniVersion": "1.0.0", "name": "dbnet", "disableCheck": "TRUE", "disableGC": false,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "mtu": 12345678901234567890},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}`;
  assert.deepEqual(parseNetworkConfig(raw, "delegates[0]"), {
    name: "dbnet",
    cniVersion: "1.0.0",
    isList: true,
    disableCheck: true,
    disableGC: false,
    plugins: [
      {
        type: "bridge",
        capabilities: {},
        raw: '{"type": "bridge", "bridge": "cni0", "mtu": 12345678901234567890}',
      },
      {
        type: "portmap",
        capabilities: { portMappings: true },
        raw: '{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}',
      },
    ],
    raw,
  });
});

Deno.test("parseNetworkConfig() accepts JSONC and keeps the raw text", () => {
  const raw = '{\n  // comment\n  "name": "n", "plugins": [{"type": "bridge",},],\n}';
  const conf = parseNetworkConfig(raw, "file.conflist");
  assert.equal(conf.raw, raw);
  assert.deepEqual(conf.plugins.map((p) => p.raw), ['{"type": "bridge",}']);
});

function assertConfigError(
  fn: () => unknown,
  expected: { field: string; message: string; code?: number },
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.field, expected.field);
    assert.equal(err.message, expected.message);
    assert.equal(err.code, expected.code ?? 7);
    return true;
  });
}

Deno.test("parseNetworkConfig() rejects plugins without a type", () => {
  assertConfigError(
    () => parseNetworkConfig('{"plugins":[{"type":"a"},{"type":"b"},{"x":1}]}', "delegates[1]"),
    {
      field: "delegates[1].plugins[2].type",
      message: 'Cannot use network configuration delegates[1]: plugin 2 has no "type"',
    },
  );
  assertConfigError(() => parseNetworkConfig('{"plugins":[{"type":""}]}', "d"), {
    field: "d.plugins[0].type",
    message: 'Cannot use network configuration d: plugin 0 has no "type"',
  });
  assertConfigError(() => parseNetworkConfig('{"plugins":[{"type":3}]}', "d"), {
    field: "d.plugins[0].type",
    message: 'Cannot use network configuration d: plugin 0 has no "type"',
  });
  assertConfigError(() => parseNetworkConfig('{"plugins":[1]}', "d"), {
    field: "d.plugins[0]",
    message: "Cannot use network configuration d: plugin 0 is not an object",
  });
});

Deno.test("parseNetworkConfig() rejects missing, empty or non-array plugins", () => {
  assertConfigError(() => parseNetworkConfig('{"name":"x"}', "d"), {
    field: "d.plugins",
    message: 'Cannot use network configuration d: it has neither "type" nor "plugins"',
  });
  assertConfigError(() => parseNetworkConfig('{"type":"","name":"x"}', "d"), {
    field: "d.plugins",
    message: 'Cannot use network configuration d: it has neither "type" nor "plugins"',
  });
  assertConfigError(() => parseNetworkConfig('{"plugins":[]}', "d"), {
    field: "d.plugins",
    message: 'Cannot use network configuration d: "plugins" is empty',
  });
  assertConfigError(() => parseNetworkConfig('{"plugins":{}}', "d"), {
    field: "d.plugins",
    message: 'Cannot use network configuration d: "plugins" must be an array, got an object',
  });
});

Deno.test("parseNetworkConfig() rejects plugin types that are paths", () => {
  for (const type of ["../../bin/sh", "/bin/sh", "a\\b", ".", ".."]) {
    assertConfigError(() => parseNetworkConfig(JSON.stringify({ type }), "d"), {
      field: "d.type",
      message: `Cannot use network configuration d: plugin type ${
        JSON.stringify(type)
      } is not a plugin name`,
    });
  }
  assertConfigError(
    () => parseNetworkConfig('{"plugins":[{"type":"ok"},{"type":"x/y"}]}', "d"),
    {
      field: "d.plugins[1].type",
      message: 'Cannot use network configuration d: plugin type "x/y" is not a plugin name',
    },
  );
});

Deno.test("parseNetworkConfig() checks name, cniVersion, type and flag types", () => {
  assertConfigError(() => parseNetworkConfig('{"name":1,"type":"a"}', "d"), {
    field: "d.name",
    message: 'Cannot use network configuration d: "name" must be a string, got 1',
  });
  assertConfigError(() => parseNetworkConfig('{"cniVersion":[],"type":"a"}', "d"), {
    field: "d.cniVersion",
    message: 'Cannot use network configuration d: "cniVersion" must be a string, got an array',
  });
  assertConfigError(() => parseNetworkConfig('{"type":true}', "d"), {
    field: "d.type",
    message: 'Cannot use network configuration d: "type" must be a string, got true',
  });
  assertConfigError(
    () => parseNetworkConfig('{"disableCheck":"yes","plugins":[{"type":"a"}]}', "d"),
    {
      field: "d.disableCheck",
      message: 'Cannot use network configuration d: "disableCheck" must be true or false, ' +
        'got "yes"',
    },
  );
  assertConfigError(() => parseNetworkConfig('{"disableGC":1,"plugins":[{"type":"a"}]}', "d"), {
    field: "d.disableGC",
    message: 'Cannot use network configuration d: "disableGC" must be true or false, got 1',
  });
  assertConfigError(() => parseNetworkConfig('{"type":"a","capabilities":["ips"]}', "d"), {
    field: "d.capabilities",
    message: 'Cannot use network configuration d: "capabilities" must be an object, ' +
      "got an array",
  });
  const conf = parseNetworkConfig(
    '{"disableCheck":"False","disableGC":"tRuE","plugins":[{"type":"a"}]}',
    "d",
  );
  assert.equal(conf.disableCheck, false);
  assert.equal(conf.disableGC, true);
});

Deno.test("parseNetworkConfig() rejects malformed text and non-objects with code 6", () => {
  assertConfigError(() => parseNetworkConfig('{"type":"a",\n"x":}', "delegates[0]"), {
    field: "delegates[0]",
    message: "Cannot use network configuration delegates[0]: invalid JSON: unexpected " +
      'character "}" at line 2 column 5',
    code: 6,
  });
  assertConfigError(() => parseNetworkConfig("[]", "d"), {
    field: "d",
    message: "Cannot use network configuration d: expected a JSON object, got an array",
    code: 6,
  });
});

Deno.test("withTopLevelKeys() injects keys byte for byte and reparses", () => {
  const conf = parseNetworkConfig('{"cniVersion":"0.3.0","type":"awesome-plugin","n":1e400}', "d");
  const named = withTopLevelKeys(conf, { name: "a-bridge-network" }, "d");
  assert.equal(
    named.raw,
    '{"cniVersion":"0.3.0","type":"awesome-plugin","n":1e400,"name":"a-bridge-network"}',
  );
  assert.equal(named.name, "a-bridge-network");
  assert.equal(named.plugins[0].raw, named.raw);

  const list = parseNetworkConfig('{"name":"","plugins":[{"type":"a","k":0.10}]}', "d");
  const renamed = withTopLevelKeys(list, { name: "net" }, "d");
  assert.equal(renamed.raw, '{"name":"net","plugins":[{"type":"a","k":0.10}]}');
  assert.equal(renamed.plugins[0].raw, '{"type":"a","k":0.10}');
});
