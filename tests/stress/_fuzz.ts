/**
 * @module
 * A small seeded mutator for the hostile-input suite: structure-aware mutations of JSON values
 * (replace, delete, add, re-case keys, retype) and text mutations of their serialisation
 * (truncation, flipped and inserted characters, comments, trailing commas, deep nesting).
 */

import type { Rng } from "./_helpers.ts";

/** Strings that have broken parsers, paths and shells before. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  " ",
  ".",
  "..",
  "/",
  "../../etc/x",
  "a/b",
  "a\\b",
  "x".repeat(300),
  "\u0000",
  "line\nbreak",
  "tab\there",
  "\u0085",
  "\u00a0",
  "é".repeat(9),
  "☃",
  "%s%n%x",
  "$(id)",
  "`id`",
  "'\"",
  "-1",
  "0.0.0.0/0",
  "10.9.0.300/24",
  "::1/129",
  "c2:00:00:00:00:zz",
  "1.1.0",
  "99.0.0",
  "0.1.0",
  "0.2.0",
  "0.3.1",
  "1.0.0",
  "debug",
  "verbose",
  "eth0",
  "net1",
  "default",
  "kube-system",
  "ns/name@if",
  "a,b",
  "true",
  "null",
  "{}",
  "[]",
];

/** Builds a value nested `depth` levels deep. */
export function deep(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

/** A random hostile JSON value. */
export function hostileValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(12)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 2, 4294967296, 65536]);
    case 3:
      return [];
    case 4:
      return {};
    case 5:
      return depth < 2 ? [hostileValue(rng, depth + 1), hostileValue(rng, depth + 1)] : [];
    case 6:
      return depth < 2 ? { [rng.pick(HOSTILE_STRINGS)]: hostileValue(rng, depth + 1) } : {};
    case 7:
      return deep(rng.pick([10, 100, 1500]));
    default:
      return rng.pick(HOSTILE_STRINGS);
  }
}

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) pair of a JSON value, the root excluded. */
function slots(value: unknown, out: [Container, string | number][] = [], depth = 0) {
  if (depth > 20) return out;
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([value, i]);
      slots(v, out, depth + 1);
    });
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.push([value as Record<string, unknown>, k]);
      slots(v, out, depth + 1);
    }
  }
  return out;
}

function containers(value: unknown): Container[] {
  const found: Container[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > 20 || v === null || typeof v !== "object") return;
    found.push(v as Container);
    for (const child of Object.values(v as object)) walk(child, depth + 1);
  };
  walk(value, 0);
  return found;
}

function recase(key: string, rng: Rng): string {
  return [...key].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join("");
}

/**
 * Applies 1-3 structural mutations to a copy of `value`. `keys` are key names worth adding
 * (known keys of the format being fuzzed).
 */
export function mutateValue(value: unknown, rng: Rng, keys: readonly string[] = []): unknown {
  const copy = structuredClone(value);
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const all = slots(copy);
    const op = rng.int(6);
    if (op === 0 && all.length > 0) {
      const [c, k] = rng.pick(all);
      (c as Record<string | number, unknown>)[k] = hostileValue(rng);
    } else if (op === 1 && all.length > 0) {
      const [c, k] = rng.pick(all);
      if (Array.isArray(c)) c.splice(k as number, 1);
      else delete c[k as string];
    } else if (op === 2) {
      const objects = containers(copy).filter((c) => !Array.isArray(c)) as Record<
        string,
        unknown
      >[];
      if (objects.length === 0) continue;
      const target = rng.pick(objects);
      const key = keys.length > 0 && rng.chance(0.7) ? rng.pick(keys) : rng.pick(HOSTILE_STRINGS);
      target[key] = hostileValue(rng);
    } else if (op === 3) {
      const objects = containers(copy).filter((c) => !Array.isArray(c)) as Record<
        string,
        unknown
      >[];
      if (objects.length === 0) continue;
      const target = rng.pick(objects);
      const names = Object.keys(target);
      if (names.length === 0) continue;
      const key = rng.pick(names);
      target[recase(key, rng)] = rng.chance(0.5) ? target[key] : hostileValue(rng);
    } else if (op === 4 && all.length > 0) {
      // Same value, other type: "1" for 1, [x] for x, {"v": x} for x.
      const [c, k] = rng.pick(all);
      const v = (c as Record<string | number, unknown>)[k];
      (c as Record<string | number, unknown>)[k] = rng.pick([
        typeof v === "string" ? Number(v) : String(v),
        [v],
        { v },
      ]);
    } else if (all.length > 0) {
      const arrays = containers(copy).filter(Array.isArray) as unknown[][];
      if (arrays.length === 0) continue;
      const target = rng.pick(arrays);
      if (target.length > 0) target.push(structuredClone(rng.pick(target)));
    }
  }
  return copy;
}

/** Applies one text mutation to a serialised document. */
export function mutateText(text: string, rng: Rng): string {
  const at = rng.int(text.length + 1);
  switch (rng.int(9)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) +
        rng.pick(["{", "}", "[", "]", ",", ":", '"', "\\", "\n", "\u0000", "\ufeff", "/*", "//"]) +
        text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1 + rng.int(8));
    case 3:
      return text.replace(/}\s*$/, ",}").replace(/]\s*}\s*$/, ",]}");
    case 4:
      return `// fuzz\n${text.replace(/,/, ", /* c */")}`;
    case 5:
      return "\ufeff" + text;
    case 6:
      return text.slice(0, at) + "[".repeat(2000) + text.slice(at);
    case 7:
      return text + text;
    default:
      return text.slice(0, at) + text.slice(at).replace(/[0-9]/, "9".repeat(40));
  }
}
