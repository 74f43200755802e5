/**
 * @module
 * A minimal HTTP/1.1 client over a unix socket, for the shim: one request per connection
 * (`Connection: close`), the body sent only after the server's `100 Continue`, so the caller
 * knows whether the server took the request before anything could have been done with it.
 * Hand-written because it runs at every pod start: `fetch` over a unix socket needs a client
 * object and `node:http` costs tens of milliseconds to import.
 */

/** One request. */
export interface UnixHttpRequest {
  /** Path of the server's unix socket. */
  socketPath: string;
  method: "GET" | "POST";
  /** Request target, e.g. `/cni`. */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** How long the connection and the server's `100 Continue` (or early answer) may take. */
  acceptTimeoutMs: number;
  /** How long the answer may take once the body is sent. */
  responseTimeoutMs: number;
  /** Makes the deadlines (default {@linkcode processDeadline}). */
  deadline?: (ms: number) => Deadline;
}

/** A deadline: `signal` aborts when it passes; `cancel` drops it once it is not needed. */
export interface Deadline {
  signal: AbortSignal;
  cancel(): void;
}

/**
 * A deadline from `AbortSignal.timeout`: ~1 ms at a process's start, where the first
 * `setTimeout` costs ~20 ms (Deno 2.9 loads its Node-style timers then). It cannot be
 * cancelled and keeps the event loop alive until it passes, so it suits a process that ends
 * with `Deno.exit` (the shim); others use {@linkcode cancellableDeadline}.
 */
export function processDeadline(ms: number): Deadline {
  return { signal: AbortSignal.timeout(ms), cancel() {} };
}

/** A deadline that can be cancelled (a `setTimeout`). */
export function cancellableDeadline(ms: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("The deadline passed", "TimeoutError")),
    ms,
  );
  return { signal: controller.signal, cancel: () => clearTimeout(timer) };
}

/** The server's final answer. */
export interface UnixHttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: Uint8Array;
}

/**
 * How far a failed exchange got: `connect` and `accept` mean the server never had the whole
 * request (nothing can have been done with it); `response` means it may have.
 */
export type ExchangeStage = "connect" | "accept" | "response";

/** A request that got no usable answer; says how far it got and why. */
export class UnixHttpError extends Error {
  override name = "UnixHttpError";
  /** How far the exchange got. */
  readonly stage: ExchangeStage;
  /** `not-found`, `refused`, `timeout`, `closed`, `malformed` or `error`. */
  readonly reason: string;

  constructor(stage: ExchangeStage, reason: string, message: string) {
    super(message);
    this.stage = stage;
    this.reason = reason;
  }
}

/** Answers larger than this are refused (results and error JSON are a few kilobytes). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

const encoder = new TextEncoder();

/**
 * Sends one request and returns the final response. Throws {@linkcode UnixHttpError}, whose
 * `stage` tells whether the server can have acted on the request.
 */
export async function unixHttpRequest(request: UnixHttpRequest): Promise<UnixHttpResponse> {
  const deadline = request.deadline ?? processDeadline;
  const conn = await connect(request, deadline);
  const reader = new ResponseReader(conn, deadline);
  try {
    const body = request.body ?? new Uint8Array();
    const head = [
      `${request.method} ${request.path} HTTP/1.1`,
      "Host: multus",
      `Content-Length: ${body.length}`,
      "Connection: close",
      ...Object.entries(request.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ];
    if (body.length > 0) head.push("Expect: 100-continue");
    await writeAll(conn, encoder.encode(`${head.join("\r\n")}\r\n\r\n`));
    if (body.length > 0) {
      const first = await reader.next("accept", request.acceptTimeoutMs);
      if (first.status !== 100) return first;
      await writeAll(conn, body);
    }
    for (;;) {
      const response = await reader.next("response", request.responseTimeoutMs);
      if (response.status >= 200) return response;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // already closed after a timeout
    }
  }
}

async function connect(
  request: UnixHttpRequest,
  deadline: (ms: number) => Deadline,
): Promise<Deno.UnixConn> {
  const connecting = Deno.connect({ transport: "unix", path: request.socketPath });
  const limit = deadline(request.acceptTimeoutMs);
  const timeout = new Promise<never>((_, reject) => {
    limit.signal.addEventListener(
      "abort",
      () => reject(new UnixHttpError("connect", "timeout", "connect timed out")),
      { once: true },
    );
  });
  try {
    return await Promise.race([connecting, timeout]);
  } catch (err) {
    connecting.then((conn) => conn.close(), () => {});
    if (err instanceof UnixHttpError) throw err;
    if (err instanceof Deno.errors.NotFound) {
      throw new UnixHttpError("connect", "not-found", `${request.socketPath} does not exist`);
    }
    if (err instanceof Deno.errors.ConnectionRefused) {
      throw new UnixHttpError("connect", "refused", `${request.socketPath} refused the connection`);
    }
    throw new UnixHttpError("connect", "error", `cannot connect: ${(err as Error).message}`);
  } finally {
    limit.cancel();
  }
}

/** Sends bytes; a failure means the server never had the whole request. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  try {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
  } catch (err) {
    throw new UnixHttpError(
      "accept",
      "closed",
      `the connection closed while sending: ${(err as Error).message}`,
    );
  }
}

/** Reads responses (interim `1xx` ones, then the final one) from a connection. */
class ResponseReader {
  #conn: Deno.Conn;
  #deadline: (ms: number) => Deadline;
  #buffer = new Uint8Array(0);
  #eof = false;

  constructor(conn: Deno.Conn, deadline: (ms: number) => Deadline) {
    this.#conn = conn;
    this.#deadline = deadline;
  }

  /** The next response on the connection, within `timeoutMs`. */
  async next(stage: ExchangeStage, timeoutMs: number): Promise<UnixHttpResponse> {
    let timedOut = false;
    const limit = this.#deadline(timeoutMs);
    const onTimeout = () => {
      timedOut = true;
      try {
        this.#conn.close();
      } catch {
        // closed already
      }
    };
    limit.signal.addEventListener("abort", onTimeout, { once: true });
    try {
      for (;;) {
        const parsed = this.#parse(stage);
        if (parsed) return parsed;
        if (this.#eof) {
          throw new UnixHttpError(stage, "closed", "the connection closed before an answer");
        }
        await this.#fill(stage, () => timedOut, timeoutMs);
      }
    } finally {
      limit.signal.removeEventListener("abort", onTimeout);
      limit.cancel();
    }
  }

  async #fill(stage: ExchangeStage, timedOut: () => boolean, timeoutMs: number): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch (err) {
      if (timedOut()) {
        throw new UnixHttpError(stage, "timeout", `no answer within ${timeoutMs} ms`);
      }
      throw new UnixHttpError(stage, "closed", `reading the answer: ${(err as Error).message}`);
    }
    if (n === null) {
      if (timedOut()) {
        throw new UnixHttpError(stage, "timeout", `no answer within ${timeoutMs} ms`);
      }
      this.#eof = true;
      return;
    }
    if (this.#buffer.length + n > MAX_RESPONSE_BYTES) {
      throw new UnixHttpError(stage, "malformed", `answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    const next = new Uint8Array(this.#buffer.length + n);
    next.set(this.#buffer);
    next.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = next;
  }

  /** A complete response from the buffer (consumed), or undefined when more is needed. */
  #parse(stage: ExchangeStage): UnixHttpResponse | undefined {
    const end = indexOfHeadEnd(this.#buffer);
    if (end === -1) return undefined;
    const head = latin1(this.#buffer.subarray(0, end));
    const lines = head.split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
    if (!status) {
      throw new UnixHttpError(stage, "malformed", `not an HTTP answer: "${lines[0].slice(0, 80)}"`);
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    const code = Number(status[1]);
    const rest = this.#buffer.subarray(end + 4);
    if (code < 200) {
      this.#buffer = rest;
      return { status: code, headers, body: new Uint8Array() };
    }
    const body = bodyOf(rest, headers, this.#eof, stage);
    if (body === undefined) return undefined;
    return { status: code, headers, body };
  }
}

/** The body once complete; undefined while more bytes are needed. */
function bodyOf(
  rest: Uint8Array,
  headers: Map<string, string>,
  eof: boolean,
  stage: ExchangeStage,
): Uint8Array | undefined {
  if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) {
    return dechunk(rest, stage);
  }
  const length = headers.get("content-length");
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new UnixHttpError(stage, "malformed", `bad Content-Length "${length}"`);
    }
    if (rest.length >= n) return rest.subarray(0, n);
    if (eof) throw new UnixHttpError(stage, "closed", "the connection closed in the answer");
    return undefined;
  }
  return eof ? rest : undefined;
}

/** Decodes a chunked body; undefined until the last chunk is in. */
function dechunk(data: Uint8Array, stage: ExchangeStage): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = indexOf(data, [13, 10], at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(latin1(data.subarray(at, lineEnd)).split(";")[0].trim(), 16);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new UnixHttpError(stage, "malformed", "bad chunk size");
    }
    at = lineEnd + 2;
    if (size === 0) break;
    if (data.length < at + size + 2) return undefined;
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function indexOfHeadEnd(data: Uint8Array): number {
  return indexOf(data, [13, 10, 13, 10], 0);
}

function indexOf(data: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i <= data.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}
