/**
 * @module
 * `multus validate`: offline checks of configs, NADs and pods (see validate.ts).
 */

/** Runs `multus validate`; returns the exit code. */
export function runValidate(_args: string[]): Promise<number> {
  Deno.stderr.writeSync(new TextEncoder().encode("multus validate: not available in this build yet\n"));
  return Promise.resolve(2);
}
