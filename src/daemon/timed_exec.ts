/**
 * @module
 * Delegate runs timed for the daemon's metrics: an {@linkcode Exec} that runs plugins as
 * the thin plugin does and observes each run's duration by plugin and command.
 */

import { basename } from "node:path";
import { type Exec, processExec } from "../cni/exec.ts";

/** Receives one delegate run: its plugin's file name, the CNI command, seconds, success. */
export type DelegateObserver = (
  plugin: string,
  command: string,
  seconds: number,
  ok: boolean,
) => void;

/** `inner` (default: child processes), with every plugin run reported to `observe`. */
export function timedExec(observe: DelegateObserver, inner: Exec = processExec): Exec {
  return {
    findPlugin: (type, dirs) => inner.findPlugin(type, dirs),
    async execPlugin(pluginPath, stdin, env, options) {
      const started = performance.now();
      let ok = false;
      try {
        const out = await inner.execPlugin(pluginPath, stdin, env, options);
        ok = true;
        return out;
      } finally {
        observe(basename(pluginPath), env.command, (performance.now() - started) / 1000, ok);
      }
    },
  };
}
