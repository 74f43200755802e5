/**
 * @module
 * Lays configuration keys over a request's Multus configuration, as Multus's daemon lays its
 * own configuration over every request from the shim (its keys win). The daemon overlays its
 * `daemon-config.json`; the shim, when it runs a request itself, overlays the thin
 * configuration the installer wrote. Values are moved as their original text, so delegates
 * still reach plugins byte for byte.
 */

import { RawJson, rawValueAt, setTopLevelKeys, stripJsonc } from "../../cni/raw_json.ts";

/**
 * Keys that belong to the request itself: the runtime sets them for this network and this
 * call, so an overlay never replaces them.
 */
const REQUEST_KEYS: ReadonlySet<string> = new Set([
  "cniversion",
  "name",
  "type",
  "runtimeconfig",
  "prevresult",
  "args",
]);

/** Top-level values of a configuration text to lay over requests, keyed as spelled. */
export type ConfOverlay = Record<string, RawJson>;

/**
 * The top-level values of `sourceText` that may overlay a request: every key but the
 * request's own (`cniVersion`, `name`, `type`, `runtimeConfig`, `prevResult`, `args`) and
 * those `skip` names (lower case). A key spelled twice in any case keeps its last value, as
 * Go's encoding/json does. Throws SyntaxError when the text is not a JSON(C) object.
 */
export function overlayFrom(
  sourceText: string,
  skip: ReadonlySet<string> = new Set(),
): ConfOverlay {
  const text = stripJsonc(sourceText);
  const parsed = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SyntaxError("Cannot use the configuration: its top level is not an object");
  }
  const byLowerCase = new Map<string, string>();
  for (const key of Object.keys(parsed)) byLowerCase.set(key.toLowerCase(), key);
  const out: ConfOverlay = {};
  for (const [lower, key] of byLowerCase) {
    if (REQUEST_KEYS.has(lower) || skip.has(lower)) continue;
    const raw = rawValueAt(text, [key]);
    if (raw !== undefined) out[key] = new RawJson(raw);
  }
  return out;
}

/**
 * Returns `requestText` with every key of `overlay` set to the overlay's value; spellings of
 * the same key in another case are removed, so the overlay wins however either side spells
 * it. A request that is not a JSON object is returned unchanged, for the plugin to report.
 */
export function applyOverlay(requestText: string, overlay: ConfOverlay): string {
  const keys = Object.keys(overlay);
  if (keys.length === 0) return requestText;
  let requestKeys: string[];
  try {
    const parsed = JSON.parse(stripJsonc(requestText));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return requestText;
    requestKeys = Object.keys(parsed);
  } catch {
    return requestText;
  }
  const values: Record<string, RawJson | undefined> = {};
  for (const key of keys) {
    for (const existing of requestKeys) {
      if (existing !== key && existing.toLowerCase() === key.toLowerCase()) {
        values[existing] = undefined;
      }
    }
    values[key] = overlay[key];
  }
  return setTopLevelKeys(requestText, values);
}
