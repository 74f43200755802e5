/**
 * @module
 * Command-line flags of `multus install`: the flags of Multus's `thin_entrypoint` with the same
 * names, defaults and meanings, plus a few of our own. Go-style spellings found in real
 * manifests are accepted: `--flag=value`, `--flag value`, `-flag=value`, `-flag value`, and
 * booleans as `--flag` or `--flag=true|false` (any value Go's `strconv.ParseBool` takes).
 */

import { parseLongOptions } from "../util/cli_args.ts";

/** One flag: its type, default and meaning, as shown by `--help`. */
export interface FlagSpec {
  /** `string` flags take a value; `boolean` flags may be given bare. */
  type: "string" | "boolean";
  /** Default value (undefined when it is derived from other flags; see `defaultText`). */
  default?: string | boolean;
  /** How `--help` shows the default when it is derived or not a plain value. */
  defaultText?: string;
  /** What the flag does. */
  help: string;
  /** True for flags that Multus's thin_entrypoint does not have. */
  ours?: boolean;
}

/** Every flag `multus install` accepts, by long name (without dashes). */
export const INSTALL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  "cni-bin-dir": {
    type: "string",
    default: "/host/opt/cni/bin",
    help: "Directory (as mounted in this container) where the multus binary is installed",
  },
  "cni-conf-dir": {
    type: "string",
    default: "/host/etc/cni/net.d",
    help: "CNI configuration directory (as mounted here) where 00-multus.conf(list) is written",
  },
  "cni-version": {
    type: "string",
    default: "",
    help: "CNI version the primary config must have; with --force-cni-version, the version " +
      "written into the Multus config whatever the primary has",
  },
  "force-cni-version": {
    type: "boolean",
    default: false,
    help: "Write --cni-version into the Multus config instead of the primary config's version",
  },
  "multus-conf-file": {
    type: "string",
    default: "auto",
    help: '"auto" generates the config from the primary CNI config; a path copies that file ' +
      "into --cni-conf-dir under its own name instead",
  },
  "multus-bin-file": {
    type: "string",
    defaultText: "this executable",
    help: "Binary to install as <cni-bin-dir>/multus",
  },
  "multus-cni-conf-dir": {
    type: "string",
    default: "/host/etc/cni/multus/net.d",
    help: "Multus's own network config directory (created if missing); written as confDir " +
      "when its host path is not Multus's default /etc/cni/multus/net.d",
  },
  "skip-multus-binary-copy": {
    type: "boolean",
    default: false,
    help: "Do not install the multus binary",
  },
  "multus-kubeconfig-file-host": {
    type: "string",
    defaultText: "<host path of --cni-conf-dir>/multus.d/multus.kubeconfig, " +
      "i.e. /etc/cni/net.d/multus.d/multus.kubeconfig",
    help: "Path of the generated kubeconfig as the host sees it (written into the config)",
  },
  "multus-master-cni-file-name": {
    type: "string",
    default: "",
    help: "File name of the primary CNI config; empty picks the first .conf/.conflist/.json " +
      "file in name order that is not a Multus config",
  },
  "namespace-isolation": {
    type: "boolean",
    default: false,
    help: "Pods may only use NetworkAttachmentDefinitions of their own namespace " +
      "(and of --global-namespaces)",
  },
  "global-namespaces": {
    type: "string",
    default: "",
    help: "Comma-separated namespaces whose networks any pod may use with namespace isolation",
  },
  "multus-autoconfig-dir": {
    type: "string",
    defaultText: "the value of --cni-conf-dir",
    help: "Directory searched for the primary CNI config",
  },
  "multus-log-to-stderr": {
    type: "boolean",
    default: true,
    help: "The plugin logs to stderr (logToStderr)",
  },
  "multus-log-level": {
    type: "string",
    default: "",
    help: "Plugin log level: debug, verbose, error or panic (logLevel)",
  },
  "multus-log-file": {
    type: "string",
    default: "",
    help: "Plugin log file, a host path (logFile)",
  },
  "override-network-name": {
    type: "boolean",
    default: false,
    help: "Name the Multus network after the primary network instead of multus-cni-network",
  },
  "cleanup-config-on-exit": {
    type: "boolean",
    default: false,
    help: "On SIGTERM/SIGINT remove the files this installer wrote (the Multus config and the " +
      "kubeconfig); the binary stays",
  },
  "skip-config-watch": {
    type: "boolean",
    default: false,
    help: "Write everything once and exit (with --cleanup-config-on-exit: wait for a signal, " +
      "then clean up) instead of watching the primary config and the service account",
  },
  "rename-conf-file": {
    type: "boolean",
    default: false,
    help: "Rename the primary config to <name>.old so the runtime can only use it through " +
      "Multus (renamed back on cleanup)",
  },
  "readiness-indicator-file": {
    type: "string",
    default: "",
    help: "Host path the plugin waits for before ADD (readinessindicatorfile)",
  },
  "additional-bin-dir": {
    type: "string",
    default: "",
    help: "Extra host directory searched for delegate plugins (binDir)",
  },
  "skip-tls-verify": {
    type: "boolean",
    default: false,
    help: "Write insecure-skip-tls-verify into the kubeconfig instead of the cluster CA",
  },
  "mode": {
    type: "string",
    default: "thin",
    ours: true,
    help: '"thin": 00-multus.conf(list) runs the multus plugin itself; "daemon" (or "thick"): ' +
      "it runs multus-shim, which forwards to `multus daemon` and falls back to " +
      "multus.d/thin.conf (the thin config) when the daemon cannot answer; also installs " +
      "the binary as multus-shim",
  },
  "daemon-socket-dir": {
    type: "string",
    default: "/run/multus/",
    ours: true,
    help: "With --mode=daemon: the daemon's socket directory as the host sees it, written as " +
      "daemonSocketDir into the shim config (the daemon's socketDir must be the same place)",
  },
  "daemon-config-file": {
    type: "string",
    default: "",
    ours: true,
    help: "With --mode=daemon: a daemon configuration to check and install as " +
      "<cni-conf-dir>/multus.d/daemon-config.json (atomically, kept current while watching); " +
      "empty writes none (the DaemonSet's ConfigMap gives the daemon its configuration)",
  },
  "service-account-dir": {
    type: "string",
    default: "/var/run/secrets/kubernetes.io/serviceaccount",
    ours: true,
    help: "Directory with the service account token and ca.crt used for the kubeconfig; " +
      "under --host-prefix it is referenced by host path (tokenFile), else embedded",
  },
  "host-prefix": {
    type: "string",
    default: "/host",
    ours: true,
    help: "Where the host's root is mounted in this container: paths under it are written " +
      "into the configs without it; empty when paths are the same on both sides",
  },
  "poll-interval": {
    type: "string",
    default: "1s",
    ours: true,
    help: "How often the primary config and the service account are checked (e.g. 1s, 500ms)",
  },
  "help": {
    type: "boolean",
    default: false,
    help: "Show this help and exit",
  },
};

/** The parsed flags of `multus install`, with every default applied. */
export interface InstallFlags {
  /** `--cni-bin-dir`. */
  cniBinDir: string;
  /** `--cni-conf-dir`. */
  cniConfDir: string;
  /** `--cni-version` (empty: take the primary config's). */
  cniVersion: string;
  /** `--force-cni-version`. */
  forceCniVersion: boolean;
  /** `--multus-conf-file`: `"auto"` or a path to copy. */
  multusConfFile: string;
  /** `--multus-bin-file`; undefined installs the running executable. */
  multusBinFile: string | undefined;
  /** `--multus-cni-conf-dir`. */
  multusCniConfDir: string;
  /** `--skip-multus-binary-copy`. */
  skipMultusBinaryCopy: boolean;
  /** `--multus-kubeconfig-file-host` (default derived from `--cni-conf-dir`). */
  multusKubeconfigFileHost: string;
  /** `--multus-master-cni-file-name`. */
  multusMasterCniFileName: string;
  /** `--namespace-isolation`. */
  namespaceIsolation: boolean;
  /** `--global-namespaces`. */
  globalNamespaces: string;
  /** `--multus-autoconfig-dir` (default: `--cni-conf-dir`). */
  multusAutoconfigDir: string;
  /** `--multus-log-to-stderr`. */
  multusLogToStderr: boolean;
  /** `--multus-log-level`, lower-cased. */
  multusLogLevel: string;
  /** `--multus-log-file`. */
  multusLogFile: string;
  /** `--override-network-name`. */
  overrideNetworkName: boolean;
  /** `--cleanup-config-on-exit`. */
  cleanupConfigOnExit: boolean;
  /** `--skip-config-watch`. */
  skipConfigWatch: boolean;
  /** `--rename-conf-file`. */
  renameConfFile: boolean;
  /** `--readiness-indicator-file`. */
  readinessIndicatorFile: string;
  /** `--additional-bin-dir`. */
  additionalBinDir: string;
  /** `--skip-tls-verify`. */
  skipTlsVerify: boolean;
  /** `--mode` (ours): `thin`, or `daemon` (`thick` is read as `daemon`). */
  mode: InstallMode;
  /** `--daemon-socket-dir` (ours): the shim config's `daemonSocketDir`. */
  daemonSocketDir: string;
  /** `--daemon-config-file` (ours): a daemon configuration to install; "" for none. */
  daemonConfigFile: string;
  /** `--service-account-dir` (ours). */
  serviceAccountDir: string;
  /** `--host-prefix` (ours), without a trailing slash; empty for none. */
  hostPrefix: string;
  /** `--poll-interval` (ours) in milliseconds. */
  pollIntervalMs: number;
  /** `--help` / `-h`. */
  help: boolean;
  /** Long names of the flags given on the command line. */
  given: ReadonlySet<string>;
}

/** What the runtime's first config runs: the multus plugin, or multus-shim and the daemon. */
export type InstallMode = "thin" | "daemon";

/** A command line `multus install` cannot accept; the message says what and how to fix it. */
export class FlagError extends Error {
  override name = "FlagError";
}

const LOG_LEVELS = ["debug", "verbose", "error", "panic"];
const TRUE_VALUES = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_VALUES = ["0", "f", "F", "FALSE", "false", "False"];

/**
 * Parses the arguments that follow `multus install`.
 *
 * @param args The arguments after the subcommand.
 * @returns The flags with every default applied.
 * @throws {FlagError} For an unknown flag (naming the closest known one), a missing or invalid
 * value, or a positional argument.
 *
 * @example
 * ```ts
 * const flags = parseInstallFlags(["-cni-conf-dir=/tmp/net.d", "--namespace-isolation=true"]);
 * flags.cniConfDir; // "/tmp/net.d"
 * ```
 */
export function parseInstallFlags(args: string[]): InstallFlags {
  const { tokens, falseFlags } = normalizeArgs(args);
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, spec] of Object.entries(INSTALL_FLAGS)) options[name] = { type: spec.type };
  const { values } = parseLongOptions(tokens, { options });
  const given = new Set<string>([...Object.keys(values), ...falseFlags]);

  const str = (name: string): string | undefined => values[name] as string | undefined;
  const bool = (name: string): boolean => {
    if (falseFlags.has(name)) return false;
    if (values[name] !== undefined) return values[name] as boolean;
    return INSTALL_FLAGS[name].default as boolean;
  };
  const hostPrefix = (str("host-prefix") ?? (INSTALL_FLAGS["host-prefix"].default as string))
    .replace(/\/+$/, "");
  // Defaults under /host (the DaemonSet's mount of the host) follow --host-prefix, so
  // `--host-prefix=` by hand on a node means the host's own /etc/cni/net.d, /opt/cni/bin, ...
  const strDefault = (name: string): string => {
    const given = str(name);
    if (given !== undefined) return given;
    const fallback = INSTALL_FLAGS[name].default as string;
    return fallback.startsWith("/host/") ? `${hostPrefix}${fallback.slice(5)}` : fallback;
  };

  const cniConfDir = strDefault("cni-conf-dir");
  const logLevel = strDefault("multus-log-level").toLowerCase();
  if (logLevel !== "" && !LOG_LEVELS.includes(logLevel)) {
    throw new FlagError(
      `Invalid value "${str("multus-log-level")}" for --multus-log-level: ` +
        `use one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  const cniVersion = strDefault("cni-version");
  if (cniVersion !== "" && !/^\d+(\.\d+){0,2}$/.test(cniVersion)) {
    throw new FlagError(`Invalid value "${cniVersion}" for --cni-version: use e.g. 1.0.0`);
  }
  const forceCniVersion = bool("force-cni-version");
  if (forceCniVersion && cniVersion === "") {
    throw new FlagError("--force-cni-version needs --cni-version=<version>");
  }
  const multusBinFile = str("multus-bin-file");
  if (multusBinFile === "") {
    throw new FlagError("Empty --multus-bin-file: omit it to install this executable");
  }

  const mode = parseMode(strDefault("mode"));
  const multusConfFile = strDefault("multus-conf-file");
  if (mode === "daemon" && multusConfFile !== "auto") {
    throw new FlagError(
      "--mode=daemon writes the shim config and the thin config from the primary CNI config: " +
        "use --multus-conf-file=auto",
    );
  }
  const daemonSocketDir = strDefault("daemon-socket-dir");
  if (!daemonSocketDir.startsWith("/")) {
    throw new FlagError(
      `Invalid value "${daemonSocketDir}" for --daemon-socket-dir: use an absolute host path`,
    );
  }
  const daemonConfigFile = strDefault("daemon-config-file");
  if (daemonConfigFile !== "" && mode !== "daemon") {
    throw new FlagError("--daemon-config-file needs --mode=daemon");
  }

  return {
    cniBinDir: strDefault("cni-bin-dir"),
    cniConfDir,
    cniVersion,
    forceCniVersion,
    multusConfFile,
    multusBinFile,
    multusCniConfDir: strDefault("multus-cni-conf-dir"),
    skipMultusBinaryCopy: bool("skip-multus-binary-copy"),
    multusKubeconfigFileHost: str("multus-kubeconfig-file-host") ??
      `${toHostPath(cniConfDir, hostPrefix).replace(/\/+$/, "")}/multus.d/multus.kubeconfig`,
    multusMasterCniFileName: strDefault("multus-master-cni-file-name"),
    namespaceIsolation: bool("namespace-isolation"),
    globalNamespaces: strDefault("global-namespaces"),
    multusAutoconfigDir: str("multus-autoconfig-dir") ?? cniConfDir,
    multusLogToStderr: bool("multus-log-to-stderr"),
    multusLogLevel: logLevel,
    multusLogFile: strDefault("multus-log-file"),
    overrideNetworkName: bool("override-network-name"),
    cleanupConfigOnExit: bool("cleanup-config-on-exit"),
    skipConfigWatch: bool("skip-config-watch"),
    renameConfFile: bool("rename-conf-file"),
    readinessIndicatorFile: strDefault("readiness-indicator-file"),
    additionalBinDir: strDefault("additional-bin-dir"),
    skipTlsVerify: bool("skip-tls-verify"),
    mode,
    daemonSocketDir,
    daemonConfigFile,
    serviceAccountDir: strDefault("service-account-dir"),
    hostPrefix,
    pollIntervalMs: parseInterval(strDefault("poll-interval")),
    help: bool("help"),
    given,
  };
}

/**
 * Maps a path as seen in this container to the path the host sees: `/host/etc/cni/net.d`
 * becomes `/etc/cni/net.d` with host prefix `/host`. Paths outside the prefix are unchanged.
 *
 * @param path An absolute path in this container.
 * @param hostPrefix Where the host's root is mounted; empty for none.
 */
export function toHostPath(path: string, hostPrefix: string): string {
  if (hostPrefix === "" || hostPrefix === "/") return path;
  if (path === hostPrefix) return "/";
  if (path.startsWith(`${hostPrefix}/`)) return path.slice(hostPrefix.length);
  return path;
}

/** True when `path` lies under the host prefix (so the host can see it). */
export function isUnderHostPrefix(path: string, hostPrefix: string): boolean {
  if (hostPrefix === "" || hostPrefix === "/") return false;
  return path === hostPrefix || path.startsWith(`${hostPrefix}/`);
}

/** The `--help` text: every flag with its default and meaning. */
export function installHelp(): string {
  const lines = [
    "Usage: multus install [flags]",
    "",
    "Installs the multus binary into the CNI bin directory, writes 00-multus.conf (or",
    ".conflist) in front of the primary CNI config and the plugin's kubeconfig, then keeps",
    "them up to date (unless --skip-config-watch). With --mode=daemon the first config runs",
    "multus-shim (Multus thick mode) and multus.d/thin.conf holds the thin config it falls",
    "back to. Flags take --flag=value, --flag value or -flag=value; booleans take --flag or",
    "--flag=true|false.",
    "",
    "Multus thin_entrypoint flags:",
  ];
  const entry = (name: string, spec: FlagSpec) => {
    const value = spec.type === "string" ? "=<value>" : "";
    const def = spec.defaultText ??
      (spec.type === "string" ? JSON.stringify(spec.default) : String(spec.default));
    lines.push(`  --${name}${value}`);
    lines.push(`      ${spec.help} (default: ${def})`);
  };
  for (const [name, spec] of Object.entries(INSTALL_FLAGS)) {
    if (!spec.ours && name !== "help") entry(name, spec);
  }
  lines.push("", "Flags of this implementation:");
  for (const [name, spec] of Object.entries(INSTALL_FLAGS)) {
    if (spec.ours || name === "help") entry(name, spec);
  }
  return lines.join("\n") + "\n";
}

/**
 * Turns Go-style arguments into `--name=value` / `--name` tokens that `parseArgs` reads, and
 * collects booleans set to false (which `parseArgs` cannot express).
 */
function normalizeArgs(args: string[]): { tokens: string[]; falseFlags: Set<string> } {
  const tokens: string[] = [];
  const falseFlags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--" || !arg.startsWith("-") || arg === "-") {
      const rest = arg === "--" ? args.slice(i + 1) : args.slice(i);
      if (rest.length === 0) break;
      throw new FlagError(
        `Unexpected argument "${rest[0]}": multus install takes only flags (see --help)`,
      );
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const value = eq === -1 ? undefined : body.slice(eq + 1);
    const canonical = name === "h" ? "help" : name;
    const spec = INSTALL_FLAGS[canonical];
    if (!spec || name.startsWith("-")) throw new FlagError(unknownFlagMessage(arg, name));
    if (spec.type === "boolean") {
      if (value === undefined || TRUE_VALUES.includes(value)) {
        falseFlags.delete(canonical);
        tokens.push(`--${canonical}`);
      } else if (FALSE_VALUES.includes(value)) {
        // Later occurrences win, as in Go: drop earlier true tokens of this flag.
        for (let t = tokens.length - 1; t >= 0; t--) {
          if (tokens[t] === `--${canonical}`) tokens.splice(t, 1);
        }
        falseFlags.add(canonical);
      } else {
        throw new FlagError(
          `Invalid boolean value "${value}" for --${canonical}: use true or false`,
        );
      }
      continue;
    }
    let v = value;
    if (v === undefined) {
      if (i + 1 >= args.length) {
        throw new FlagError(`Flag --${canonical} needs a value: --${canonical}=<value>`);
      }
      v = args[++i];
    }
    tokens.push(`--${canonical}=${v}`);
  }
  return { tokens, falseFlags };
}

function unknownFlagMessage(arg: string, name: string): string {
  const bare = name.replace(/^-+/, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const known of Object.keys(INSTALL_FLAGS)) {
    const d = editDistance(bare.toLowerCase().replaceAll("_", "-"), known);
    if (d < bestDistance) {
      bestDistance = d;
      best = known;
    }
  }
  const close = best !== undefined && bestDistance <= Math.max(2, Math.floor(bare.length / 3));
  return `Unknown flag "${arg.split("=")[0]}"` +
    (close ? `: did you mean --${best}?` : ": see multus install --help");
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function parseMode(text: string): InstallMode {
  const mode = text.toLowerCase();
  if (mode === "thin") return "thin";
  if (mode === "daemon" || mode === "thick") return "daemon";
  throw new FlagError(`Invalid value "${text}" for --mode: use thin or daemon`);
}

function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) {
    throw new FlagError(`Invalid value "${text}" for --poll-interval: use e.g. 1s or 500ms`);
  }
  const n = Number(m[1]) * (m[2] === "s" ? 1000 : m[2] === "m" ? 60_000 : 1);
  if (n < 10) throw new FlagError(`--poll-interval ${text} is too short: use at least 10ms`);
  return Math.round(n);
}
