import assert from "node:assert/strict";
import { cancellableDeadline, UnixHttpError, unixHttpRequest } from "./unix_http.ts";

/** A raw unix-socket server answering each connection with `answer(requestText)`. */
async function rawServer(answer: (conn: Deno.Conn) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      answer(conn).catch(() => {});
    }
  })().catch(() => {});
  return {
    path,
    async close() {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      listener.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function readUntil(conn: Deno.Conn, marker: string): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes(marker)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

const write = (conn: Deno.Conn, text: string) => conn.write(new TextEncoder().encode(text));

function request(path: string, body = "hello", timeouts = { accept: 2000, response: 2000 }) {
  return unixHttpRequest({
    socketPath: path,
    method: "POST",
    path: "/cni",
    body: new TextEncoder().encode(body),
    acceptTimeoutMs: timeouts.accept,
    responseTimeoutMs: timeouts.response,
    deadline: cancellableDeadline,
  });
}

Deno.test("unixHttpRequest() sends the body after 100 Continue and reads a chunked answer", async () => {
  const server = await rawServer(async (conn) => {
    const head = await readUntil(conn, "\r\n\r\n");
    assert.match(head, /^POST \/cni HTTP\/1\.1\r\n/);
    assert.match(head, /Expect: 100-continue/);
    assert.match(head, /Connection: close/);
    await write(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    await readUntil(conn, "hello");
    await write(
      conn,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    conn.close();
  });
  try {
    const res = await request(server.path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-a"), "b");
    assert.equal(new TextDecoder().decode(res.body), "abcde");
  } finally {
    await server.close();
  }
});

Deno.test("unixHttpRequest() takes an answer that comes before 100 Continue, with Content-Length", async () => {
  const server = await rawServer(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await write(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  });
  try {
    const res = await request(server.path);
    assert.equal(res.status, 503);
    assert.equal(new TextDecoder().decode(res.body), "busy");
  } finally {
    await server.close();
  }
});

Deno.test("unixHttpRequest() says how far a failed exchange got", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    request(`${dir}/none.sock`),
    (err) => err instanceof UnixHttpError && err.stage === "connect" && err.reason === "not-found",
  );
  await Deno.remove(dir);

  const silent = await rawServer(async () => {});
  try {
    await assert.rejects(
      request(silent.path, "x", { accept: 100, response: 2000 }),
      (err) => err instanceof UnixHttpError && err.stage === "accept" && err.reason === "timeout",
    );
  } finally {
    await silent.close();
  }

  const took = await rawServer(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await write(conn, "HTTP/1.1 100 Continue\r\n\r\n");
  });
  try {
    await assert.rejects(
      request(took.path, "x", { accept: 2000, response: 100 }),
      (err) => err instanceof UnixHttpError && err.stage === "response" && err.reason === "timeout",
    );
  } finally {
    await took.close();
  }

  const hangsUp = await rawServer(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await write(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    await readUntil(conn, "x");
    conn.close();
  });
  try {
    await assert.rejects(
      request(hangsUp.path, "x"),
      (err) => err instanceof UnixHttpError && err.stage === "response" && err.reason === "closed",
    );
  } finally {
    await hangsUp.close();
  }

  const garbage = await rawServer(async (conn) => {
    await readUntil(conn, "\r\n\r\n");
    await write(conn, "SSH-2.0-x\r\n\r\n");
  });
  try {
    await assert.rejects(
      request(garbage.path),
      (err) => err instanceof UnixHttpError && err.reason === "malformed",
    );
  } finally {
    await garbage.close();
  }
});
