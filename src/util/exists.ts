/**
 * @module
 * Whether a path names something on disk.
 */

/** Options of {@linkcode exists}. */
export interface ExistsOptions {
  /**
   * Follow a link to its target (default true): a dangling link then does not exist. With
   * false, the link itself counts.
   */
  followLinks?: boolean;
}

/** True when something is at `path`; false when it cannot be found (or not looked at). */
export async function exists(path: string, options: ExistsOptions = {}): Promise<boolean> {
  try {
    await (options.followLinks === false ? Deno.lstat(path) : Deno.stat(path));
    return true;
  } catch {
    return false;
  }
}
