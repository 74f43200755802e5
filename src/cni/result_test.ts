import assert from "node:assert/strict";
import { CniError } from "./errors.ts";
import { convertResult, parseResult, resultToJson } from "./result.ts";

/** Parses plugin output text, converts it and serialises it. */
function convertText(text: string, toVersion: string, configVersion = ""): string {
  return resultToJson(convertResult(parseResult(JSON.parse(text), configVersion), toVersion));
}

/** Parses plugin output text and serialises it in its own version. */
function roundTrip(text: string, configVersion = ""): string {
  return resultToJson(parseResult(JSON.parse(text), configVersion));
}

function assertCniError(fn: () => unknown, expected: { code: number; message: string }): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${err}`);
    assert.equal(err.code, expected.code);
    assert.equal(err.message, expected.message);
    return true;
  });
}

const R020 = '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24","gateway":"10.0.0.1",' +
  '"routes":[{"dst":"0.0.0.0/0"}]},"dns":{}}';

Deno.test("R.5 vector 1: 0.2.0 to 1.0.0 drops empty dns, adds no interfaces", () => {
  assert.equal(
    convertText(R020, "1.0.0"),
    '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}],' +
      '"routes":[{"dst":"0.0.0.0/0"}]}',
  );
});

Deno.test("R.5 vector 2: 0.2.0 to 0.4.0", () => {
  assert.equal(
    convertText(R020, "0.4.0"),
    '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24",' +
      '"gateway":"10.0.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}',
  );
});

const R110 = JSON.stringify({
  cniVersion: "1.1.0",
  interfaces: [
    { name: "eth0", mac: "aa:bb:cc:dd:ee:ff", mtu: 9000, sandbox: "/var/run/netns/x" },
    { name: "veth1", socketPath: "/run/x.sock", pciID: "0000:00:1f.6" },
  ],
  ips: [
    { interface: 0, address: "10.0.0.2/24", gateway: "10.0.0.1" },
    { interface: 0, address: "10.0.1.2/24" },
    { interface: 0, address: "2001:db8::2/64", gateway: "2001:db8::1" },
  ],
  routes: [
    { dst: "0.0.0.0/0", gw: "10.0.0.1", mtu: 1400, advmss: 1360, priority: 10 },
    { dst: "::/0", gw: "2001:db8::1", table: 100, scope: 0 },
  ],
  dns: { nameservers: ["10.0.0.53"], search: ["svc.local"] },
  extra: "dropped",
});

Deno.test("R.5 vector 3: 1.1.0 to 0.2.0 keeps the first IP of each family", () => {
  assert.equal(
    convertText(R110, "0.2.0"),
    '{"cniVersion":"0.2.0",' +
      '"ip4":{"ip":"10.0.0.2/24","gateway":"10.0.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]},' +
      '"ip6":{"ip":"2001:db8::2/64","gateway":"2001:db8::1","routes":[{"dst":"::/0","gw":"2001:db8::1"}]},' +
      '"dns":{"nameservers":["10.0.0.53"],"search":["svc.local"]}}',
  );
  assert.equal(
    convertText(R110, "0.1.0"),
    convertText(R110, "0.2.0").replace('"0.2.0"', '"0.1.0"'),
  );
  assert.equal(
    convertText(R110, ""),
    convertText(R110, "0.2.0").replace('"0.2.0"', '"0.1.0"'),
  );
});

Deno.test("R.5 vector 4: 1.0.0 without ips cannot become 0.2.0 but can become 0.4.0", () => {
  const text = '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[]}';
  assertCniError(() => convertText(text, "0.2.0"), {
    code: 1,
    message: "cannot convert: no valid IP addresses",
  });
  assertCniError(() => convertText('{"cniVersion":"0.4.0"}', "0.1.0"), {
    code: 1,
    message: "cannot convert: no valid IP addresses",
  });
  assert.equal(
    convertText(text, "0.4.0"),
    '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],"dns":{}}',
  );
});

Deno.test("R.5 vector 5: 1.1.0 IPv6-only to 0.2.0 drops the IPv4 route", () => {
  const text = JSON.stringify({
    cniVersion: "1.1.0",
    ips: [{ address: "fd00::5/64" }],
    routes: [{ dst: "10.0.0.0/8", gw: "fd00::1" }, { dst: "fd01::/64" }],
  });
  assert.equal(
    convertText(text, "0.2.0"),
    '{"cniVersion":"0.2.0","ip6":{"ip":"fd00::5/64","routes":[{"dst":"fd01::/64"}]},"dns":{}}',
  );
});

Deno.test("R.5 vector 6: 0.3.1 to 0.3.0 changes only cniVersion", () => {
  const text = '{"cniVersion":"0.3.1","interfaces":[{"name":"eth0","sandbox":"/n"}],' +
    '"ips":[{"version":"4","interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{"domain":"x"}}';
  assert.equal(convertText(text, "0.3.0"), text.replace('"0.3.1"', '"0.3.0"'));
  assert.equal(convertText(text, "0.4.0"), text.replace('"0.3.1"', '"0.4.0"'));
});

Deno.test("R.5 vector 7: 1.1.0 to 1.0.0 keeps 1.1 fields (sorted keys)", () => {
  assert.equal(
    convertText(R110, "1.0.0"),
    '{"cniVersion":"1.0.0","dns":{"nameservers":["10.0.0.53"],"search":["svc.local"]},' +
      '"interfaces":[{"mac":"aa:bb:cc:dd:ee:ff","mtu":9000,"name":"eth0",' +
      '"sandbox":"/var/run/netns/x"},{"name":"veth1","pciID":"0000:00:1f.6",' +
      '"socketPath":"/run/x.sock"}],' +
      '"ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1","interface":0},' +
      '{"address":"10.0.1.2/24","interface":0},' +
      '{"address":"2001:db8::2/64","gateway":"2001:db8::1","interface":0}],' +
      '"routes":[{"advmss":1360,"dst":"0.0.0.0/0","gw":"10.0.0.1","mtu":1400,"priority":10},' +
      '{"dst":"::/0","gw":"2001:db8::1","scope":0,"table":100}]}',
  );
});

Deno.test("R.5 vector 8: empty gateway is absent, a bad address fails", () => {
  assert.equal(
    roundTrip('{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24","gateway":""}]}'),
    '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}',
  );
  assertCniError(
    () => parseResult({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.300/24" }] }, "1.0.0"),
    {
      code: 6,
      message: 'Cannot decode CNI result: invalid CIDR address "10.0.0.300/24" in ips[0].address',
    },
  );
});

Deno.test("R.5 vector 9: a result without cniVersion takes the config version", () => {
  const result = parseResult({ ips: [{ address: "10.0.0.2/24" }] }, "1.0.0");
  assert.equal(result.cniVersion, "1.0.0");
  assert.equal(resultToJson(result), '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}');
  // An empty or non-string cniVersion counts as missing.
  assert.equal(parseResult({ cniVersion: "" }, "0.3.1").cniVersion, "0.3.1");
  assert.equal(parseResult({ cniVersion: 1 }, "0.3.1").cniVersion, "0.3.1");
  // The output's version wins over the config's, unchecked.
  assert.equal(parseResult({ cniVersion: "0.4.0" }, "1.0.0").cniVersion, "0.4.0");
  // No version anywhere: 0.1.0.
  assert.equal(
    roundTrip('{"ip4":{"ip":"10.0.0.2/24"}}'),
    '{"cniVersion":"0.1.0","ip4":{"ip":"10.0.0.2/24"},"dns":{}}',
  );
});

Deno.test("parseResult() turns null output into an empty result", () => {
  assert.equal(resultToJson(parseResult(null, "1.0.0")), '{"cniVersion":"1.0.0"}');
  assert.equal(resultToJson(parseResult(null, "0.4.0")), '{"cniVersion":"0.4.0","dns":{}}');
  assert.equal(resultToJson(parseResult(null, "")), '{"cniVersion":"0.1.0","dns":{}}');
});

Deno.test("round trip V02 keeps shape and omission rules", () => {
  const text = '{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/16","gateway":"10.1.0.1",' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]},"ip6":{"ip":"2001:db8::5/64",' +
    '"gateway":"2001:db8::1"},"dns":{"nameservers":["10.1.0.1"],"domain":"x","search":["a"],' +
    '"options":["o"]}}';
  assert.equal(roundTrip(text), text);
  assert.equal(
    roundTrip('{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/16","routes":[]}}'),
    '{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/16"},"dns":{}}',
  );
});

Deno.test("round trip V04 emits version always, interface 0 and -1, dns always", () => {
  const text = '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","mac":"99:88:77:66:55:44",' +
    '"sandbox":"/var/run/netns/blue"},{"name":""}],"ips":[{"version":"4","interface":0,' +
    '"address":"10.1.0.5/16","gateway":"10.1.0.1"},{"version":"6","interface":-1,' +
    '"address":"2001:db8::5/64"},{"version":"","address":"10.2.0.5/16"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{}}';
  assert.equal(roundTrip(text), text);
  // Fields V04 does not have are dropped; a missing version is printed empty.
  assert.equal(
    roundTrip(
      '{"cniVersion":"0.3.0","interfaces":[{"name":"e","mtu":1500,"pciID":"p"}],' +
        '"ips":[{"address":"10.0.0.1/8"}]}',
    ),
    '{"cniVersion":"0.3.0","interfaces":[{"name":"e"}],' +
      '"ips":[{"version":"","address":"10.0.0.1/8"}],"dns":{}}',
  );
});

Deno.test("round trip V04 keeps the shared route fields", () => {
  assert.equal(
    roundTrip(
      '{"cniVersion":"0.4.0","routes":[{"dst":"10.0.0.0/8","mtu":0,"advmss":0,' +
        '"priority":0,"table":0,"scope":0},{"dst":"10.0.0.0/8","mtu":1450,"advmss":1400,' +
        '"priority":5,"table":254,"scope":253}]}',
    ),
    '{"cniVersion":"0.4.0","routes":[{"dst":"10.0.0.0/8","table":0,"scope":0},' +
      '{"dst":"10.0.0.0/8","mtu":1450,"advmss":1400,"priority":5,"table":254,"scope":253}],' +
      '"dns":{}}',
  );
});

Deno.test("round trip V1 sorts keys and omits empty dns", () => {
  const out = roundTrip(
    '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mtu":0,"sandbox":"/n"}],' +
      '"ips":[{"interface":0,"address":"10.1.0.5/16"}],"dns":{"nameservers":[],"domain":""}}',
  );
  assert.equal(
    out,
    '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/n"}],' +
      '"ips":[{"address":"10.1.0.5/16","interface":0}]}',
  );
  assert.equal(
    roundTrip('{"cniVersion":"1.0.0","dns":{"options":["ndots:5"],"domain":"d"}}'),
    '{"cniVersion":"1.0.0","dns":{"domain":"d","options":["ndots:5"]}}',
  );
});

Deno.test("conversions between families", () => {
  const v04 = '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/n"}],' +
    '"ips":[{"version":"4","interface":0,"address":"10.1.0.5/16","gateway":"10.1.0.1"},' +
    '{"version":"6","address":"fd00::5/64"}],"routes":[{"dst":"0.0.0.0/0","mtu":1400}],' +
    '"dns":{"nameservers":["1.1.1.1"]}}';
  assert.equal(
    convertText(v04, "1.0.0"),
    '{"cniVersion":"1.0.0","dns":{"nameservers":["1.1.1.1"]},' +
      '"interfaces":[{"name":"eth0","sandbox":"/n"}],' +
      '"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":0},' +
      '{"address":"fd00::5/64"}],"routes":[{"dst":"0.0.0.0/0","mtu":1400}]}',
  );
  // Back down: versions recomputed from the addresses (IPv4-mapped counts as IPv4).
  assert.equal(convertText(convertText(v04, "1.1.0"), "0.4.0"), v04);
  assert.equal(
    convertText('{"cniVersion":"1.0.0","ips":[{"address":"::ffff:10.0.0.1/120"}]}', "0.3.1"),
    '{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.0.0.1/24"}],"dns":{}}',
  );
  // 1.1.0 to 0.4.0 loses the interface's 1.1 fields but keeps route fields.
  assert.equal(
    convertText(R110, "0.4.0"),
    '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff",' +
      '"sandbox":"/var/run/netns/x"},{"name":"veth1"}],' +
      '"ips":[{"version":"4","interface":0,"address":"10.0.0.2/24","gateway":"10.0.0.1"},' +
      '{"version":"4","interface":0,"address":"10.0.1.2/24"},' +
      '{"version":"6","interface":0,"address":"2001:db8::2/64","gateway":"2001:db8::1"}],' +
      '"routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1","mtu":1400,"advmss":1360,"priority":10},' +
      '{"dst":"::/0","gw":"2001:db8::1","table":100,"scope":0}],' +
      '"dns":{"nameservers":["10.0.0.53"],"search":["svc.local"]}}',
  );
  // V02 up to V1: ipv4 first, then ipv6; routes ip4 then ip6.
  assert.equal(
    convertText(
      '{"cniVersion":"0.1.0","ip6":{"ip":"fd00::2/64","routes":[{"dst":"::/0"}]},' +
        '"ip4":{"ip":"10.0.0.2/24","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]}}',
      "1.1.0",
    ),
    '{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"},{"address":"fd00::2/64"}],' +
      '"routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"},{"dst":"::/0"}]}',
  );
  assert.equal(convertText(R020, "0.1.0"), R020.replace('"0.2.0"', '"0.1.0"'));
});

Deno.test("convertResult() returns the same object for the same version", () => {
  const result = parseResult(JSON.parse(R110), "");
  assert.equal(convertResult(result, "1.1.0"), result);
  const copy = convertResult(result, "1.0.0");
  assert.notEqual(copy, result);
  assert.equal(result.cniVersion, "1.1.0");
});

Deno.test("convertResult() rejects unknown versions", () => {
  const result = parseResult(JSON.parse(R110), "");
  assertCniError(() => convertResult(result, "2.0.0"), {
    code: 1,
    message: "no converter for CNI result version 1.1.0 to 2.0.0",
  });
  assertCniError(() => convertResult({ cniVersion: "0.5.0" }, "1.0.0"), {
    code: 1,
    message: "no converter for CNI result version 0.5.0 to 1.0.0",
  });
});

Deno.test("parseResult() rejects unsupported versions", () => {
  assertCniError(() => parseResult({ cniVersion: "0.5.0" }, "1.0.0"), {
    code: 1,
    message: 'unsupported CNI result version "0.5.0"',
  });
  assertCniError(() => parseResult({}, "2.0"), {
    code: 1,
    message: 'unsupported CNI result version "2.0"',
  });
  // A case-variant key decoded after the exact one disagrees with the family.
  assertCniError(() => parseResult({ cniVersion: "1.0.0", CNIVERSION: "0.4.0" }, ""), {
    code: 6,
    message: "Cannot decode CNI result: result type supports [1.0.0 1.1.0] but unmarshalled " +
      'CNIVersion is "0.4.0"',
  });
});

Deno.test("parseResult() normalises addresses like Go", () => {
  const cases: [string, string][] = [
    ["2001:DB8:0:0:0:0:0:1/64", "2001:db8::1/64"],
    ["2001:db8:0:1:0:0:0:1/64", "2001:db8:0:1::1/64"],
    ["2001:0:0:1:0:0:0:1/64", "2001:0:0:1::1/64"],
    ["1:0:0:2:0:0:3:4/64", "1::2:0:0:3:4/64"],
    ["1:0:2:3:4:5:6:7/64", "1:0:2:3:4:5:6:7/64"],
    ["0:0:0:0:0:0:0:0/0", "::/0"],
    ["fe80:0000:0000:0000:0abc:0000:0000:0001/10", "fe80::abc:0:0:1/10"],
    ["::1.2.3.4/128", "::102:304/128"],
    ["::ffff:10.1.0.5/120", "10.1.0.5/24"],
    ["::FFFF:a01:5/64", "10.1.0.5/0"],
    ["10.1.0.5/016", "10.1.0.5/16"],
    ["10.1.0.5/32", "10.1.0.5/32"],
  ];
  for (const [input, expected] of cases) {
    const result = parseResult({ cniVersion: "1.0.0", ips: [{ address: input }] }, "");
    assert.equal(resultToJson(result), `{"cniVersion":"1.0.0","ips":[{"address":"${expected}"}]}`);
  }
  const gw = parseResult(
    { cniVersion: "1.0.0", ips: [{ address: "fd00::2/64", gateway: "FD00::0:1" }] },
    "",
  );
  assert.equal(
    resultToJson(gw),
    '{"cniVersion":"1.0.0","ips":[{"address":"fd00::2/64","gateway":"fd00::1"}]}',
  );
  const mapped = parseResult({
    cniVersion: "0.2.0",
    ip4: { ip: "10.0.0.2/8", gateway: "::ffff:10.0.0.1" },
  }, "");
  assert.equal(
    resultToJson(mapped),
    '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/8","gateway":"10.0.0.1"},"dns":{}}',
  );
});

Deno.test("parseResult() rejects invalid addresses naming the field and value", () => {
  const bad: [unknown, string][] = [
    [{ ips: [{ address: "10.0.0.1" }] }, 'invalid CIDR address "10.0.0.1" in ips[0].address'],
    [{ ips: [{ address: "10.0.0.1/33" }] }, 'invalid CIDR address "10.0.0.1/33" in ips[0].address'],
    [{ ips: [{ address: "010.0.0.1/8" }] }, 'invalid CIDR address "010.0.0.1/8" in ips[0].address'],
    [
      { ips: [{ address: "fe80::1%eth0/64" }] },
      'invalid CIDR address "fe80::1%eth0/64" in ips[0].address',
    ],
    [{ ips: [{ address: "fd00::1/129" }] }, 'invalid CIDR address "fd00::1/129" in ips[0].address'],
    [{ ips: [{ address: "10.0.0.1/" }] }, 'invalid CIDR address "10.0.0.1/" in ips[0].address'],
    [{ ips: [{ address: null }] }, 'invalid CIDR address "" in ips[0].address'],
    [{ ips: [{}] }, "missing ips[0].address"],
    [{ ips: [{ address: 5 }] }, "ips[0].address must be a string, got 5"],
    [
      { ips: [{ address: "10.0.0.1/8", gateway: "10.0.0.256" }] },
      'invalid IP address "10.0.0.256" in ips[0].gateway',
    ],
    [
      { ips: [{ address: "10.0.0.1/8", gateway: "10.0.0.1/8" }] },
      'invalid IP address "10.0.0.1/8" in ips[0].gateway',
    ],
    [
      { ips: [{ address: "10.0.0.1/8", interface: "0" }] },
      'ips[0].interface must be an integer, got "0"',
    ],
    [
      { ips: [{ address: "10.0.0.1/8", interface: 1.5 }] },
      "ips[0].interface must be an integer, got 1.5",
    ],
    [{ routes: [{ dst: "default" }] }, 'invalid CIDR address "default" in routes[0].dst'],
    [{ routes: [{ dst: "0.0.0.0/0", gw: "x" }] }, 'invalid IP address "x" in routes[0].gw'],
    [
      { routes: [{ dst: "0.0.0.0/0", table: "main" }] },
      'routes[0].table must be an integer, got "main"',
    ],
    [{ routes: [null] }, "routes[0] must be an object, got null"],
    [{ interfaces: {} }, "interfaces must be an array, got an object"],
    [{ interfaces: [{ name: 1 }] }, "interfaces[0].name must be a string, got 1"],
    [{ dns: { nameservers: "8.8.8.8" } }, 'dns.nameservers must be an array, got "8.8.8.8"'],
    [{ dns: [] }, "dns must be an object, got an array"],
  ];
  for (const [output, message] of bad) {
    assertCniError(() => parseResult(output, "1.0.0"), {
      code: 6,
      message: `Cannot decode CNI result: ${message}`,
    });
  }
  assertCniError(() => parseResult({ ip4: { ip: "1.2.3.4" } }, "0.2.0"), {
    code: 6,
    message: 'Cannot decode CNI result: invalid CIDR address "1.2.3.4" in ip4.ip',
  });
  assertCniError(
    () => parseResult({ ip6: { ip: "fd00::1/64", routes: [{ dst: "::/0", gw: "::g" }] } }, "0.2.0"),
    {
      code: 6,
      message: 'Cannot decode CNI result: invalid IP address "::g" in ip6.routes[0].gw',
    },
  );
  assertCniError(() => parseResult([], "1.0.0"), {
    code: 6,
    message: "Cannot decode CNI result: expected a JSON object, got an array",
  });
});

Deno.test("parseResult() matches field names case-insensitively and drops unknown keys", () => {
  assert.equal(
    roundTrip('{"cniVersion":"1.0.0","IPs":[{"Address":"10.0.0.2/24","foo":1}],"bar":{}}'),
    '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}',
  );
});

Deno.test("resultToJson() escapes HTML characters as Go does", () => {
  assert.equal(
    roundTrip('{"cniVersion":"0.4.0","interfaces":[{"name":"a<b>&c\u2028"}]}'),
    '{"cniVersion":"0.4.0","interfaces":[{"name":"a\\u003cb\\u003e\\u0026c\\u2028"}],"dns":{}}',
  );
});

Deno.test("resultToJson() handles results built in code", () => {
  assert.equal(
    resultToJson({
      cniVersion: "0.3.1",
      interfaces: [{ name: "eth0", sandbox: "/n" }],
      ips: [{ address: "0.0.0.0/0", gateway: "0.0.0.0" }],
    }),
    '{"cniVersion":"0.3.1","interfaces":[{"name":"eth0","sandbox":"/n"}],' +
      '"ips":[{"version":"","address":"0.0.0.0/0","gateway":"0.0.0.0"}],"dns":{}}',
  );
  assertCniError(() => resultToJson({ cniVersion: "9.9.9" }), {
    code: 1,
    message: 'unsupported CNI result version "9.9.9"',
  });
});
