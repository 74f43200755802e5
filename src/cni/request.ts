/**
 * @module
 * The CNI request: environment variables and the stdin configuration, validated as the
 * spec and libcni's skel do.
 */

import { CniError, CniErrorCode } from "./errors.ts";
import { JsonSyntaxError, stripJsonc } from "./raw_json.ts";
import { errorMessage } from "../util/errors.ts";

/** A CNI command. */
export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC";

/** One parsed invocation. */
export interface CniRequest {
  command: CniCommand;
  /** `CNI_CONTAINERID` ("" when not given). */
  containerId: string;
  /** `CNI_NETNS` ("" when not given; DEL may omit it). */
  netns: string;
  /** `CNI_IFNAME` ("" when not given). */
  ifName: string;
  /** `CNI_ARGS` pairs in order. */
  args: [string, string][];
  /** `CNI_PATH` directories in order. */
  path: string[];
}

const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"];

/** The environment variables skel reads, in its order, with the commands that require them. */
const ENV_VARS: readonly { name: string; requiredFor: readonly string[] }[] = [
  { name: "CNI_COMMAND", requiredFor: COMMANDS },
  { name: "CNI_CONTAINERID", requiredFor: ["ADD", "CHECK", "DEL"] },
  { name: "CNI_NETNS", requiredFor: ["ADD", "CHECK"] },
  { name: "CNI_IFNAME", requiredFor: ["ADD", "CHECK", "DEL"] },
  { name: "CNI_ARGS", requiredFor: [] },
  { name: "CNI_PATH", requiredFor: ["ADD", "CHECK", "DEL", "GC", "STATUS"] },
];

const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

/** Linux interface names are at most IFNAMSIZ - 1 bytes. */
const MAX_IFNAME_BYTES = 15;

/** Go's unicode.IsSpace. */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/**
 * Reads and validates the CNI environment. Throws CniError code 4 naming the missing or
 * invalid variables (skel order and rules): variables are read in the order COMMAND,
 * CONTAINERID, NETNS, IFNAME, ARGS, PATH; a present, required CONTAINERID or IFNAME is
 * validated as it is read; then the missing required ones are reported together; then an
 * unknown command is rejected. An empty value counts as missing. `CNI_ARGS` is parsed for
 * every command but VERSION.
 */
export function parseRequest(env: Record<string, string | undefined>): CniRequest {
  const command = env.CNI_COMMAND ?? "";
  const missing: string[] = [];
  for (const { name, requiredFor } of ENV_VARS) {
    const value = env[name] ?? "";
    const required = requiredFor.includes(command) || name === "CNI_COMMAND";
    if (value === "") {
      if (required) missing.push(name);
    } else if (required && name === "CNI_CONTAINERID") {
      validateContainerId(value);
    } else if (required && name === "CNI_IFNAME") {
      validateIfName(value);
    }
  }
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `required env variables [${missing.join(",")}] missing`,
    );
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  return {
    command: command as CniCommand,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifName: env.CNI_IFNAME ?? "",
    args: command === "VERSION" ? [] : parseCniArgs(env.CNI_ARGS ?? ""),
    path: (env.CNI_PATH ?? "").split(":").filter((dir) => dir !== ""),
  };
}

/**
 * Splits `CNI_ARGS` (`K=V;K=V`) into pairs; throws CniError code 4 on a pair without `=`.
 * Empty segments are ignored; a pair is split at its first `=`, so values may contain `=`
 * (base64, `IP=...`), unlike libcni's `LoadArgs`.
 */
export function parseCniArgs(raw: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const segment of raw.split(";")) {
    if (segment === "") continue;
    const eq = segment.indexOf("=");
    if (eq === -1) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        `invalid CNI_ARGS pair ${JSON.stringify(segment)}`,
      );
    }
    pairs.push([segment.slice(0, eq), segment.slice(eq + 1)]);
  }
  return pairs;
}

/**
 * Throws CniError code 4 (`invalid characters in containerID`, details = the id) unless `id`
 * matches `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`; an empty id is code 3 `missing containerID`, as
 * in libcni.
 */
export function validateContainerId(id: string): void {
  if (id === "") throw new CniError(CniErrorCode.UnknownContainer, "missing containerID");
  if (!CNI_NAME.test(id)) {
    throw new CniError(CniErrorCode.InvalidEnvironment, "invalid characters in containerID", {
      details: id,
    });
  }
}

/**
 * Throws CniError code 4 unless `name` is a valid Linux interface name: 1-15 bytes, not `.`
 * or `..`, no `/`, `:` or whitespace (libcni's messages).
 */
export function validateIfName(name: string): void {
  const code = CniErrorCode.InvalidEnvironment;
  if (name === "") throw new CniError(code, "interface name is empty");
  if (new TextEncoder().encode(name).length > MAX_IFNAME_BYTES) {
    throw new CniError(code, "interface name is too long", {
      details: `interface name should be less than ${MAX_IFNAME_BYTES + 1} characters`,
    });
  }
  if (name === "." || name === "..") throw new CniError(code, "interface name is . or ..");
  if (name.includes("/") || name.includes(":") || GO_SPACE.test(name)) {
    throw new CniError(code, "interface name contains / or : or whitespace characters");
  }
}

/**
 * Throws CniError code 7 unless `name` is a valid CNI network name: `missing network name`
 * when empty, `invalid characters found in network name` (details = the name) unless it
 * matches `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
 */
export function validateNetworkName(name: string): void {
  if (name === "") throw new CniError(CniErrorCode.InvalidNetworkConfig, "missing network name");
  if (!CNI_NAME.test(name)) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      "invalid characters found in network name",
      { details: name },
    );
  }
}

/**
 * Parses a network configuration text: JSON, or JSONC (comments, trailing commas) for
 * hand-written files. Throws CniError code 6 saying where the text is malformed, or that the
 * top level is not an object.
 */
export function parseConfigText(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    // The scanner first: the delegates are later cut out of this text with it, so its limits
    // (nesting depth) must hold for every text accepted here.
    value = JSON.parse(stripJsonc(text));
  } catch (err) {
    const reason = err instanceof JsonSyntaxError ? err.detail : errorMessage(err);
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `error unmarshall network config: ${reason}`,
      { cause: err },
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `error unmarshall network config: expected a JSON object, got ${got}`,
    );
  }
  return value as Record<string, unknown>;
}
