/**
 * @module
 * Installer step: find the primary CNI config in `--multus-autoconfig-dir`, rename it when
 * `--rename-conf-file` asks, and say which one is used when that changes.
 */

import { findPrimaryConfig, type PrimarySearch, RENAMED_SUFFIX } from "./_primary.ts";
import type { InstallRun } from "./_run.ts";

/**
 * The primary config to delegate to. A found one has its final path (after renaming) and
 * becomes `run.primaryPath`; a missing or invalid one is returned as found, with no effect.
 */
export async function usePrimaryConfig(run: InstallRun): Promise<PrimarySearch> {
  const flags = run.flags;
  const search = await findPrimaryConfig(run.autoconfDir, {
    fileName: flags.multusMasterCniFileName || undefined,
    includeRenamed: flags.renameConfFile,
  });
  if (search.kind !== "found") return search;

  let path = search.path;
  if (flags.renameConfFile && !path.endsWith(RENAMED_SUFFIX)) {
    const renamed = path + RENAMED_SUFFIX;
    await Deno.rename(path, renamed);
    run.renamed.set(path, renamed);
    run.say(`Renamed ${path} to ${renamed} (--rename-conf-file): only Multus uses it now`);
    path = renamed;
  }
  if (path !== run.primaryPath) {
    const skipped = search.skipped.length
      ? ` (passed over the Multus configs ${search.skipped.join(", ")})`
      : "";
    run.say(`Primary CNI config: ${path}${skipped}`);
    run.primaryPath = path;
  }
  return { ...search, path };
}
