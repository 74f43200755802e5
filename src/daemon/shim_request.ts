/**
 * @module
 * The body of `POST /cni` (Multus's `api.Request`): `{"env": {...}, "config": "<base64>",
 * "interfaceAttributes": {...}}`, read with a size limit and checked before anything runs.
 * Only the CNI variables of `env` are kept: Multus's shim sends its whole environment.
 */

import { errorMessage } from "../util/errors.ts";
import { CniError, CniErrorCode } from "../cni/errors.ts";

/** The most a request body may hold (the configuration is about 3 MiB of it, base64). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** At most this many environment variables are accepted. */
const MAX_ENV_ENTRIES = 4096;

/** A request whose body is over {@linkcode MAX_REQUEST_BYTES}. */
export class RequestTooLarge extends CniError {
  override name = "RequestTooLarge";
}

/** The parts of a shim request the daemon uses. */
export interface ShimRequest {
  /** `CNI_*` variables of `env`. */
  env: Record<string, string>;
  /** The configuration text (decoded from base64; "" when absent). */
  config: string;
}

/** Reads a request body, refusing it past `limit` bytes. */
export async function readRequestBody(
  request: Request,
  limit = MAX_REQUEST_BYTES,
): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw tooLarge(declared, limit);
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > limit) throw tooLarge(size, limit);
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function tooLarge(size: number, limit: number): RequestTooLarge {
  return new RequestTooLarge(
    CniErrorCode.InvalidNetworkConfig,
    `The request from multus-shim is ${size} bytes; the daemon takes at most ${limit}`,
    { details: "The network configuration is too large" },
  );
}

/**
 * Parses a request body. Throws CniError code 6 for a body that is not the request's JSON
 * shape (saying which part), code 4 for an environment that is not a map of strings.
 */
export function parseShimRequest(body: Uint8Array): ShimRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch (err) {
    throw decodeError(`it is not JSON (${errorMessage(err)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw decodeError("it is not a JSON object");
  }
  const fields = parsed as Record<string, unknown>;
  const env = parseEnv(fields.env);
  const config = parseConfig(fields.config);
  const attributes = fields.interfaceAttributes;
  if (attributes !== undefined && attributes !== null && typeof attributes !== "object") {
    throw decodeError('"interfaceAttributes" must be an object');
  }
  return { env, config };
}

function parseEnv(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      'Cannot use the request from multus-shim: "env" must be a map of strings',
    );
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_ENV_ENTRIES) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `Cannot use the request from multus-shim: "env" has ${entries.length} variables, ` +
        `at most ${MAX_ENV_ENTRIES} are taken`,
    );
  }
  const env: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (typeof v !== "string") {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        `Cannot use the request from multus-shim: "env" variable ${
          JSON.stringify(key.slice(0, 64))
        } must be a string`,
      );
    }
    if (key.startsWith("CNI_")) env[key] = v;
  }
  return env;
}

function parseConfig(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw decodeError('"config" must be a base64 string');
  let binary: string;
  try {
    binary = atob(value);
  } catch {
    throw decodeError('"config" is not valid base64');
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

function decodeError(reason: string): CniError {
  return new CniError(
    CniErrorCode.DecodeFailure,
    `Cannot decode the request from multus-shim: ${reason}`,
  );
}
