/**
 * @module
 * Reading a value of parsed JSON by its path (as zod issues give it), for error messages that
 * show what was found at a field.
 */

/** The value at `path` in `input`, or undefined when the path does not lead anywhere. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}
