import assert from "node:assert/strict";
import { ConfigError } from "../../cni/errors.ts";
import { parseSelection } from "./selection.ts";

const opts = {
  defaultNamespace: "pods",
  where: 'pod "pods/web" annotation k8s.v1.cni.cncf.io/networks',
};

Deno.test("parseSelection() reads the short form: [ns/]name[@ifname], comma separated", () => {
  assert.deepEqual(parseSelection("a, other/b@data0 ,c@net7", opts), [
    { name: "a", namespace: "pods" },
    { name: "b", namespace: "other", interface: "data0" },
    { name: "c", namespace: "pods", interface: "net7" },
  ]);
  assert.deepEqual(parseSelection("", opts), []);
});

Deno.test("parseSelection() reads the JSON form with every field, keys case-insensitive", () => {
  const value = JSON.stringify([{
    NAME: "mv",
    namespace: "n2",
    interface: "fast0",
    ips: ["10.1.1.5/24", "2001:db8::5"],
    mac: "c2:11:22:33:44:55",
    "default-route": ["10.1.1.1"],
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    bandwidth: { ingressRate: 1000, egressBurst: 10 },
    "infiniband-guid": "c2:11:22:33:44:55:66:77",
    "cni-args": { foo: "bar" },
  }]);
  assert.deepEqual(parseSelection(value, opts), [{
    name: "mv",
    namespace: "n2",
    interface: "fast0",
    ips: ["10.1.1.5/24", "2001:db8::5"],
    mac: "c2:11:22:33:44:55",
    defaultRoute: ["10.1.1.1"],
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    bandwidth: { ingressRate: 1000, egressBurst: 10 },
    infinibandGuid: "c2:11:22:33:44:55:66:77",
    cniArgs: { foo: "bar" },
  }]);
});

Deno.test("parseSelection() refuses malformed selections with the element and field", () => {
  const cases: [string, RegExp][] = [
    ["a/b/c", /more than one "\/"/],
    ["Bad_Name", /name "Bad_Name" must consist of lower case/],
    ["a@this-name-is-too-long", /interface name "this-name-is-too-long"/],
    ['{"name":"a"}', /must be a list of objects, got an object/],
    ["[{]", /not valid JSON/],
    ['[{"name":"a","ips":["10.0.0.300"]}]', /"ips" entry "10\.0\.0\.300" is not an IP address/],
    ['[{"name":"a","mac":"zz"}]', /"mac" "zz" is not a MAC address/],
    [
      '[{"name":"a","portMappings":[{"hostPort":70000,"containerPort":1}]}]',
      /"hostPort" must be a port number/,
    ],
    ['[{"namespace":"x"}]', /"name" is missing/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => parseSelection(value, opts), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, message, value);
      assert.match(err.message, /pod "pods\/web"/, value);
      return true;
    });
  }
});
