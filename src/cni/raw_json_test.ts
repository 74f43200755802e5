import assert from "node:assert/strict";
import {
  JsonSyntaxError,
  parseJsonc,
  rawArrayElements,
  RawJson,
  rawValueAt,
  setTopLevelKeys,
  stripJsonc,
} from "./raw_json.ts";

Deno.test("rawValueAt() returns exact texts of nested values", () => {
  const text = '{ "a" : { "b" : [ 1 , 12345678901234567890 , {"c": "x\\"}"} ] } }';
  assert.equal(rawValueAt(text, ["a", "b", 1]), "12345678901234567890");
  assert.equal(rawValueAt(text, ["a", "b", 2]), '{"c": "x\\"}"}');
  assert.equal(rawValueAt(text, ["a", "b", 2, "c"]), '"x\\"}"');
  assert.equal(rawValueAt(text, []), text.trim());
  assert.equal(rawValueAt(text, ["a", "missing"]), undefined);
  assert.equal(rawValueAt(text, ["a", "b", 9]), undefined);
  assert.equal(rawValueAt(text, ["a", 0]), undefined);
  assert.equal(rawValueAt(text, ["a", "b", "0"]), undefined);
});

Deno.test("rawValueAt() takes the last duplicate key like JSON.parse", () => {
  assert.equal(rawValueAt('{"a":1,"a":2.50}', ["a"]), "2.50");
});

Deno.test("rawValueAt() handles escapes, unicode and literals", () => {
  const text = '{"k\\u00e9y":"\\u2028 é 😀 \\\\","t":true,"f":false,"n":null,"e":-1.5e+10}';
  assert.equal(rawValueAt(text, ["kéy"]), '"\\u2028 é 😀 \\\\"');
  assert.equal(rawValueAt(text, ["t"]), "true");
  assert.equal(rawValueAt(text, ["n"]), "null");
  assert.equal(rawValueAt(text, ["e"]), "-1.5e+10");
});

Deno.test("rawArrayElements() returns element texts byte for byte", () => {
  const text = `{"cniVersion":"1.0.0","plugins":[
    {"type":"bridge","big":12345678901234567890,"z":1,"a":2},
    // a comment
    {"type":"portmap", /* inline */ "capabilities":{"portMappings":true}},
  ]}`;
  assert.deepEqual(rawArrayElements(text, ["plugins"]), [
    '{"type":"bridge","big":12345678901234567890,"z":1,"a":2}',
    '{"type":"portmap", /* inline */ "capabilities":{"portMappings":true}}',
  ]);
  assert.deepEqual(rawArrayElements("[]", []), []);
  assert.equal(rawArrayElements(text, ["cniVersion"]), undefined);
  assert.equal(rawArrayElements(text, ["nope"]), undefined);
});

Deno.test("rawValueAt() throws SyntaxError with line and column", () => {
  assert.throws(() => rawValueAt('{"a":1,\n  "b" 2}', []), {
    name: "SyntaxError",
    message: 'Cannot parse JSON: expected ":" after key, got character "2" at line 2 column 7',
  });
  assert.throws(() => rawValueAt('{"a":tru}', []), {
    message: 'Cannot parse JSON: unexpected character "t" at line 1 column 6',
  });
  assert.throws(() => rawValueAt('{"a":[1,2}', []), {
    message: 'Cannot parse JSON: expected "," or "]" after a value, got character "}" at line 1 ' +
      "column 10",
  });
  assert.throws(() => rawValueAt('{"a":"x', []), {
    message: "Cannot parse JSON: unterminated string at line 1 column 6",
  });
  assert.throws(() => rawValueAt('{"a":01}', []), /invalid number at line 1 column 6/);
  assert.throws(() => rawValueAt('{"a":"\\x"}', []), /invalid escape in string/);
  assert.throws(() => rawValueAt('{"a":"\t"}', []), /control character in string/);
  assert.throws(() => rawValueAt("{} x", []), /unexpected character "x" at line 1 column 4/);
  assert.throws(() => rawValueAt("", []), /unexpected end of input at line 1 column 1/);
  assert.throws(() => rawValueAt("{/* open", []), /unterminated comment/);
  assert.throws(() => rawValueAt("[,]", []), /unexpected character ","/);
  assert.throws(() => rawValueAt("{,}", []), /expected a string key/);
  assert.throws(() => rawValueAt("[1,,2]", []), JsonSyntaxError);
  assert.throws(() => rawValueAt("-", []), /invalid number at line 1 column 1/);
  assert.throws(() => rawValueAt("1.", []), /invalid number at line 1 column 1/);
});

Deno.test("rawValueAt() refuses nesting deeper than 1000 levels before the stack runs out", () => {
  const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  assert.equal(rawValueAt(nested(1000), []), nested(1000));
  assert.throws(() => rawValueAt(nested(1001), []), {
    name: "SyntaxError",
    message: "Cannot parse JSON: nesting too deep at line 1 column 1001",
  });
  assert.throws(
    () => stripJsonc(`{"a":${nested(100_000)}}`),
    /nesting too deep at line 1 column 1005/,
  );
});

Deno.test("stripJsonc() blanks comments and trailing commas, keeping positions", () => {
  const text = '{\n  // c\n  "a": [1, 2,], /* x\n y */ "b": "//not a comment",\n}';
  const stripped = stripJsonc(text);
  assert.equal(stripped.length, text.length);
  assert.deepEqual(JSON.parse(stripped), { a: [1, 2], b: "//not a comment" });
  assert.equal(stripped.split("\n").length, text.split("\n").length);
  assert.equal(stripJsonc('{"a":1}'), '{"a":1}');
});

Deno.test("parseJsonc() parses JSON and JSONC", () => {
  assert.deepEqual(parseJsonc('{"a":1}'), { a: 1 });
  assert.deepEqual(parseJsonc('{"a":1, // c\n}'), { a: 1 });
  assert.throws(() => parseJsonc('{"a":}'), JsonSyntaxError);
});

Deno.test("setTopLevelKeys() appends new keys keeping bytes (big ints, key order)", () => {
  const text = '{"type":"macvlan","z":1,"big":12345678901234567890,"a":{"n":1.0}}';
  assert.equal(
    setTopLevelKeys(text, { name: "net1", cniVersion: "1.0.0" }),
    '{"type":"macvlan","z":1,"big":12345678901234567890,"a":{"n":1.0},' +
      '"name":"net1","cniVersion":"1.0.0"}',
  );
});

Deno.test("setTopLevelKeys() replaces in place and removes later duplicates", () => {
  const text = '{ "name" : "old", "x": 1, "name": "dup", "y": [1] }';
  assert.equal(setTopLevelKeys(text, { name: "new" }), '{ "name" : "new", "x": 1, "y": [1] }');
  // The duplicate is the last member.
  assert.equal(setTopLevelKeys('{"a":1,"b":2,"a":3}', { a: 9 }), '{"a":9,"b":2}');
  assert.equal(setTopLevelKeys('{"a":1,"a":3}', { a: 9 }), '{"a":9}');
});

Deno.test("setTopLevelKeys() removes keys given undefined", () => {
  assert.equal(setTopLevelKeys('{"a":1,"b":2,"c":3}', { b: undefined }), '{"a":1,"c":3}');
  assert.equal(setTopLevelKeys('{"a":1,"b":2,"c":3}', { a: undefined }), '{"b":2,"c":3}');
  assert.equal(setTopLevelKeys('{"a":1,"b":2,"c":3}', { c: undefined }), '{"a":1,"b":2}');
  assert.equal(setTopLevelKeys('{"a":1}', { a: undefined }), "{}");
  assert.equal(setTopLevelKeys('{"a":1,}', { a: undefined }), "{}");
  assert.equal(setTopLevelKeys('{"a":1}', { missing: undefined }), '{"a":1}');
  assert.equal(
    setTopLevelKeys('{"a":1,"b":2}', { a: undefined, b: undefined, c: true }),
    '{"c":true}',
  );
});

Deno.test("setTopLevelKeys() handles empty objects, whitespace and trailing commas", () => {
  assert.equal(setTopLevelKeys("{}", { a: 1 }), '{"a":1}');
  assert.equal(setTopLevelKeys(" { \n } \n", { a: 1, b: "x" }), ' {"a":1,"b":"x" \n } \n');
  assert.equal(setTopLevelKeys('{"a":1,}', { b: 2 }), '{"a":1,"b":2,}');
  assert.equal(
    setTopLevelKeys('{\n  "a": 1 // one\n}\n', { b: 2 }),
    '{\n  "a": 1,"b":2 // one\n}\n',
  );
  assert.equal(setTopLevelKeys('{"a":1}', {}), '{"a":1}');
});

Deno.test("setTopLevelKeys() inserts RawJson texts as they are", () => {
  const prev = new RawJson('{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}');
  assert.equal(
    setTopLevelKeys('{"type":"tuning","prevResult":{"old":true}}', { prevResult: prev }),
    '{"type":"tuning","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}}',
  );
  assert.equal(
    setTopLevelKeys('{"type":"x"}', { runtimeConfig: { ips: ["10.0.0.5/24"] }, n: null }),
    '{"type":"x","runtimeConfig":{"ips":["10.0.0.5/24"]},"n":null}',
  );
});

Deno.test("setTopLevelKeys() keeps escaped strings and unicode", () => {
  const text = '{"s":"\\"}","k\\"ey":"é😀","name":"a"}';
  const out = setTopLevelKeys(text, { name: "b", 'k"ey': "z" });
  assert.equal(out, '{"s":"\\"}","k\\"ey":"z","name":"b"}');
  assert.deepEqual(JSON.parse(out), { s: '"}', 'k"ey': "z", name: "b" });
});

Deno.test("setTopLevelKeys() only touches the top level", () => {
  const text = '{"ipam":{"name":"inner"},"plugins":[{"name":"p"}]}';
  assert.equal(
    setTopLevelKeys(text, { name: "top" }),
    '{"ipam":{"name":"inner"},"plugins":[{"name":"p"}],"name":"top"}',
  );
});

Deno.test("setTopLevelKeys() keeps comments of JSONC input", () => {
  const text = '{/* c */"a":/* v */1}';
  assert.equal(setTopLevelKeys(text, { a: 2 }), '{/* c */"a":/* v */2}');
});

Deno.test("setTopLevelKeys() rejects non-objects and malformed text", () => {
  assert.throws(() => setTopLevelKeys("[1]", { a: 1 }), {
    name: "SyntaxError",
    message: "Cannot parse JSON: expected an object at line 1 column 1",
  });
  assert.throws(() => setTopLevelKeys('{"a":', { a: 1 }), SyntaxError);
  assert.throws(() => setTopLevelKeys("{}", { f: () => 1 }), TypeError);
});

Deno.test("setTopLevelKeys() output parses to the expected object", () => {
  const text = '{"cniVersion":"0.3.1","type":"bridge","ipam":{"type":"host-local"},"x":[]}';
  const out = setTopLevelKeys(text, {
    name: "mynet",
    cniVersion: "1.0.0",
    args: { cni: { ips: ["1.2.3.4"] } },
  });
  assert.deepEqual(JSON.parse(out), {
    cniVersion: "1.0.0",
    type: "bridge",
    ipam: { type: "host-local" },
    x: [],
    name: "mynet",
    args: { cni: { ips: ["1.2.3.4"] } },
  });
});
