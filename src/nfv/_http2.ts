/**
 * @module
 * A minimal HTTP/2 client (RFC 9113) over an already connected byte stream, enough for
 * unary gRPC calls to the kubelet: connection preface, SETTINGS and their ACK, HEADERS and
 * CONTINUATION (HPACK, {@link ./_hpack.ts}), DATA with padding, send-side flow control,
 * WINDOW_UPDATE, RST_STREAM, GOAWAY and PING. No server push (disabled in our SETTINGS), no
 * priorities, no TLS (the PodResources socket is a local unix socket, "h2c" with prior
 * knowledge).
 *
 * Receive-side flow control is settled once: we announce the largest window (2^31-1) for the
 * connection and every stream, and cap each response body ourselves instead.
 */

import { encodeHeaders, type HeaderList, HpackDecoder, HpackError } from "./_hpack.ts";

/** Frame types (RFC 9113 §6). */
const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  GoAway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** HTTP/2 error codes (RFC 9113 §7), by number, for messages. */
const ERROR_NAMES: Record<number, string> = {
  0x0: "NO_ERROR",
  0x1: "PROTOCOL_ERROR",
  0x2: "INTERNAL_ERROR",
  0x3: "FLOW_CONTROL_ERROR",
  0x4: "SETTINGS_TIMEOUT",
  0x5: "STREAM_CLOSED",
  0x6: "FRAME_SIZE_ERROR",
  0x7: "REFUSED_STREAM",
  0x8: "CANCEL",
  0x9: "COMPRESSION_ERROR",
  0xa: "CONNECT_ERROR",
  0xb: "ENHANCE_YOUR_CALM",
  0xc: "INADEQUATE_SECURITY",
  0xd: "HTTP_1_1_REQUIRED",
};

const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const FRAME_SIZE_ERROR = 0x6;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65535;
/** The frame size we accept (our SETTINGS_MAX_FRAME_SIZE stays at the default). */
const MAX_FRAME_SIZE = 16384;
/** The header block size we accept (SETTINGS_MAX_HEADER_LIST_SIZE is advisory; this is not). */
const MAX_HEADER_BLOCK = 64 * 1024;

/** Name of an HTTP/2 error code, e.g. `REFUSED_STREAM (0x7)`. */
export function http2ErrorName(code: number): string {
  return `${ERROR_NAMES[code] ?? "UNKNOWN"} (0x${code.toString(16)})`;
}

/** The HTTP/2 connection or stream failed; `reason` says how. */
export class Http2Error extends Error {
  override name = "Http2Error";
  /** What happened. */
  readonly reason: "protocol" | "reset" | "goaway" | "closed" | "too-large";
  /** The HTTP/2 error code, when one was sent or received. */
  readonly errorCode?: number;

  constructor(
    reason: Http2Error["reason"],
    message: string,
    options: { errorCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.reason = reason;
    this.errorCode = options.errorCode;
  }
}

/** The answer to one request. */
export interface Http2Response {
  /** `:status`. */
  status: number;
  /** Response header fields (pseudo-headers included). */
  headers: HeaderList;
  /** Trailer fields (empty when the response had none). */
  trailers: HeaderList;
  /** The body. */
  body: Uint8Array;
}

/** Options of {@linkcode Http2Client.request}. */
export interface Http2RequestOptions {
  /** A larger response body fails the request (default 16 MiB). */
  maxBodyBytes?: number;
}

interface StreamState {
  id: number;
  resolve(response: Http2Response): void;
  reject(err: Error): void;
  headers?: HeaderList;
  trailers: HeaderList;
  chunks: Uint8Array[];
  bodyBytes: number;
  maxBodyBytes: number;
  sendWindow: number;
  done: boolean;
}

/** The byte stream the client runs on (a `Deno.Conn` fits). */
export interface ByteStream {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}

/** An HTTP/2 client connection. Create with {@linkcode Http2Client.start}. */
export class Http2Client {
  #conn: ByteStream;
  #hpack = new HpackDecoder();
  #streams = new Map<number, StreamState>();
  #nextStreamId = 1;
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  #goAwayLastStream = Number.MAX_SAFE_INTEGER;
  #peerMaxFrameSize = MAX_FRAME_SIZE;
  #peerInitialWindow = DEFAULT_WINDOW;
  #sendWindow = DEFAULT_WINDOW;
  #windowWaiters: (() => void)[] = [];
  #readDone: Promise<void>;

  private constructor(conn: ByteStream) {
    this.#conn = conn;
    this.#readDone = this.#readLoop();
  }

  /** Sends the connection preface and our SETTINGS on `conn` and starts reading frames. */
  static start(conn: ByteStream): Http2Client {
    const client = new Http2Client(conn);
    const settings = new Uint8Array(18);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x2); // SETTINGS_ENABLE_PUSH
    view.setUint32(2, 0);
    view.setUint16(6, 0x4); // SETTINGS_INITIAL_WINDOW_SIZE
    view.setUint32(8, MAX_WINDOW);
    view.setUint16(12, 0x6); // SETTINGS_MAX_HEADER_LIST_SIZE
    view.setUint32(14, MAX_HEADER_BLOCK);
    const increment = new Uint8Array(4);
    new DataView(increment.buffer).setUint32(0, MAX_WINDOW - DEFAULT_WINDOW);
    client.#send(concat([
      PREFACE,
      frame(FrameType.Settings, 0, 0, settings),
      frame(FrameType.WindowUpdate, 0, 0, increment),
    ]));
    return client;
  }

  /**
   * Sends one request (`headers` with pseudo-headers first, then `body`) and resolves with the
   * whole response once the server ends the stream. Rejects with {@linkcode Http2Error}, or
   * with the error given to {@linkcode Http2Client.destroy}.
   */
  request(
    headers: HeaderList,
    body: Uint8Array,
    options: Http2RequestOptions = {},
  ): Promise<Http2Response> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    if (id > this.#goAwayLastStream) {
      return Promise.reject(
        new Http2Error("goaway", "Cannot send an HTTP/2 request: the server is going away"),
      );
    }
    const block = encodeHeaders(headers);
    if (block.length > this.#peerMaxFrameSize) {
      return Promise.reject(
        new Http2Error("protocol", "Cannot send an HTTP/2 request: header block too large"),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<Http2Response>();
    const stream: StreamState = {
      id,
      resolve,
      reject,
      trailers: [],
      chunks: [],
      bodyBytes: 0,
      maxBodyBytes: options.maxBodyBytes ?? 16 * 1024 * 1024,
      sendWindow: this.#peerInitialWindow,
      done: false,
    };
    this.#streams.set(id, stream);
    const endStream = body.length === 0 ? FLAG_END_STREAM : 0;
    this.#send(frame(FrameType.Headers, FLAG_END_HEADERS | endStream, id, block));
    if (body.length > 0) this.#sendBody(stream, body).catch((err) => this.#fail(err));
    return promise;
  }

  /** Closes the connection; pending requests reject with `reason`. */
  destroy(reason: Error): void {
    this.#fail(reason);
  }

  /** Closes the connection politely (GOAWAY, then close) once no request is pending. */
  async close(): Promise<void> {
    if (!this.#failure) {
      const payload = new Uint8Array(8);
      new DataView(payload.buffer).setUint32(0, 0);
      this.#send(frame(FrameType.GoAway, 0, 0, payload));
      await this.#writing.catch(() => {});
    }
    this.#fail(new Http2Error("closed", "The HTTP/2 connection was closed"));
    await this.#readDone;
  }

  async #sendBody(stream: StreamState, body: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < body.length) {
      if (stream.done || this.#failure) return;
      const room = Math.min(this.#sendWindow, stream.sendWindow, this.#peerMaxFrameSize);
      if (room <= 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
        continue;
      }
      const chunk = body.subarray(offset, offset + room);
      offset += chunk.length;
      this.#sendWindow -= chunk.length;
      stream.sendWindow -= chunk.length;
      const flags = offset === body.length ? FLAG_END_STREAM : 0;
      this.#send(frame(FrameType.Data, flags, stream.id, chunk));
    }
  }

  #send(bytes: Uint8Array): void {
    this.#writing = this.#writing.then(async () => {
      if (this.#failure) return;
      let written = 0;
      while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
    }).catch((err) => {
      this.#fail(
        new Http2Error("closed", `Cannot write to the HTTP/2 connection: ${err}`, {
          cause: err,
        }),
      );
    });
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    for (const stream of this.#streams.values()) {
      stream.done = true;
      stream.reject(err);
    }
    this.#streams.clear();
    for (const wake of this.#windowWaiters.splice(0)) wake();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** Sends GOAWAY with `code` and fails the connection. */
  #connectionError(code: number, message: string): void {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setUint32(4, code); // last stream id 0: we accept no streams
    const bytes = frame(FrameType.GoAway, 0, 0, payload);
    // Best effort: write directly, the connection is closed right after.
    this.#conn.write(bytes).catch(() => {});
    this.#fail(
      new Http2Error("protocol", `HTTP/2 protocol error (${http2ErrorName(code)}): ${message}`, {
        errorCode: code,
      }),
    );
  }

  async #readLoop(): Promise<void> {
    const reader = new FrameReader(this.#conn);
    let headerBlock:
      | { streamId: number; flags: number; parts: Uint8Array[]; size: number }
      | undefined;
    try {
      while (!this.#failure) {
        const f = await reader.next();
        if (f === null) {
          this.#fail(new Http2Error("closed", "The server closed the HTTP/2 connection"));
          return;
        }
        if (f.length > MAX_FRAME_SIZE) {
          this.#connectionError(FRAME_SIZE_ERROR, `frame of ${f.length} bytes`);
          return;
        }
        if (headerBlock && f.type !== FrameType.Continuation) {
          this.#connectionError(PROTOCOL_ERROR, "expected CONTINUATION");
          return;
        }
        switch (f.type) {
          case FrameType.Settings:
            this.#onSettings(f);
            break;
          case FrameType.Ping:
            if (f.payload.length !== 8) {
              this.#connectionError(FRAME_SIZE_ERROR, "PING payload is not 8 bytes");
              return;
            }
            if (!(f.flags & FLAG_ACK)) this.#send(frame(FrameType.Ping, FLAG_ACK, 0, f.payload));
            break;
          case FrameType.GoAway:
            this.#onGoAway(f);
            break;
          case FrameType.WindowUpdate:
            this.#onWindowUpdate(f);
            break;
          case FrameType.RstStream:
            this.#onRstStream(f);
            break;
          case FrameType.Headers: {
            if (f.streamId === 0) {
              this.#connectionError(PROTOCOL_ERROR, "HEADERS on stream 0");
              return;
            }
            let payload = unpad(f);
            if (payload === undefined) {
              this.#connectionError(PROTOCOL_ERROR, "bad padding");
              return;
            }
            if (f.flags & FLAG_PRIORITY) {
              if (payload.length < 5) {
                this.#connectionError(FRAME_SIZE_ERROR, "short HEADERS with priority");
                return;
              }
              payload = payload.subarray(5);
            }
            // Copies: the reader reuses its buffer for the next frames.
            headerBlock = {
              streamId: f.streamId,
              flags: f.flags,
              parts: [payload.slice()],
              size: payload.length,
            };
            if (f.flags & FLAG_END_HEADERS) {
              this.#onHeaderBlock(headerBlock.streamId, headerBlock.flags, headerBlock.parts);
              headerBlock = undefined;
            }
            break;
          }
          case FrameType.Continuation: {
            if (!headerBlock || f.streamId !== headerBlock.streamId) {
              this.#connectionError(PROTOCOL_ERROR, "unexpected CONTINUATION");
              return;
            }
            headerBlock.parts.push(f.payload.slice());
            headerBlock.size += f.payload.length;
            if (headerBlock.size > MAX_HEADER_BLOCK) {
              this.#connectionError(PROTOCOL_ERROR, "header block too large");
              return;
            }
            if (f.flags & FLAG_END_HEADERS) {
              this.#onHeaderBlock(headerBlock.streamId, headerBlock.flags, headerBlock.parts);
              headerBlock = undefined;
            }
            break;
          }
          case FrameType.Data:
            this.#onData(f);
            break;
          case FrameType.PushPromise:
            this.#connectionError(PROTOCOL_ERROR, "PUSH_PROMISE although push is disabled");
            return;
          default:
            break; // PRIORITY and unknown frame types are ignored (§5.5)
        }
      }
    } catch (err) {
      this.#fail(
        err instanceof Http2Error
          ? err
          : new Http2Error("closed", `Cannot read from the HTTP/2 connection: ${err}`, {
            cause: err,
          }),
      );
    }
  }

  #onSettings(f: Frame): void {
    if (f.streamId !== 0 || f.payload.length % 6 !== 0) {
      this.#connectionError(PROTOCOL_ERROR, "malformed SETTINGS");
      return;
    }
    if (f.flags & FLAG_ACK) return;
    const view = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
    for (let i = 0; i < f.payload.length; i += 6) {
      const id = view.getUint16(i);
      const value = view.getUint32(i + 2);
      if (id === 0x4) {
        if (value > MAX_WINDOW) {
          this.#connectionError(FLOW_CONTROL_ERROR, "initial window too large");
          return;
        }
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
      } else if (id === 0x5) {
        if (value < 16384 || value > 16777215) {
          this.#connectionError(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE");
          return;
        }
        this.#peerMaxFrameSize = value;
      }
    }
    this.#send(frame(FrameType.Settings, FLAG_ACK, 0, new Uint8Array(0)));
    this.#wakeSenders();
  }

  #onGoAway(f: Frame): void {
    if (f.payload.length < 8) {
      this.#connectionError(FRAME_SIZE_ERROR, "short GOAWAY");
      return;
    }
    const view = new DataView(f.payload.buffer, f.payload.byteOffset, f.payload.byteLength);
    const lastStream = view.getUint32(0) & 0x7fffffff;
    const code = view.getUint32(4);
    const debug = new TextDecoder().decode(f.payload.subarray(8));
    this.#goAwayLastStream = Math.min(this.#goAwayLastStream, lastStream);
    const err = new Http2Error(
      "goaway",
      `The server is closing the HTTP/2 connection (GOAWAY ${http2ErrorName(code)}${
        debug ? `: ${debug}` : ""
      })`,
      { errorCode: code },
    );
    for (const [id, stream] of this.#streams) {
      if (id > lastStream) {
        stream.done = true;
        this.#streams.delete(id);
        stream.reject(err);
      }
    }
    if (code !== 0) this.#fail(err);
  }

  #onWindowUpdate(f: Frame): void {
    if (f.payload.length !== 4) {
      this.#connectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes");
      return;
    }
    const increment = new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0) &
      0x7fffffff;
    if (f.streamId === 0) {
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        this.#connectionError(FLOW_CONTROL_ERROR, "connection window overflow");
        return;
      }
    } else {
      const stream = this.#streams.get(f.streamId);
      if (stream) stream.sendWindow += increment;
    }
    this.#wakeSenders();
  }

  #wakeSenders(): void {
    for (const wake of this.#windowWaiters.splice(0)) wake();
  }

  #onRstStream(f: Frame): void {
    if (f.payload.length !== 4) {
      this.#connectionError(FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes");
      return;
    }
    const code = new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0);
    const stream = this.#streams.get(f.streamId);
    if (!stream) return;
    this.#streams.delete(f.streamId);
    stream.done = true;
    stream.reject(
      new Http2Error("reset", `The server reset the HTTP/2 stream (${http2ErrorName(code)})`, {
        errorCode: code,
      }),
    );
    this.#wakeSenders();
  }

  #onHeaderBlock(streamId: number, flags: number, parts: Uint8Array[]): void {
    let headers: HeaderList;
    try {
      // Decode even for unknown streams: the HPACK table is shared by the connection.
      headers = this.#hpack.decode(concat(parts));
    } catch (err) {
      if (err instanceof HpackError) {
        this.#connectionError(COMPRESSION_ERROR, err.message);
        return;
      }
      throw err;
    }
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    if (stream.headers === undefined) {
      stream.headers = headers;
    } else {
      if (!(flags & FLAG_END_STREAM)) {
        this.#resetStream(stream, PROTOCOL_ERROR, "trailers without END_STREAM");
        return;
      }
      stream.trailers = headers;
    }
    if (flags & FLAG_END_STREAM) this.#finish(stream);
  }

  #onData(f: Frame): void {
    if (f.streamId === 0) {
      this.#connectionError(PROTOCOL_ERROR, "DATA on stream 0");
      return;
    }
    const payload = unpad(f);
    if (payload === undefined) {
      this.#connectionError(PROTOCOL_ERROR, "bad padding");
      return;
    }
    const stream = this.#streams.get(f.streamId);
    if (!stream) return;
    if (stream.headers === undefined) {
      this.#resetStream(stream, PROTOCOL_ERROR, "DATA before HEADERS");
      return;
    }
    stream.bodyBytes += payload.length;
    if (stream.bodyBytes > stream.maxBodyBytes) {
      this.#resetStream(
        stream,
        CANCEL,
        `response body larger than ${stream.maxBodyBytes} bytes`,
        "too-large",
      );
      return;
    }
    if (payload.length > 0) stream.chunks.push(payload.slice());
    if (f.flags & FLAG_END_STREAM) this.#finish(stream);
  }

  #finish(stream: StreamState): void {
    this.#streams.delete(stream.id);
    stream.done = true;
    const status = Number(stream.headers?.find(([k]) => k === ":status")?.[1]);
    if (!Number.isInteger(status)) {
      stream.reject(new Http2Error("protocol", "The HTTP/2 response has no :status"));
      return;
    }
    stream.resolve({
      status,
      headers: stream.headers ?? [],
      trailers: stream.trailers,
      body: concat(stream.chunks),
    });
  }

  #resetStream(
    stream: StreamState,
    code: number,
    message: string,
    reason: Http2Error["reason"] = "protocol",
  ): void {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, code);
    this.#send(frame(FrameType.RstStream, 0, stream.id, payload));
    this.#streams.delete(stream.id);
    stream.done = true;
    stream.reject(
      new Http2Error(reason, `Cannot read the HTTP/2 response: ${message}`, {
        errorCode: code,
      }),
    );
  }
}

interface Frame {
  length: number;
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** Reads whole frames from the byte stream. */
class FrameReader {
  #conn: ByteStream;
  #buffer = new Uint8Array(32 * 1024);
  #start = 0;
  #end = 0;

  constructor(conn: ByteStream) {
    this.#conn = conn;
  }

  /** The next frame, or null at a clean end of stream between frames. */
  async next(): Promise<Frame | null> {
    if (!(await this.#fill(9))) {
      if (this.#end === this.#start) return null;
      throw new Http2Error("closed", "The server closed the HTTP/2 connection mid-frame");
    }
    const b = this.#buffer;
    const s = this.#start;
    const length = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
    const type = b[s + 3];
    const flags = b[s + 4];
    const streamId = ((b[s + 5] & 0x7f) << 24 | b[s + 6] << 16 | b[s + 7] << 8 | b[s + 8]) >>> 0;
    if (length > MAX_FRAME_SIZE) {
      // Reported by the caller as FRAME_SIZE_ERROR; the payload is not read.
      this.#start += 9;
      return { length, type, flags, streamId, payload: new Uint8Array(0) };
    }
    if (!(await this.#fill(9 + length))) {
      throw new Http2Error("closed", "The server closed the HTTP/2 connection mid-frame");
    }
    const payload = this.#buffer.subarray(this.#start + 9, this.#start + 9 + length);
    this.#start += 9 + length;
    return { length, type, flags, streamId, payload };
  }

  /** Ensures `n` unread bytes are buffered; false at end of stream. */
  async #fill(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#buffer.length < n) {
        const bigger = new Uint8Array(Math.max(n, this.#buffer.length * 2));
        bigger.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = bigger;
      }
      const read = await this.#conn.read(this.#buffer.subarray(this.#end));
      if (read === null) return false;
      this.#end += read;
    }
    return true;
  }
}

/** The payload without padding (PADDED flag), or undefined when the padding is malformed. */
function unpad(f: Frame): Uint8Array | undefined {
  if (!(f.flags & FLAG_PADDED)) return f.payload;
  if (f.payload.length < 1) return undefined;
  const padLength = f.payload[0];
  if (padLength >= f.payload.length) return undefined;
  return f.payload.subarray(1, f.payload.length - padLength);
}

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  out[0] = (payload.length >> 16) & 0xff;
  out[1] = (payload.length >> 8) & 0xff;
  out[2] = payload.length & 0xff;
  out[3] = type;
  out[4] = flags;
  new DataView(out.buffer).setUint32(5, streamId & 0x7fffffff);
  out.set(payload, 9);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
