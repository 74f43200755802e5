/**
 * @module
 * `multus daemon`'s command line and configuration file: Multus's `daemon-config.json` keys
 * (matched case-insensitively, as Go's encoding/json does) plus ours, validated with zod.
 * Every netconf key in the file is laid over each request's configuration, as Multus does;
 * an error names the file and the key.
 */

import { errorMessage } from "../util/errors.ts";
import * as z from "zod/mini";
import { ConfigError } from "../cni/errors.ts";
import { type ConfOverlay, overlayFrom } from "../multus/config/conf_overlay.ts";
import { loadMultusNetConf, NETCONF_KEYS } from "../multus/config/netconf.ts";
import { setTopLevelKeys, stripJsonc } from "../cni/raw_json.ts";
import { isSupportedVersion } from "../cni/version.ts";
import { type LogLevel, parseLogLevel } from "../log/logger.ts";
import { parseLongOptions } from "../util/cli_args.ts";
import { resolve } from "../util/path.ts";
import { DEFAULT_SOCKET_DIR, SOCKET_NAME } from "../multus/config/thick.ts";

/** Multus's default `-config`. */
export const DEFAULT_CONFIG_FILE = "/etc/cni/net.d/multus.d/daemon-config.json";

/** The daemon's settings. */
export interface DaemonConfig {
  /** The configuration file read. */
  file: string;
  /** `--node-name` or `MULTUS_NODE_NAME` ("" when neither is set). */
  nodeName: string;
  /** `socketDir` (default `/run/multus/`). */
  socketDir: string;
  /** `<socketDir>/multus.sock`. */
  socketPath: string;
  /** `chrootDir`: delegates run inside it (through `chroot`); "" runs them in the daemon's view. */
  chrootDir: string;
  /** The daemon's own logging (`logFile`, `logLevel`, `logToStderr`, `logOptions`). */
  logging: {
    level?: LogLevel;
    file: string;
    toStderr: boolean;
    rotation: { maxSize?: number; maxBackups?: number; maxAge?: number };
  };
  /** `metricsPort`: serve `/metrics` there (off when undefined). */
  metricsPort?: number;
  /** Ours: the address `/metrics` listens on (default 127.0.0.1). */
  metricsAddress: string;
  /** Ours: requests run at once (Multus's `connectionLimit` sets it when it is not set). */
  maxParallelRequests: number;
  /** Ours: requests that may wait for a free slot. */
  maxQueuedRequests: number;
  /** Ours: how long a request may wait for a slot before it fails with code 11. */
  queueTimeoutSeconds: number;
  /** Ours: how long a request may run before its caller gets code 11 (the work goes on). */
  requestTimeoutSeconds: number;
  /** Ours: after SIGTERM, how long running requests may take to finish. */
  shutdownGraceSeconds: number;
  /** The netconf keys laid over every request (all but the logging keys). */
  overlay: ConfOverlay;
  /** Things to say once at start (ignored or not yet applied keys). */
  warnings: string[];
}

/** Defaults of our keys. */
export const DAEMON_DEFAULTS = {
  metricsAddress: "127.0.0.1",
  maxParallelRequests: 16,
  maxQueuedRequests: 128,
  queueTimeoutSeconds: 30,
  requestTimeoutSeconds: 120,
  shutdownGraceSeconds: 25,
} as const;

/** A command line or configuration file the daemon cannot use; the message says why. */
export class DaemonConfigError extends Error {
  override name = "DaemonConfigError";
  /** Exit status: 2 for the command line, 1 for the file. */
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The parsed command line. */
export interface DaemonArgs {
  configFile: string;
  nodeName: string;
  help: boolean;
  version: boolean;
}

/**
 * Parses `multus daemon` arguments: `--config FILE` (Multus's `-config FILE` and `-config=FILE`
 * too), `--node-name NAME` (else `MULTUS_NODE_NAME`), `--help`, `--version`. Throws
 * DaemonConfigError (exit 2) for anything else.
 */
export function parseDaemonArgs(
  args: string[],
  env: Record<string, string | undefined>,
): DaemonArgs {
  // Go's flag package takes -name and --name alike.
  const normalised = args.map((arg) => /^-[a-zA-Z][\w-]+(=.*)?$/.test(arg) ? `-${arg}` : arg);
  let parsed;
  try {
    parsed = parseLongOptions(normalised, {
      options: {
        config: { type: "string" },
        "node-name": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    throw new DaemonConfigError(`multus daemon: ${errorMessage(err)}; see --help`, 2);
  }
  const v = parsed.values;
  return {
    configFile: (v.config as string | undefined) ?? DEFAULT_CONFIG_FILE,
    nodeName: (v["node-name"] as string | undefined) ?? env.MULTUS_NODE_NAME ?? "",
    help: v.help === true,
    version: v.version === true,
  };
}

/** Help text of `multus daemon --help`. */
export function daemonHelp(): string {
  return `multus daemon: serves CNI requests from multus-shim on this node (Multus thick mode)

usage: multus daemon [--config FILE] [--node-name NAME]

  --config FILE      daemon configuration (default ${DEFAULT_CONFIG_FILE});
                     Multus's -config FILE works too
  --node-name NAME   this node's name (default: $MULTUS_NODE_NAME)
  --help, --version

The configuration takes Multus's daemon-config.json keys (socketDir, chrootDir, logFile,
logLevel, logToStderr, logOptions, metricsPort, cniVersion, confDir, cniDir, binDir, ... and
every multus netconf key, laid over each request) and ours: maxParallelRequests (${DAEMON_DEFAULTS.maxParallelRequests}),
maxQueuedRequests (${DAEMON_DEFAULTS.maxQueuedRequests}), queueTimeoutSeconds (${DAEMON_DEFAULTS.queueTimeoutSeconds}), requestTimeoutSeconds (${DAEMON_DEFAULTS.requestTimeoutSeconds}),
shutdownGraceSeconds (${DAEMON_DEFAULTS.shutdownGraceSeconds}), metricsAddress (${DAEMON_DEFAULTS.metricsAddress}).
`;
}

const optionalString = z.optional(z.string());
const optionalBool = z.optional(z.boolean());
const positiveInt = z.optional(z.int().check(z.positive()));
const positiveSeconds = z.optional(z.number().check(z.positive()));

/** The daemon's own keys (not netconf keys), canonical spelling. */
const DaemonKeysSchema = z.object({
  chrootDir: optionalString,
  socketDir: optionalString,
  cniConfigDir: optionalString,
  multusConfigFile: optionalString,
  multusAutoconfigDir: optionalString,
  multusMasterCNI: optionalString,
  forceCNIVersion: optionalBool,
  overrideNetworkName: optionalBool,
  metricsPort: z.optional(z.int().check(z.minimum(1), z.maximum(65535))),
  enablePprof: optionalBool,
  connectionLimit: positiveInt,
  perNodeCertificate: z.optional(z.unknown()),
  cniVersion: optionalString,
  daemonSocketDir: optionalString,
  metricsAddress: optionalString,
  maxParallelRequests: positiveInt,
  maxQueuedRequests: z.optional(z.int().check(z.nonnegative())),
  queueTimeoutSeconds: positiveSeconds,
  requestTimeoutSeconds: positiveSeconds,
  shutdownGraceSeconds: z.optional(z.number().check(z.nonnegative())),
});

const DAEMON_KEYS = Object.keys(DaemonKeysSchema.def.shape);
const CANONICAL_DAEMON_KEYS = new Map(DAEMON_KEYS.map((k) => [k.toLowerCase(), k]));
const NETCONF_KEYS_LOWER = new Set(NETCONF_KEYS.map((k) => k.toLowerCase()));

/**
 * Keys that shape the configuration `multus install` (or Multus's daemon in auto mode)
 * generates for the node; not applied by the daemon itself yet.
 */
const GENERATOR_KEYS = [
  "cniConfigDir",
  "multusConfigFile",
  "multusAutoconfigDir",
  "multusMasterCNI",
  "forceCNIVersion",
  "overrideNetworkName",
  "daemonSocketDir",
];

/**
 * Reads and validates the daemon configuration file. Throws DaemonConfigError naming the
 * file, and the key when one is wrong.
 */
export async function loadDaemonConfig(args: DaemonArgs): Promise<DaemonConfig> {
  const file = args.configFile;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    throw new DaemonConfigError(
      `Cannot read the daemon configuration ${file}: ${errorMessage(err)}`,
    );
  }
  return parseDaemonConfig(text, { file, nodeName: args.nodeName });
}

/** Validates a daemon configuration text (see {@linkcode loadDaemonConfig}). */
export function parseDaemonConfig(
  text: string,
  where: { file: string; nodeName: string },
): DaemonConfig {
  const { file } = where;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripJsonc(text));
  } catch (err) {
    throw new DaemonConfigError(
      `Cannot parse the daemon configuration ${file}: ${
        (err as { detail?: string }).detail ?? errorMessage(err)
      }`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new DaemonConfigError(
      `Cannot use the daemon configuration ${file}: it must be a JSON object`,
    );
  }

  const warnings: string[] = [];
  const daemonKeys: Record<string, unknown> = {};
  const spelling = new Map<string, string>();
  for (const [key, value] of Object.entries(parsed)) {
    const canonical = CANONICAL_DAEMON_KEYS.get(key.toLowerCase());
    if (canonical) {
      daemonKeys[canonical] = value;
      spelling.set(canonical, key);
    } else if (!NETCONF_KEYS_LOWER.has(key.toLowerCase())) {
      warnings.push(`unknown key "${key}" in ${file} ignored`);
    }
  }
  const checked = DaemonKeysSchema.safeParse(daemonKeys);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const canonical = String(issue.path[0]);
    const key = spelling.get(canonical) ?? canonical;
    throw new DaemonConfigError(
      `Cannot use the daemon configuration ${file}: "${key}" ${
        describeIssue(issue, canonical, daemonKeys[canonical])
      }`,
    );
  }
  const d = checked.data;
  if (d.cniVersion !== undefined && d.cniVersion !== "" && !isSupportedVersion(d.cniVersion)) {
    throw new DaemonConfigError(
      `Cannot use the daemon configuration ${file}: "${
        spelling.get("cniVersion")
      }" is "${d.cniVersion}", not a CNI version this plugin supports`,
    );
  }

  // Netconf keys: checked as the plugin checks them, then laid over every request.
  const skip = new Set(DAEMON_KEYS.map((k) => k.toLowerCase()));
  const fileOverlay = overlayFrom(text, skip);
  const netconf = checkNetconfKeys(fileOverlay, file);
  const logging = {
    level: netconf.logLevel,
    file: netconf.logFile,
    // Multus's daemon logs to stderr only when asked; a daemon's stderr is its container log,
    // so ours does unless told not to.
    toStderr: netconf.logToStderrSet ? netconf.logToStderr : true,
    rotation: netconf.logOptions,
  };
  // The logging keys are the daemon's own: its requests log through it (the daemon configures
  // its logger once), so they are not laid over requests.
  const overlay = withoutLogKeys(fileOverlay);
  warnings.push(...netconf.warnings);

  for (const key of GENERATOR_KEYS) {
    if ((d as Record<string, unknown>)[key] !== undefined) {
      warnings.push(
        `"${spelling.get(key)}" is not used by the daemon: the node's shim configuration ` +
          "is written by multus install",
      );
    }
  }
  if (d.enablePprof) warnings.push(`"enablePprof" is not supported and ignored`);
  if (d.perNodeCertificate !== undefined) {
    warnings.push(
      `"perNodeCertificate" is not supported yet: Kubernetes-mode requests are run by the shim`,
    );
  }

  const socketDir = resolve(d.socketDir || DEFAULT_SOCKET_DIR);
  return {
    file,
    nodeName: where.nodeName,
    socketDir,
    socketPath: `${socketDir === "/" ? "" : socketDir}/${SOCKET_NAME}`,
    chrootDir: d.chrootDir ? resolve(d.chrootDir) : "",
    logging,
    metricsPort: d.metricsPort,
    metricsAddress: d.metricsAddress || DAEMON_DEFAULTS.metricsAddress,
    maxParallelRequests: d.maxParallelRequests ?? d.connectionLimit ??
      DAEMON_DEFAULTS.maxParallelRequests,
    maxQueuedRequests: d.maxQueuedRequests ?? DAEMON_DEFAULTS.maxQueuedRequests,
    queueTimeoutSeconds: d.queueTimeoutSeconds ?? DAEMON_DEFAULTS.queueTimeoutSeconds,
    requestTimeoutSeconds: d.requestTimeoutSeconds ?? DAEMON_DEFAULTS.requestTimeoutSeconds,
    shutdownGraceSeconds: d.shutdownGraceSeconds ?? DAEMON_DEFAULTS.shutdownGraceSeconds,
    overlay,
    warnings,
  };
}

const LOG_KEYS = new Set(["logfile", "loglevel", "logtostderr", "logoptions"]);

function withoutLogKeys(overlay: ConfOverlay): ConfOverlay {
  return Object.fromEntries(
    Object.entries(overlay).filter(([key]) => !LOG_KEYS.has(key.toLowerCase())),
  );
}

/**
 * Checks the netconf keys of the file as the plugin would check them in a request, so a bad
 * value stops the daemon at start instead of failing every request.
 */
function checkNetconfKeys(overlay: ConfOverlay, file: string): {
  logLevel?: LogLevel;
  logFile: string;
  logToStderr: boolean;
  logToStderrSet: boolean;
  logOptions: { maxSize?: number; maxBackups?: number; maxAge?: number };
  warnings: string[];
} {
  const probe = setTopLevelKeys(
    '{"cniVersion":"1.0.0","name":"daemon-config","clusterNetwork":"daemon-config"}',
    overlay,
  );
  try {
    const conf = loadMultusNetConf(probe);
    const logLevel = Object.entries(overlay).find(([k]) => k.toLowerCase() === "loglevel");
    return {
      logLevel: logLevel ? parseLogLevel(JSON.parse(logLevel[1].text) as string) : undefined,
      logFile: conf.logFile,
      logToStderr: conf.logToStderr,
      logToStderrSet: Object.keys(overlay).some((k) => k.toLowerCase() === "logtostderr"),
      logOptions: {
        maxSize: conf.logOptions.maxSize,
        maxBackups: conf.logOptions.maxBackups,
        maxAge: conf.logOptions.maxAge,
      },
      warnings: conf.warnings.map((w) => `${w} (${file})`),
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const reason = err.message.replace(/^Cannot load the multus configuration: /, "");
    throw new DaemonConfigError(`Cannot use the daemon configuration ${file}: ${reason}`);
  }
}

const INTEGER_KEYS = new Set([
  "metricsPort",
  "connectionLimit",
  "maxParallelRequests",
  "maxQueuedRequests",
]);

function describeIssue(issue: z.core.$ZodIssue, key: string, value: unknown): string {
  const got = value === null
    ? "null"
    : Array.isArray(value)
    ? "a list"
    : typeof value === "string"
    ? `the string ${JSON.stringify(value)}`
    : `${typeof value} ${JSON.stringify(value)}`;
  switch (issue.code) {
    case "invalid_type": {
      const expected = INTEGER_KEYS.has(key) ? "an integer" : `a ${issue.expected}`;
      return `must be ${expected}, got ${got}`;
    }
    case "too_small":
      return `must be ${
        issue.inclusive ? "at least" : "greater than"
      } ${issue.minimum}, got ${got}`;
    case "too_big":
      return `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}, got ${got}`;
    default:
      return `is invalid, got ${got}`;
  }
}
