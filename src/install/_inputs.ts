/**
 * @module
 * Installer step: check the directories and files named on the command line, and create the
 * directories the installer writes into (remembering which, for cleanup).
 */

import { dirname } from "../util/path.ts";
import { describeFsError, exists, InstallError, type InstallRun } from "./_run.ts";

const DIR_MODE = 0o755;

/** Fails with an {@linkcode InstallError} when a directory or file the flags name is unusable. */
export async function checkInputs(run: InstallRun): Promise<void> {
  const flags = run.flags;
  await requireDir(run.confDir, "--cni-conf-dir");
  if (!flags.skipMultusBinaryCopy) await requireDir(run.binDir, "--cni-bin-dir");
  if (flags.multusConfFile === "auto") {
    await requireDir(run.autoconfDir, "--multus-autoconfig-dir");
  } else {
    try {
      await Deno.stat(flags.multusConfFile);
    } catch (err) {
      throw new InstallError(
        `--multus-conf-file ${flags.multusConfFile} cannot be read: ${describeFsError(err)}`,
      );
    }
  }
}

/** Creates `dir` and its missing parents, recording the ones created for cleanup. */
export async function ensureDir(run: InstallRun, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; !(await exists(d)); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw new InstallError(`Cannot create directory ${dir}: ${describeFsError(err)}`);
  }
  run.createdDirs.push(...missing);
}

async function requireDir(path: string, flag: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new InstallError(`${flag} ${path} cannot be used: ${describeFsError(err)}`);
  }
  if (!info.isDirectory) throw new InstallError(`${flag} ${path} is not a directory`);
}
