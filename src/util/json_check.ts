/**
 * @module
 * Checks the types of parsed JSON against a small declarative shape and lists every field of
 * the wrong type, in the terms zod uses (`invalid_type` with what was `expected`,
 * `invalid_union`), for the checks a plugin run makes on its configuration and on API
 * answers. Bundled, zod's start-up and schema building cost a plugin run about as much as the
 * checks' whole remaining work; this is a few dozen lines.
 */

/** What a value must be. */
export type JsonType =
  | { kind: "string" | "boolean" | "number" | "unknown" } & Presence
  | { kind: "record"; values: JsonType } & Presence
  | { kind: "array"; items: JsonType } & Presence
  | { kind: "object"; fields: Record<string, JsonType> } & Presence
  | { kind: "union"; options: JsonType[] } & Presence;

/** Whether `undefined` (absent) and `null` are accepted as well. */
export interface Presence {
  optional?: boolean;
  nullable?: boolean;
}

/** One field of the wrong type. */
export interface JsonIssue {
  /** `invalid_type`, or `invalid_union` when no option of a union fits. */
  code: "invalid_type" | "invalid_union";
  /** What the field must be (`string`, `record`, `array`, `object`, …; "" for a union). */
  expected: string;
  /** Where: keys and list indexes from the top. */
  path: (string | number)[];
}

/** Every field of `value` that does not fit `type`, in the order of the shape's keys. */
export function checkJson(value: unknown, type: JsonType): JsonIssue[] {
  const issues: JsonIssue[] = [];
  check(value, type, [], issues);
  return issues;
}

function check(value: unknown, type: JsonType, path: (string | number)[], out: JsonIssue[]) {
  if (value === undefined && type.optional) return;
  if (value === null && type.nullable) return;
  const wrong = () => out.push({ code: "invalid_type", expected: type.kind, path });
  switch (type.kind) {
    case "unknown":
      return;
    case "string":
      if (typeof value !== "string") wrong();
      return;
    case "boolean":
      if (typeof value !== "boolean") wrong();
      return;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) wrong();
      return;
    case "record":
    case "object": {
      if (!isPlainObject(value)) return void wrong();
      if (type.kind === "record") {
        for (const [key, item] of Object.entries(value)) {
          check(item, type.values, [...path, key], out);
        }
      } else {
        for (const [key, field] of Object.entries(type.fields)) {
          check(value[key], field, [...path, key], out);
        }
      }
      return;
    }
    case "array":
      if (!Array.isArray(value)) return void wrong();
      value.forEach((item, i) => check(item, type.items, [...path, i], out));
      return;
    case "union":
      if (!type.options.some((option) => checkJson(value, option).length === 0)) {
        out.push({ code: "invalid_union", expected: "", path });
      }
      return;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
