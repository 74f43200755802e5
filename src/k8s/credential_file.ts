import { errorMessage } from "../util/errors.ts";
import { startTimer, type Timer } from "../util/timer.ts";
/**
 * @module
 * Reading a kubeconfig or a file it names (CA, client certificate and key, token) bounded in
 * size and time, as API answers are: a FIFO, a device or a hung mount must fail the run with
 * a message that names the file, not hold it until the runtime kills it.
 */

/** Largest credential file read: real ones are a few kB, CA bundles well under 1 MiB. */
export const MAX_CREDENTIAL_FILE_BYTES = 4 * 1024 * 1024;

/** Default longest time to read one credential file, in milliseconds (as one API request). */
export const DEFAULT_CREDENTIAL_READ_MS = 10_000;

const CHUNK_BYTES = 64 * 1024;

/** Why a credential file could not be read; `message` says it in words. */
export class CredentialFileError extends Error {
  override name = "CredentialFileError";
  /** The file does not exist. */
  readonly notFound: boolean;

  constructor(message: string, options: { notFound?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.notFound = options.notFound ?? false;
  }
}

/**
 * Reads a credential file as text. Only regular files are read (symbolic links are followed),
 * at most {@linkcode MAX_CREDENTIAL_FILE_BYTES}, within `timeoutMs`.
 *
 * @throws {CredentialFileError} It does not exist, is not a regular file, is too large, cannot
 * be read, or reading it did not finish in time.
 */
export async function readCredentialFile(
  path: string,
  timeoutMs: number = DEFAULT_CREDENTIAL_READ_MS,
): Promise<string> {
  let timer: Timer | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = startTimer(
      timeoutMs,
      () =>
        reject(
          new CredentialFileError(
            `reading it did not finish within ${
              seconds(timeoutMs)
            } (is it on a hung network mount, or held by another process?)`,
          ),
        ),
    );
  });
  // A stuck open or read cannot be cancelled: it is left behind (and closes the file if it
  // ever ends); the plugin exits after reporting the error.
  const read = readRegularFile(path);
  try {
    return await Promise.race([read, late]);
  } finally {
    timer?.cancel();
    read.catch(() => {});
  }
}

async function readRegularFile(path: string): Promise<string> {
  let file: Deno.FsFile | undefined;
  try {
    // stat first: opening a FIFO blocks until a writer comes, reading a device never ends.
    const info = await Deno.stat(path);
    if (!info.isFile) throw new CredentialFileError(`it is ${fileKind(info)}, not a regular file`);
    if (info.size > MAX_CREDENTIAL_FILE_BYTES) throw tooLarge(`it has ${info.size} bytes`);
    // A regular file with a size: read in one go. Size 0 may be a /proc or /sys file that
    // does not know its size: read in chunks, counting.
    if (info.size > 0) return await Deno.readTextFile(path);
    file = await Deno.open(path);
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const chunk = new Uint8Array(CHUNK_BYTES);
      const n = await file.read(chunk);
      if (n === null) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      // The file may have grown since stat, or be a /proc file that reports no size.
      if (total > MAX_CREDENTIAL_FILE_BYTES) throw tooLarge("it has grown");
    }
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return new TextDecoder().decode(bytes);
  } catch (err) {
    if (err instanceof CredentialFileError) throw err;
    throw new CredentialFileError(describeFsError(err), {
      notFound: err instanceof Deno.errors.NotFound,
      cause: err,
    });
  } finally {
    file?.close();
  }
}

function tooLarge(what: string): CredentialFileError {
  return new CredentialFileError(
    `${what}, more than the ${MAX_CREDENTIAL_FILE_BYTES} bytes a credential file may have`,
  );
}

function fileKind(info: Deno.FileInfo): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "a special file";
}

function describeFsError(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "the file does not exist";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "it is a directory";
  return errorMessage(err)?.split("\n")[0] ?? String(err);
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
