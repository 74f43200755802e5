import assert from "node:assert/strict";
import { checkJson, type JsonType } from "./json_check.ts";

const shape: JsonType = {
  kind: "object",
  fields: {
    name: { kind: "string" },
    port: { kind: "number", optional: true },
    on: { kind: "boolean", optional: true, nullable: true },
    labels: { kind: "record", values: { kind: "string" }, optional: true },
    list: { kind: "array", items: { kind: "string" }, optional: true },
    either: {
      kind: "union",
      options: [{ kind: "string" }, { kind: "array", items: { kind: "string" } }],
      optional: true,
    },
    extra: { kind: "unknown" },
  },
};

Deno.test("checkJson() accepts a value of the shape, absent optional and null nullable fields", () => {
  assert.deepEqual(checkJson({ name: "a", on: null, extra: [1], other: 5 }, shape), []);
  assert.deepEqual(
    checkJson({ name: "a", port: 1, labels: { a: "b" }, list: ["x"], either: ["y"] }, shape),
    [],
  );
});

Deno.test("checkJson() lists every field of the wrong type with what it must be, in shape order", () => {
  assert.deepEqual(
    checkJson({ name: 5, on: "yes", labels: { a: "b", c: 3 }, list: ["x", 2], either: 7 }, shape),
    [
      { code: "invalid_type", expected: "string", path: ["name"] },
      { code: "invalid_type", expected: "boolean", path: ["on"] },
      { code: "invalid_type", expected: "string", path: ["labels", "c"] },
      { code: "invalid_type", expected: "string", path: ["list", 1] },
      { code: "invalid_union", expected: "", path: ["either"] },
    ],
  );
});

Deno.test("checkJson() names records, lists and objects; null is not absent unless nullable", () => {
  assert.deepEqual(checkJson({ name: "a", labels: [], list: {}, port: null }, shape), [
    { code: "invalid_type", expected: "number", path: ["port"] },
    { code: "invalid_type", expected: "record", path: ["labels"] },
    { code: "invalid_type", expected: "array", path: ["list"] },
  ]);
  assert.deepEqual(checkJson([], shape), [{ code: "invalid_type", expected: "object", path: [] }]);
  assert.deepEqual(checkJson({}, shape), [
    { code: "invalid_type", expected: "string", path: ["name"] },
  ]);
});

Deno.test("checkJson() takes no infinite number (JSON's 1e999) as a number", () => {
  assert.deepEqual(checkJson({ name: "a", port: JSON.parse("1e999") }, shape), [
    { code: "invalid_type", expected: "number", path: ["port"] },
  ]);
});
