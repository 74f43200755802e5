/**
 * @module
 * One element of a pod's network selection, in a canonical text: equal texts mean the pod
 * asks for the same network with the same requests. Hot-plug compares what the annotation
 * asks for now with what was attached through these texts, kept in the scratch cache.
 */

/**
 * The canonical text of a selection element (a `NetworkSelection`; keys sorted at every
 * level, undefined values left out).
 */
export function selectionKey(s: object): string {
  return JSON.stringify(sorted(s));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sorted(v);
  }
  return out;
}
