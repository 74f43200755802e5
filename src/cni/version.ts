/**
 * @module
 * CNI specification versions: the ones we support and how they compare.
 */

/** Every CNI version this plugin speaks, oldest first. */
export const SUPPORTED_VERSIONS = [
  "0.1.0",
  "0.2.0",
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "1.0.0",
  "1.1.0",
] as const;

/** The newest supported version. */
export const CURRENT_VERSION = "1.1.0";

/**
 * Parses a version as libcni does: `""` is 0.1.0, up to three numeric parts ("1.0" = 1.0.0).
 * Returns undefined for anything else.
 */
export function parseVersion(version: string): [number, number, number] | undefined {
  if (version === "") return [0, 1, 0];
  const parts = version.split(".");
  if (parts.length > 3) return undefined;
  const nums = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (nums.some((n) => Number.isNaN(n))) return undefined;
  while (nums.length < 3) nums.push(0);
  return nums as [number, number, number];
}

/** Compares two versions; unparseable versions sort first. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a) ?? [-1, 0, 0];
  const pb = parseVersion(b) ?? [-1, 0, 0];
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) return pa[i] - pb[i];
  }
  return 0;
}

/** True when `version` is at least `min` (e.g. 0.4.0 for CHECK and DEL `prevResult`). */
export function versionAtLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0;
}

/** True when `version` is exactly one of {@linkcode SUPPORTED_VERSIONS}. */
export function isSupportedVersion(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}
