/**
 * @module
 * Installer step: undo this run (`--cleanup-config-on-exit`): remove the files it wrote if
 * nobody changed them since, rename the primary config back, remove the directories it made.
 */

import { describeFsError, exists, type InstallRun, readText } from "./_run.ts";

/** Removes exactly what this run wrote (if unchanged since) and the directories it made. */
export async function cleanup(run: InstallRun): Promise<void> {
  for (const [path, content] of run.owned) {
    const current = await readText(path);
    if (current === undefined) continue;
    if (current !== content) {
      run.say(`Left ${path} in place: it changed after this installer wrote it`);
      continue;
    }
    try {
      await Deno.remove(path);
      run.say(`Removed ${path}`);
    } catch (err) {
      run.say(`Cannot remove ${path}: ${describeFsError(err)}`);
    }
  }
  run.owned.clear();
  for (const [original, renamed] of run.renamed) {
    if (!(await exists(renamed)) || (await exists(original))) continue;
    try {
      await Deno.rename(renamed, original);
      run.say(`Renamed ${renamed} back to ${original}`);
    } catch (err) {
      run.say(`Cannot rename ${renamed} back to ${original}: ${describeFsError(err)}`);
    }
  }
  for (const dir of [...run.createdDirs].reverse()) {
    try {
      await Deno.remove(dir); // only when empty
    } catch {
      // not empty (someone put files there) or already gone: leave it
    }
  }
}

/** {@linkcode cleanup} when `--cleanup-config-on-exit` asks for it. */
export async function cleanupIfAsked(run: InstallRun): Promise<void> {
  if (run.flags.cleanupConfigOnExit) await cleanup(run);
}
