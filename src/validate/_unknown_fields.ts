/**
 * @module
 * Keys nothing reads: in the elements of a pod's network selection annotation (the plugin
 * ignores them, so a misspelt `"interfce"` silently gives the pod `net1`) and in a
 * NetworkAttachmentDefinition (the API server drops fields its CRD does not define, so a
 * misspelt `confg` leaves the NAD without a config). Each is a warning with the closest known
 * key.
 */

import type { Report, Where } from "./_findings.ts";
import { within } from "./_findings.ts";
import { isObject } from "./_inputs.ts";
import { closestKey } from "./_suggest.ts";
import { SELECTION_ELEMENT_KEYS } from "../multus/plan/selection.ts";

/**
 * Keys of a selection element the plugin reads (matched case-insensitively, as Multus's Go
 * decoder does): the plugin parser's own list.
 */
export const SELECTION_KEYS: readonly string[] = SELECTION_ELEMENT_KEYS;

/** Fields of a NetworkAttachmentDefinition its CRD defines, at the top and in `spec`. */
const NAD_FIELDS: readonly string[] = ["apiVersion", "kind", "metadata", "spec"];
const NAD_SPEC_FIELDS: readonly string[] = ["config"];

/**
 * Warns about the unknown keys of every element of a selection annotation in its JSON form
 * (`where` is the annotation). Values that are not a JSON list of objects are left to the
 * plugin's parser, which reports them.
 */
export function checkSelectionKeys(report: Report, value: string, where: Where): void {
  if (!/[[{"]/.test(value)) return; // the short form has no keys
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return;
  }
  if (!Array.isArray(parsed)) return;
  const known = new Set(SELECTION_KEYS.map((k) => k.toLowerCase()));
  parsed.forEach((element, i) => {
    if (!isObject(element)) return;
    for (const key of Object.keys(element)) {
      if (known.has(key.toLowerCase())) continue;
      const suggestion = closestKey(key, SELECTION_KEYS);
      const at = within(where, `[${i}].${key}`);
      const message = `unknown key "${key}" in the network selection is ignored by the plugin`;
      if (suggestion) {
        report.warning(at, `${message}; did you mean "${suggestion}"?`, {
          hint: `Rename it to "${suggestion}"`,
        });
      } else {
        report.warning(at, message, {
          hint: `Remove it; a selection element has ${SELECTION_KEYS.join(", ")}`,
        });
      }
    }
  });
}

/** Warns about fields of a NetworkAttachmentDefinition that its CRD does not define. */
export function checkNadFields(
  report: Report,
  object: Record<string, unknown>,
  where: Where,
): void {
  const check = (obj: Record<string, unknown>, known: readonly string[], path: string) => {
    for (const key of Object.keys(obj)) {
      if (known.includes(key)) continue;
      const suggestion = closestKey(key, known);
      const at = within(where, path === "" ? key : `${path}.${key}`);
      const message = `unknown field "${key}"${
        path === "" ? "" : ` in ${path}`
      }: the API server drops it (the CRD defines ${known.map((k) => `"${k}"`).join(", ")})`;
      report.warning(at, suggestion ? `${message}; did you mean "${suggestion}"?` : message, {
        hint: suggestion
          ? `Rename it to "${suggestion}" (field names are case-sensitive)`
          : "Remove it",
      });
    }
  };
  check(object, NAD_FIELDS, "");
  if (isObject(object.spec)) check(object.spec, NAD_SPEC_FIELDS, "spec");
}
