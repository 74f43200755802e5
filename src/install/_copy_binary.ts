/**
 * @module
 * Installer step: put the plugin into the CNI bin directory: the compiled binary (or
 * `--multus-bin-file`) copied, or, when running from source, a launcher script. In daemon
 * mode the same binary goes in a second time as `multus-shim`: the runtime picks a plugin by
 * the config's `type`, and the binary runs as the shim when that type is `multus-shim`.
 */

import { fromFileUrl, join } from "../util/path.ts";
import { errorMessage } from "../util/errors.ts";
import { installFile, installText, launcherScript } from "./_binary.ts";
import { exists, InstallError, type InstallRun, readText } from "./_run.ts";

/** File names the binary is installed under, by mode. */
export function pluginNames(mode: InstallRun["flags"]["mode"]): string[] {
  return mode === "daemon" ? ["multus", "multus-shim"] : ["multus"];
}

/**
 * Installs `multus` (and in daemon mode `multus-shim`) in `--cni-bin-dir`; fails with an
 * {@linkcode InstallError}.
 */
export async function copyPluginBinary(run: InstallRun): Promise<void> {
  for (const name of pluginNames(run.flags.mode)) {
    await copyPluginBinaryAs(run, join(run.binDir, name));
  }
}

async function copyPluginBinaryAs(run: InstallRun, target: string): Promise<void> {
  const source = run.flags.multusBinFile ??
    (Deno.build.standalone ? Deno.execPath() : undefined);
  if (source !== undefined) {
    if (await samePath(source, target)) {
      run.say(`${target} is the running executable: nothing to copy`);
      return;
    }
    try {
      const result = await installFile(source, target);
      run.say(
        result.changed ? `Installed ${target} (from ${source})` : `${target} is up to date`,
      );
    } catch (err) {
      throw new InstallError(errorMessage(err));
    }
    return;
  }
  await installLauncher(run, target);
}

/** Running from source: installs a launcher for the same Deno and entry module. */
async function installLauncher(run: InstallRun, target: string): Promise<void> {
  const mainUrl = new URL("../main.ts", import.meta.url);
  if (mainUrl.protocol !== "file:") {
    throw new InstallError(
      `Cannot install a launcher for ${mainUrl.href}: run from a local checkout or use the ` +
        "compiled binary",
    );
  }
  const mainModule = fromFileUrl(mainUrl);
  const configPath = fromFileUrl(new URL("../../deno.json", import.meta.url));
  const config = await exists(configPath) ? configPath : undefined;
  const flagsFile = fromFileUrl(new URL("../../scripts/permission_flags", import.meta.url));
  const permissionFlags = (await readText(flagsFile))?.trim().split(/\s+/).filter(Boolean);
  const text = launcherScript({ deno: Deno.execPath(), mainModule, config, permissionFlags });
  let result;
  try {
    result = await installText(target, text, 0o755);
  } catch (err) {
    throw new InstallError(errorMessage(err));
  }
  run.say(
    `Running from source, not as a compiled binary: ${
      result.changed ? "installed" : "kept"
    } ${target} as a launcher script that runs ${Deno.execPath()} on ${mainModule} ` +
      "(a release install copies the compiled binary instead)",
  );
  if (!(await exists(mainModule))) {
    run.say(`Warning: ${mainModule} does not exist yet; the launcher will fail until it does`);
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false;
  }
}
