/**
 * @module
 * Crash-safe file writes: a reader sees the old content or the new one, never a mix.
 */

import { basename, dirname, join } from "./path.ts";

/** Options of {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the written file (default 0o600). */
  mode?: number;
  /** Mode of directories created on the way (default 0o700). */
  dirMode?: number;
}

/**
 * Writes `data` to `path` by write-to-temp in the same directory, fsync, rename, and fsync of
 * the directory. The temp file is removed when anything fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
  const tmp = tempPathFor(path);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const file = await Deno.open(tmp, {
      write: true,
      createNew: true,
      mode: options.mode ?? 0o600,
    });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.chmod(tmp, options.mode ?? 0o600);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncDirectory(dir);
}

/**
 * A fresh temp file name next to `path` (`.<name>.tmp-<pid>-<id>`): the name
 * {@linkcode removeStaleTempFiles} recognises once its writer is gone.
 */
export function tempPathFor(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
  );
}

/**
 * Removes the temp files that writers of `path` killed inside {@linkcode writeFileAtomic} left
 * next to it (`.<name>.tmp-<pid>-<id>` whose process is gone). A writer counts as gone only
 * when `/proc/<pid>` does not exist: when it cannot be checked, the file stays. Best effort:
 * errors are ignored.
 */
export async function removeStaleTempFiles(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.tmp-`;
  let procShowsProcesses: boolean | undefined;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
      const pid = /^(\d+)-[0-9a-f]{8}$/.exec(entry.name.slice(prefix.length))?.[1];
      if (pid === undefined || !(await processIsGone(Number(pid)))) continue;
      // Without a /proc that shows processes (ours included), "not found" means nothing.
      procShowsProcesses ??= !(await processIsGone(Deno.pid));
      if (!procShowsProcesses) return;
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  } catch {
    // the directory is gone or unreadable: nothing to clean
  }
}

/** True only when the kernel says there is no process `pid` (not when it cannot tell). */
async function processIsGone(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return false;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
  }
}

/** fsyncs a directory so a rename in it survives a crash; errors are ignored. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  }
}
