/**
 * @module
 * Gzips one log backup as lumberjack does (`<backup>` → `<backup>.gz`, the same mode, the
 * original removed), but crash-safe: the `.gz` is written under a temp name and renamed when
 * complete, so a `.gz` that exists is always whole. Loaded only when a rotation has a backup
 * to compress: nothing of it is on a plugin run's start-up path.
 *
 * The work is cut into small steps (one chunk read, compressed and written at a time, each
 * awaited), so a long-running process keeps serving between them.
 */

import { removeStaleTempFiles, syncDirectory, tempPathFor } from "../util/atomic_write.ts";
import { basename, dirname } from "../util/path.ts";

/** Bytes read and compressed per step. */
const CHUNK_BYTES = 64 * 1024;

const COMPRESSED = ".gz";

/**
 * Compresses the backup at `path` into `path.gz` and removes `path`. A backup already gone
 * (pruned, or compressed by another run) is nothing to do; when its `.gz` exists already (a
 * run stopped between the rename and the removal), only the original is removed. Throws when
 * it cannot compress: the original then stays, and the next rotation tries again.
 */
export async function compressBackup(path: string): Promise<void> {
  const target = `${path}${COMPRESSED}`;
  if (await exists(target)) {
    await removeIfThere(path);
    return;
  }
  await removeOwnTempFiles(target);
  await removeStaleTempFiles(target);

  let source: Deno.FsFile;
  try {
    source = await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  const tmp = tempPathFor(target);
  try {
    const mode = (await source.stat()).mode ?? 0o600;
    const sink = await Deno.open(tmp, { write: true, createNew: true, mode: mode & 0o777 });
    try {
      await gzipInto(source, sink);
      await sink.syncData();
    } finally {
      sink.close();
    }
    await Deno.rename(tmp, target);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  } finally {
    source.close();
  }
  await syncDirectory(dirname(path));
  await removeIfThere(path);
}

/** Streams `source` through gzip into `sink`, one chunk at a time. */
async function gzipInto(source: Deno.FsFile, sink: Deno.FsFile): Promise<void> {
  const gzip = new CompressionStream("gzip");
  const writer = gzip.writable.getWriter();
  const written = drainTo(gzip.readable, sink);
  // A failed sink must not leave the writer waiting for room forever.
  written.catch((err) => writer.abort(err).catch(() => {}));
  const buffer = new Uint8Array(CHUNK_BYTES);
  for (;;) {
    const n = await source.read(buffer);
    if (n === null) break;
    await writer.write(buffer.slice(0, n));
  }
  await writer.close();
  await written;
}

async function drainTo(readable: ReadableStream<Uint8Array>, sink: Deno.FsFile): Promise<void> {
  for await (const chunk of readable) {
    let offset = 0;
    while (offset < chunk.length) offset += await sink.write(chunk.subarray(offset));
  }
}

/**
 * Removes temp files of `target` this process made: it compresses one backup at a time and
 * never the same one twice at once, so any such file is left from a compression that failed
 * without cleaning up. (A daemon restarted in a container often gets its old pid back, so
 * `removeStaleTempFiles` alone would keep those forever.)
 */
async function removeOwnTempFiles(target: string): Promise<void> {
  const prefix = `.${basename(target)}.tmp-${Deno.pid}-`;
  try {
    for await (const entry of Deno.readDir(dirname(target))) {
      if (entry.isFile && entry.name.startsWith(prefix)) {
        await Deno.remove(`${dirname(target)}/${entry.name}`).catch(() => {});
      }
    }
  } catch {
    // the directory is unreadable: the open below says so
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
