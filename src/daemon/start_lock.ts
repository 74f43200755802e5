/**
 * @module
 * One daemon per socket directory: `<socketDir>/multus.lock`, locked (flock, exclusive) for
 * the daemon's whole life. Two daemons started at once both find no live socket; only the one
 * holding the lock may go on to replace a stale socket and serve. The kernel drops the lock
 * when its holder dies, however it dies, so a killed daemon never blocks the next start.
 */

import { errorMessage } from "../util/errors.ts";
import { SocketError } from "./socket.ts";

/** The lock file's name in the socket directory. */
export const LOCK_NAME = "multus.lock";

/** The held lock; release it only when the daemon stops serving. */
export interface StartLock {
  /** The lock file. */
  path: string;
  /** Unlocks and closes the file (the file stays: removing it would let a third daemon in). */
  release(): void;
}

/**
 * Takes `<socketDir>/multus.lock` without waiting and writes this process's id into it.
 * Throws SocketError naming the lock and its holder when another daemon holds it.
 */
export async function takeStartLock(socketDir: string): Promise<StartLock> {
  const path = `${socketDir.replace(/\/+$/, "")}/${LOCK_NAME}`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  } catch (err) {
    throw new SocketError(`Cannot open the daemon's lock file ${path}: ${errorMessage(err)}`);
  }
  let locked: boolean;
  try {
    locked = await file.tryLock(true);
  } catch (err) {
    file.close();
    throw new SocketError(`Cannot lock ${path}: ${errorMessage(err)}`);
  }
  if (!locked) {
    const holder = await holderOf(file);
    file.close();
    throw new SocketError(
      `Another multus daemon${holder} holds ${path}: it serves this socket directory; stop ` +
        "it first (two daemons must not serve one node)",
    );
  }
  // The holder's pid, for the message another start prints; the lock is what counts.
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return {
    path,
    release() {
      try {
        file.unlockSync();
        file.close();
      } catch {
        // closed already
      }
    },
  };
}

async function holderOf(file: Deno.FsFile): Promise<string> {
  try {
    const buf = new Uint8Array(32);
    const n = await file.read(buf);
    const pid = new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
    return /^\d+$/.test(pid) ? ` (pid ${pid})` : "";
  } catch {
    return "";
  }
}
