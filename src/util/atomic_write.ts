/**
 * @module
 * Crash-safe file writes: a reader sees the old content or the new one, never a mix.
 */

import { basename, dirname, join } from "node:path";

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
  const tmp = join(dir, `.${basename(path)}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
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

/** fsyncs a directory so a rename in it survives a crash; errors are ignored. */
async function syncDirectory(dir: string): Promise<void> {
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
