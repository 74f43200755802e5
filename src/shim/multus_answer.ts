/**
 * @module
 * Reads an answer in Multus's own shape, from Go Multus's multus-daemon (a node moving between
 * the two): `{"Result": <1.0.0 result>}` for ADD, an empty body otherwise, and on failure a
 * CNI error JSON (Multus HEAD) or plain text (v4). The result is printed in the shim
 * configuration's cniVersion, as Multus's shim does.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { convertResult, parseResult, resultToJson } from "../cni/result.ts";
import type { UnixHttpResponse } from "../util/unix_http.ts";

/** What to print for a Multus-shaped answer; throws CniError for a failed request. */
export function multusAnswer(
  command: string,
  response: UnixHttpResponse,
  cniVersion: string,
): Promise<string> {
  const text = new TextDecoder().decode(response.body);
  if (response.status !== 200) {
    let error: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    try {
      error = JSON.parse(text);
    } catch {
      error = undefined;
    }
    if (error && typeof error.msg === "string" && error.msg !== "") {
      return Promise.reject(
        new CniError(
          typeof error.code === "number" ? error.code : CniErrorCode.Internal,
          error.msg,
          {
            details: typeof error.details === "string" ? error.details : undefined,
          },
        ),
      );
    }
    return Promise.reject(
      new CniError(
        CniErrorCode.Internal,
        `CNI request failed with status ${response.status}: '${text.trim()}'`,
      ),
    );
  }
  if (command !== "ADD" || text.trim() === "") return Promise.resolve("");
  const answer = JSON.parse(text) as { Result?: unknown };
  if (typeof answer?.Result !== "object" || answer.Result === null) {
    return Promise.reject(
      new CniError(CniErrorCode.DecodeFailure, `the daemon answered ADD without a result: ${text}`),
    );
  }
  const result = parseResult(answer.Result, "1.0.0");
  return Promise.resolve(resultToJson(convertResult(result, cniVersion)));
}
