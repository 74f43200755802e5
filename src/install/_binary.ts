/**
 * @module
 * Installs the plugin into the CNI bin directory without ever writing into a file the runtime
 * may be executing ("text file busy", Multus #1221) and without a window in which a
 * half-written file is visible: write a temp file in the same directory, fsync, chmod 0755,
 * rename over the target, fsync the directory. An identical file is left alone.
 */

import { basename, dirname, join } from "../util/path.ts";
import { syncDirectory } from "../util/atomic_write.ts";
import { errorMessage } from "../util/errors.ts";

/** Mode of the installed plugin. */
export const PLUGIN_MODE = 0o755;

/** What {@linkcode installFile} did. */
export interface InstallResult {
  /** The installed path. */
  path: string;
  /** False when the target already had the same content and mode. */
  changed: boolean;
}

/**
 * Atomically installs a copy of `source` at `target` (mode 0755), streaming it so large
 * binaries are not held in memory.
 *
 * @throws {Error} Naming the path and the reason when the source cannot be read or the target
 * directory cannot be written.
 */
export async function installFile(source: string, target: string): Promise<InstallResult> {
  let sourceInfo: Deno.FileInfo;
  try {
    sourceInfo = await Deno.stat(source);
  } catch (err) {
    throw new Error(`Cannot read the multus binary ${source}: ${errorMessage(err)}`);
  }
  if (!sourceInfo.isFile) throw new Error(`The multus binary ${source} is not a regular file`);
  if (await sameContent(source, target, sourceInfo.size)) return { path: target, changed: false };
  await removeStaleTemps(target);
  const tmp = tempName(target);
  try {
    const input = await Deno.open(source, { read: true });
    try {
      const output = await Deno.open(tmp, { write: true, createNew: true, mode: PLUGIN_MODE });
      try {
        const buf = new Uint8Array(1 << 20);
        for (;;) {
          const n = await input.read(buf);
          if (n === null) break;
          let off = 0;
          while (off < n) off += await output.write(buf.subarray(off, n));
        }
        await output.sync();
      } finally {
        output.close();
      }
    } finally {
      input.close();
    }
    await Deno.chmod(tmp, PLUGIN_MODE);
    await Deno.rename(tmp, target);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot install ${target}: ${errorMessage(err)}`);
  }
  await syncDirectory(dirname(target));
  return { path: target, changed: true };
}

/**
 * Atomically writes `text` to `target` with mode `mode`, unless the file already has exactly
 * that content and mode.
 *
 * @throws {Error} Naming the path and the reason.
 */
export async function installText(
  target: string,
  text: string,
  mode: number,
): Promise<InstallResult> {
  const bytes = new TextEncoder().encode(text);
  try {
    const info = await Deno.stat(target);
    if (info.isFile && info.size === bytes.length && ((info.mode ?? 0) & 0o7777) === mode) {
      const current = await Deno.readFile(target);
      if (equalBytes(current, bytes)) return { path: target, changed: false };
    }
  } catch {
    // missing or unreadable: write it
  }
  await removeStaleTemps(target);
  const tmp = tempName(target);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, target);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot write ${target}: ${errorMessage(err)}`);
  }
  await syncDirectory(dirname(target));
  return { path: target, changed: true };
}

/**
 * The permissions the compiled binary gets (`deno compile` bakes them in; the same list as
 * `scripts/permission_flags`). All of them: the plugin runs delegates from any directory with
 * an unrestricted `--allow-run`, which already grants everything, and its safety checks read
 * `/proc/self` and `/proc/<pid>`, which Deno opens only with `--allow-all`.
 */
export const PERMISSION_FLAGS = ["--no-prompt", "--allow-all"] as const;

/** Inputs of {@linkcode launcherScript}. */
export interface LauncherOptions {
  /** The Deno executable. */
  deno: string;
  /** The entry module (`src/main.ts`). */
  mainModule: string;
  /** `deno.json` with the import map, when there is one. */
  config?: string;
  /** Permission flags (default {@linkcode PERMISSION_FLAGS}). */
  permissionFlags?: readonly string[];
}

/**
 * The launcher installed when `multus install` runs from source (development): a shell script
 * that runs the same Deno with the same permissions on the same entry module, as
 * `scripts/dev-multus` does.
 */
export function launcherScript(options: LauncherOptions): string {
  const args = [
    "run",
    "--quiet",
    "--cached-only",
    ...(options.config ? ["--config", options.config] : []),
    ...(options.permissionFlags ?? PERMISSION_FLAGS),
    options.mainModule,
  ];
  return [
    "#!/bin/sh",
    "# multus launcher written by `multus install` running from source (development only):",
    "# it runs the TypeScript sources with Deno. A release install copies the compiled binary.",
    "export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1",
    `exec ${[options.deno, ...args].map(shellQuote).join(" ")} "$@"`,
    "",
  ].join("\n");
}

function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_\/.,:=+-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function tempName(target: string): string {
  const rand = crypto.randomUUID().slice(0, 8);
  return join(dirname(target), `.${basename(target)}.tmp-${Deno.pid}-${rand}`);
}

/** Removes temp files of ours left by a crashed run (older than ten minutes; nothing else). */
async function removeStaleTemps(target: string): Promise<void> {
  const prefix = `.${basename(target)}.tmp-`;
  const dir = dirname(target);
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
      const path = join(dir, entry.name);
      const mtime = (await Deno.stat(path)).mtime?.getTime() ?? Date.now();
      if (Date.now() - mtime > 600_000) await Deno.remove(path).catch(() => {});
    }
  } catch {
    // best effort
  }
}

async function sameContent(a: string, b: string, size: number): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(b);
  } catch {
    return false;
  }
  if (!info.isFile || info.size !== size || ((info.mode ?? 0) & 0o7777) !== PLUGIN_MODE) {
    return false;
  }
  const fa = await Deno.open(a, { read: true });
  try {
    const fb = await Deno.open(b, { read: true });
    try {
      const ba = new Uint8Array(1 << 20);
      const bb = new Uint8Array(1 << 20);
      for (;;) {
        const na = await readFull(fa, ba);
        const nb = await readFull(fb, bb);
        if (na !== nb) return false;
        if (na === 0) return true;
        if (!equalBytes(ba.subarray(0, na), bb.subarray(0, nb))) return false;
      }
    } finally {
      fb.close();
    }
  } finally {
    fa.close();
  }
}

async function readFull(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
