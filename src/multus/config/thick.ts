/**
 * @module
 * Multus thick mode (`multus daemon` and the shim): what the two agree on beyond Multus's own
 * socket API: the socket's name and place, two headers of ours, the shim's defaults and the
 * file where shims record the requests they ran without the daemon. Constants only: the shim
 * imports this at every start.
 */

/** The socket's file name in the socket directory (Multus's). */
export const SOCKET_NAME = "multus.sock";

/** Multus's default `daemonSocketDir` (shim) and `socketDir` (daemon). */
export const DEFAULT_SOCKET_DIR = "/run/multus/";

/**
 * Request header of our shim: answer with exactly what the thin plugin would print (the
 * result in the request's cniVersion, or the error JSON) instead of Multus's
 * `{"Result": ...}`. The daemon echoes it on such answers.
 */
export const OUTPUT_HEADER = "X-Multus-Output";

/**
 * Response header: the daemon did not run the request and the shim should run it itself;
 * the value is the reason (`not-ready`, `draining`, `kubernetes-mode`).
 */
export const FALLBACK_HEADER = "X-Multus-Fallback";

/**
 * The thin configuration the shim runs requests with when the daemon cannot, when its
 * configuration names none (`thinConfig`): written by the installer beside the shim
 * configuration, in `multus.d/` so that the runtime never loads it as a network.
 */
export const DEFAULT_THIN_CONFIG = "/etc/cni/net.d/multus.d/thin.conf";

/**
 * How long the shim waits for the daemon's answer once the daemon took the request: longer
 * than the daemon's own default queue wait (30 s) and request time (120 s), so the daemon
 * answers first whenever it can.
 */
export const DEFAULT_DAEMON_TIMEOUT_SECONDS = 165;

/**
 * How long connecting and the daemon's `100 Continue` may take. Past it the daemon is stuck
 * and never had the request: the shim runs it itself.
 */
export const DAEMON_ACCEPT_TIMEOUT_MS = 5_000;

/**
 * File in the socket directory where each request a shim ran without the daemon is recorded
 * (one JSON line), counted by the daemon's metrics when it is back.
 */
export const FALLBACK_RECORD_NAME = "fallbacks.log";
