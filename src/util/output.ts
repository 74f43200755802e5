/**
 * @module
 * The printers of every entry point, in one place: the CNI plugin prints its answer or the
 * CNI error object on stdout (the runtime reads nothing else), the subcommands print text,
 * and errors of a subcommand as one line on stderr, never a stack trace.
 */

import { errorMessage } from "./errors.ts";

const encoder = new TextEncoder();

/** Writes `text` on stdout, with a final newline, completely. */
export function writeStdout(text: string): void {
  const bytes = encoder.encode(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Writes `text` on stderr, with a final newline. */
export function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : `${text}\n`));
}

/** Prints a CNI error object (`{cniVersion, code, msg, details}`) on stdout, as libcni does. */
export function printCniError(error: object): void {
  writeStdout(JSON.stringify(error, null, 4));
}

/** Prints a subcommand's failure as `<prefix>: <message>` on stderr. */
export function printTextError(prefix: string, err: unknown): void {
  writeStderr(`${prefix}: ${errorMessage(err)}`);
}
