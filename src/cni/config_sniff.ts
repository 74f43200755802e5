/**
 * @module
 * Cheap looks at a configuration text before it is loaded: its `cniVersion` (for an error
 * JSON) and whether it is a shim configuration. Imported at every plugin start, so it imports
 * nothing and does no work unless the text asks for it.
 */

/** Best-effort `cniVersion` of a configuration text, for the error JSON. */
export function sniffCniVersion(text: string): string | undefined {
  const match = /"cniVersion"\s*:\s*"([^"]*)"/i.exec(text);
  return match?.[1] || undefined;
}

/** The plugin type the runtime runs the shim as. */
export const SHIM_TYPE = "multus-shim";

/**
 * True when the configuration's top-level `type` is `multus-shim` (the key matched
 * case-insensitively, as Go's encoding/json does). Texts that do not mention the shim are
 * answered without parsing.
 */
export function isShimConfig(text: string): boolean {
  if (!text.includes(SHIM_TYPE)) return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return false;
  let type: unknown;
  for (const [key, value] of Object.entries(parsed)) {
    if (key.toLowerCase() === "type") type = value;
  }
  return type === SHIM_TYPE;
}
