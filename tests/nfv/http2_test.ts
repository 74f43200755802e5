/**
 * Tests of the minimal HTTP/2 client against scripted servers on a unix socket (frame by
 * frame: padding, CONTINUATION, PING, SETTINGS, flow control, RST_STREAM, GOAWAY) and
 * against `node:http2` (a full implementation using Huffman coding and the dynamic table).
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import { join } from "node:path";
import { encodeHeaders } from "../../src/nfv/_hpack.ts";
import { Http2Client, Http2Error } from "../../src/nfv/_http2.ts";

interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

/** The server side of one connection, frame by frame. */
class ServerConn {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  /** Every frame the client sent, in order. */
  readonly received: RawFrame[] = [];

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #need(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(65536);
      const read = await this.#conn.read(chunk).catch(() => null);
      if (read === null) return false;
      const next = new Uint8Array(this.#buf.length + read);
      next.set(this.#buf);
      next.set(chunk.subarray(0, read), this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  async preface(): Promise<void> {
    assert.ok(await this.#need(24));
    assert.equal(
      new TextDecoder().decode(this.#buf.subarray(0, 24)),
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    );
    this.#buf = this.#buf.subarray(24);
  }

  /** The next frame from the client (null at EOF). */
  async frame(): Promise<RawFrame | null> {
    if (!(await this.#need(9))) return null;
    const b = this.#buf;
    const length = (b[0] << 16) | (b[1] << 8) | b[2];
    if (!(await this.#need(9 + length))) return null;
    const f = {
      type: this.#buf[3],
      flags: this.#buf[4],
      streamId: new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(5) & 0x7fffffff,
      payload: this.#buf.slice(9, 9 + length),
    };
    this.#buf = this.#buf.subarray(9 + length);
    this.received.push(f);
    return f;
  }

  /** Reads frames until one of `type` (with `flags` set, if given) arrives. */
  async until(type: number, flags = 0): Promise<RawFrame> {
    while (true) {
      const f = await this.frame();
      if (f === null) throw new Error(`connection closed before frame type ${type}`);
      if (f.type === type && (f.flags & flags) === flags) return f;
    }
  }

  async send(type: number, flags: number, streamId: number, payload: Uint8Array): Promise<void> {
    const out = new Uint8Array(9 + payload.length);
    out[0] = payload.length >> 16;
    out[1] = (payload.length >> 8) & 0xff;
    out[2] = payload.length & 0xff;
    out[3] = type;
    out[4] = flags;
    new DataView(out.buffer).setUint32(5, streamId);
    out.set(payload, 9);
    await this.#conn.write(out);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // closed
    }
  }
}

/** Runs `script` as the server of one connection; returns a connected client. */
async function scripted(
  script: (server: ServerConn) => Promise<void>,
): Promise<{ client: Http2Client; done: Promise<ServerConn>; cleanup(): Promise<void> }> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "h2.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const conn = await Deno.connect({ transport: "unix", path });
  const client = Http2Client.start(conn);
  const done = accepted.then(async (c) => {
    const server = new ServerConn(c);
    await server.preface();
    await script(server);
    return server;
  });
  return {
    client,
    done,
    async cleanup() {
      await done.then((s) => s.close(), () => {});
      listener.close();
      await client.close().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const SETTINGS = 0x4, HEADERS = 0x1, DATA = 0x0, CONTINUATION = 0x9, PING = 0x6, RST = 0x3;
const GOAWAY = 0x7, WINDOW_UPDATE = 0x8;
const REQUEST: [string, string][] = [[":method", "POST"], [":path", "/x"], [":scheme", "http"]];

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

Deno.test("Http2Client reads padded HEADERS with CONTINUATION, padded DATA and trailers, answering SETTINGS and PING", async () => {
  const s = await scripted(async (server) => {
    await server.until(HEADERS);
    await server.send(SETTINGS, 0, 0, new Uint8Array(0));
    await server.send(PING, 0, 0, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const block = encodeHeaders([[":status", "200"], ["content-type", "application/grpc"]]);
    // HEADERS: PADDED (pad 3) + PRIORITY, first 5 bytes of the block; then CONTINUATION.
    const first = new Uint8Array(1 + 5 + 5 + 3);
    first[0] = 3;
    first.set(block.subarray(0, 5), 6);
    await server.send(HEADERS, 0x8 | 0x20, 1, first);
    await server.send(CONTINUATION, 0x4, 1, block.subarray(5));
    const data = Uint8Array.from([2, 104, 105, 0, 0]); // pad length 2, "hi", padding
    await server.send(DATA, 0x8, 1, data);
    await server.send(DATA, 0, 1, new TextEncoder().encode("!"));
    await server.send(HEADERS, 0x4 | 0x1, 1, encodeHeaders([["grpc-status", "0"]]));
    await server.until(PING, 0x1);
  });
  try {
    const response = await s.client.request(REQUEST, new Uint8Array([9, 9]));
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers, [[":status", "200"], ["content-type", "application/grpc"]]);
    assert.deepEqual(response.trailers, [["grpc-status", "0"]]);
    assert.equal(new TextDecoder().decode(response.body), "hi!");
    const server = await s.done;
    const ping = server.received.find((f) => f.type === PING)!;
    assert.equal(ping.flags, 1);
    assert.deepEqual([...ping.payload], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(server.received.some((f) => f.type === SETTINGS && f.flags === 1), "SETTINGS ACK");
    const data = server.received.find((f) => f.type === DATA)!;
    assert.deepEqual([...data.payload], [9, 9]);
    assert.equal(data.flags & 1, 1, "END_STREAM on the request body");
  } finally {
    await s.cleanup();
  }
});

Deno.test("Http2Client waits for WINDOW_UPDATE before sending more than the peer's window", async () => {
  const acked = Promise.withResolvers<void>();
  const s = await scripted(async (server) => {
    const settings = new Uint8Array(6);
    new DataView(settings.buffer).setUint16(0, 0x4);
    new DataView(settings.buffer).setUint32(2, 10); // INITIAL_WINDOW_SIZE 10
    await server.send(SETTINGS, 0, 0, settings);
    await server.until(SETTINGS, 0x1);
    acked.resolve(); // the client has applied the window of 10
    await server.until(HEADERS);
    const first = await server.until(DATA);
    assert.equal(first.payload.length, 10);
    await server.send(WINDOW_UPDATE, 0, 1, u32(100));
    const second = await server.until(DATA);
    assert.equal(second.payload.length, 15);
    assert.equal(second.flags & 1, 1);
    await server.send(HEADERS, 0x5, 1, encodeHeaders([[":status", "204"]]));
  });
  try {
    await acked.promise;
    const response = await s.client.request(REQUEST, new Uint8Array(25));
    assert.equal(response.status, 204);
    await s.done;
  } finally {
    await s.cleanup();
  }
});

Deno.test("Http2Client rejects a request the server resets", async () => {
  const s = await scripted(async (server) => {
    await server.until(HEADERS);
    await server.send(RST, 0, 1, u32(0x7));
  });
  try {
    await assert.rejects(s.client.request(REQUEST, new Uint8Array(0)), (err: unknown) => {
      assert.ok(err instanceof Http2Error);
      assert.equal(err.reason, "reset");
      assert.equal(err.errorCode, 7);
      assert.match(err.message, /REFUSED_STREAM/);
      return true;
    });
  } finally {
    await s.cleanup();
  }
});

Deno.test("Http2Client rejects pending requests on GOAWAY and on a closed connection", async () => {
  const s = await scripted(async (server) => {
    await server.until(HEADERS);
    const payload = new Uint8Array(8 + 4);
    new DataView(payload.buffer).setUint32(4, 0x2);
    payload.set(new TextEncoder().encode("bye!"), 8);
    await server.send(GOAWAY, 0, 0, payload);
  });
  try {
    await assert.rejects(s.client.request(REQUEST, new Uint8Array(0)), (err: unknown) => {
      assert.ok(err instanceof Http2Error);
      assert.equal(err.reason, "goaway");
      assert.match(err.message, /INTERNAL_ERROR.*bye!/);
      return true;
    });
  } finally {
    await s.cleanup();
  }

  const t = await scripted(async (server) => {
    await server.until(HEADERS);
    await server.send(HEADERS, 0x4, 1, encodeHeaders([[":status", "200"]]));
    server.close();
  });
  try {
    await assert.rejects(t.client.request(REQUEST, new Uint8Array(0)), (err: unknown) => {
      assert.ok(err instanceof Http2Error);
      assert.equal(err.reason, "closed");
      return true;
    });
  } finally {
    await t.cleanup();
  }
});

Deno.test("Http2Client cancels a response larger than the limit", async () => {
  const s = await scripted(async (server) => {
    await server.until(HEADERS);
    await server.send(HEADERS, 0x4, 1, encodeHeaders([[":status", "200"]]));
    await server.send(DATA, 0, 1, new Uint8Array(1000));
    await server.send(DATA, 0, 1, new Uint8Array(1000));
    const rst = await server.until(RST);
    assert.deepEqual([...rst.payload], [0, 0, 0, 8]); // CANCEL
  });
  try {
    await assert.rejects(
      s.client.request(REQUEST, new Uint8Array(0), { maxBodyBytes: 1500 }),
      (err: unknown) => err instanceof Http2Error && err.reason === "too-large",
    );
    await s.done;
  } finally {
    await s.cleanup();
  }
});

Deno.test("Http2Client fails the connection on a protocol error and on destroy()", async () => {
  const s = await scripted(async (server) => {
    await server.until(HEADERS);
    await server.send(0x5, 0x4, 1, new Uint8Array(4)); // PUSH_PROMISE although disabled
    await server.until(GOAWAY);
  });
  try {
    await assert.rejects(s.client.request(REQUEST, new Uint8Array(0)), /PROTOCOL_ERROR/);
    await s.done;
  } finally {
    await s.cleanup();
  }

  const t = await scripted(async (server) => {
    await server.until(HEADERS);
  });
  try {
    const pending = t.client.request(REQUEST, new Uint8Array(0));
    await t.done;
    t.client.destroy(new Error("deadline"));
    await assert.rejects(pending, /deadline/);
    await assert.rejects(t.client.request(REQUEST, new Uint8Array(0)), /deadline/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("Http2Client talks to node:http2 (Huffman and indexed headers, two streams)", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "node-h2.sock");
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.respond({
      ":status": 200,
      "content-type": "application/grpc",
      "x-date": "Mon, 21 Oct 2013 20:13:21 GMT",
      "x-path": String(headers[":path"]),
    }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-end": "done" }));
    stream.end(new TextEncoder().encode(`echo ${headers[":path"]}`));
  });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  const client = Http2Client.start(await Deno.connect({ transport: "unix", path }));
  try {
    for (const p of ["/one", "/two"]) {
      const response = await client.request(
        [[":method", "POST"], [":path", p], [":scheme", "http"], [":authority", "localhost"]],
        new Uint8Array(3),
      );
      assert.equal(response.status, 200);
      const get = (k: string) => response.headers.find(([n]) => n === k)?.[1];
      assert.equal(get("x-date"), "Mon, 21 Oct 2013 20:13:21 GMT");
      assert.equal(get("x-path"), p);
      assert.deepEqual(response.trailers.find(([n]) => n === "x-end"), ["x-end", "done"]);
      assert.equal(new TextDecoder().decode(response.body), `echo ${p}`);
    }
  } finally {
    await client.close();
    await new Promise((resolve) => server.close(resolve));
    await Deno.remove(dir, { recursive: true });
  }
});
