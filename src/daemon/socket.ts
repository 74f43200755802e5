/**
 * @module
 * The daemon's socket file: its directory made root-only (0700), a stale socket left by a
 * daemon that died replaced, a live one (another daemon answering on it) refused, and the
 * socket removed at exit only if it is still the one this daemon created.
 */

import { dirname } from "../util/path.ts";
import { cancellableDeadline, UnixHttpError, unixHttpRequest } from "../util/unix_http.ts";

/** The socket cannot be used; the message says why and what to do. */
export class SocketError extends Error {
  override name = "SocketError";
}

/** How long a socket found at start may take to answer `/healthz` before it counts as live. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Makes `<dir>` exist, owned by root and mode 0700, and clears `socketPath` of a stale
 * socket. Throws SocketError when another daemon answers there or the path is not a socket.
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  await prepareSocketDir(dirname(socketPath));
  await clearStaleSocket(socketPath);
}

/**
 * Makes `dir` exist, owned by root and mode 0700. Throws SocketError when it is not a
 * directory or belongs to another user.
 */
export async function prepareSocketDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.stat(dir);
  if (!info.isDirectory) throw new SocketError(`${dir} is not a directory`);
  if (info.uid !== null && info.uid !== 0) {
    throw new SocketError(
      `The socket directory ${dir} belongs to uid ${info.uid}, not root: another user could ` +
        "replace the socket; use a root-owned directory",
    );
  }
  if (info.mode !== null && (info.mode & 0o777) !== 0o700) await Deno.chmod(dir, 0o700);
}

async function clearStaleSocket(socketPath: string): Promise<void> {
  let existing: Deno.FileInfo;
  try {
    existing = await Deno.lstat(socketPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (!existing.isSocket) {
    throw new SocketError(
      `${socketPath} exists and is not a socket; remove it if nothing else uses it`,
    );
  }
  if (await answers(socketPath)) {
    throw new SocketError(
      `Another multus daemon answers on ${socketPath}; stop it first (two daemons must not ` +
        "serve one node)",
    );
  }
  // Left by a daemon that is gone.
  await Deno.remove(socketPath);
}

/** True when something accepts connections on the socket (a daemon, even a stuck one). */
async function answers(socketPath: string): Promise<boolean> {
  try {
    await unixHttpRequest({
      socketPath,
      method: "GET",
      path: "/healthz",
      acceptTimeoutMs: PROBE_TIMEOUT_MS,
      responseTimeoutMs: PROBE_TIMEOUT_MS,
      deadline: cancellableDeadline,
    });
    return true;
  } catch (err) {
    if (!(err instanceof UnixHttpError)) throw err;
    // Refused or gone: stale. Accepted but silent: something holds it.
    return err.stage !== "connect" || err.reason === "timeout";
  }
}

/** Identity of a file, to tell our socket from one that replaced it. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the socket just created. */
export async function socketIdentity(socketPath: string): Promise<FileIdentity | undefined> {
  try {
    const info = await Deno.lstat(socketPath);
    return info.ino !== null ? { dev: info.dev, ino: info.ino } : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the socket if it is still `ours`. */
export function removeSocketIfOurs(socketPath: string, ours: FileIdentity | undefined): void {
  if (!ours) return;
  try {
    const info = Deno.lstatSync(socketPath);
    if (info.dev === ours.dev && info.ino === ours.ino) Deno.removeSync(socketPath);
  } catch {
    // already gone
  }
}
