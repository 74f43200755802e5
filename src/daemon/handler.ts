/**
 * @module
 * What the daemon does with a CNI request once it may run: behind a small interface, so that
 * another way of running requests (with the daemon's shared API client and watch caches) can
 * replace the one below.
 */

import { type CniPlugin, runSkel } from "../cni/skel.ts";
import { log } from "../log/logger.ts";
import { type CommandDeps, multusPlugin } from "../multus/run/command.ts";

/** One CNI request as the daemon received it (overlay applied). */
export interface CniCall {
  /** `CNI_COMMAND`. */
  command: string;
  /** `CNI_CONTAINERID` ("" for STATUS and GC). */
  containerId: string;
  /** The CNI variables (`CNI_*`) of the request. */
  env: Record<string, string>;
  /** The configuration text, with the daemon's keys laid over it. */
  config: string;
}

/** What a request printed: the result (possibly empty) or the CNI error object, as text. */
export interface CniAnswer {
  ok: boolean;
  stdout: string;
}

/** Runs CNI requests for the daemon. */
export interface CniHandler {
  /**
   * Why this handler must not run `call` (the shim then runs it itself), or undefined when
   * it can. Cheap: called before the request waits for a slot.
   */
  declines(call: CniCall): string | undefined;
  /** Runs the request: exactly what the thin plugin would print. */
  handle(call: CniCall): Promise<CniAnswer>;
}

/**
 * Runs requests in this process through the CNI skeleton with the Multus plugin, the thin
 * plugin's own code, so the daemon's ADD and DEL give exactly the thin plugin's results,
 * caches and annotations. Each request has its own logger (a child of the daemon's) and its
 * own API session over the daemon's shared client, reading its watch caches first; the
 * daemon's logger is configured once, from the daemon's configuration.
 */
export class InProcessCniHandler implements CniHandler {
  #plugin: CniPlugin;

  /**
   * @param processEnv The daemon's environment (in-cluster API variables are read there).
   * @param shared What the daemon's requests share: its API access (shared clients, caches,
   *   event queue) and the way delegates run (timed for its metrics).
   */
  constructor(
    processEnv: Record<string, string | undefined>,
    shared: Pick<CommandDeps, "openKubeClient" | "exec"> = {},
  ) {
    this.#plugin = multusPlugin({ log, configureLog: false, env: processEnv, ...shared });
  }

  declines(_call: CniCall): string | undefined {
    return undefined;
  }

  async handle(call: CniCall): Promise<CniAnswer> {
    const outcome = await runSkel(
      { env: call.env, readStdin: () => Promise.resolve(call.config), log },
      this.#plugin,
    );
    return outcome.ok
      ? { ok: true, stdout: outcome.stdout }
      : { ok: false, stdout: JSON.stringify(outcome.error, null, 4) };
  }
}
