/** Tests of the HPACK encoder and decoder against the RFC 7541 Appendix C examples. */

import assert from "node:assert/strict";
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanCode,
  huffmanDecode,
} from "../../src/nfv/_hpack.ts";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("huffmanCode() matches RFC 7541 Appendix B at its edges", () => {
  assert.deepEqual(huffmanCode(0), [0x1ff8, 13]);
  assert.deepEqual(huffmanCode(1), [0x7fffd8, 23]);
  assert.deepEqual(huffmanCode(32), [0x14, 6]); // ' '
  assert.deepEqual(huffmanCode(48), [0x0, 5]); // '0'
  assert.deepEqual(huffmanCode(97), [0x3, 5]); // 'a'
  assert.deepEqual(huffmanCode(255), [0x3ffffee, 26]);
  assert.deepEqual(huffmanCode(256), [0x3fffffff, 30]); // EOS
});

Deno.test("huffmanDecode() decodes the RFC 7541 C.4 and C.6 strings", () => {
  assert.equal(text(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"))), "www.example.com");
  assert.equal(text(huffmanDecode(hex("a8eb 1064 9cbf"))), "no-cache");
  assert.equal(text(huffmanDecode(hex("25a8 49e9 5ba9 7d7f"))), "custom-key");
  assert.equal(text(huffmanDecode(hex("25a8 49e9 5bb8 e8b4 bf"))), "custom-value");
  assert.equal(text(huffmanDecode(hex("6402"))), "302");
  assert.equal(text(huffmanDecode(hex("aec3 771a 4b"))), "private");
  assert.equal(
    text(huffmanDecode(hex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"))),
    "Mon, 21 Oct 2013 20:13:21 GMT",
  );
  assert.equal(
    text(huffmanDecode(hex("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"))),
    "https://www.example.com",
  );
});

Deno.test("huffmanDecode() rejects bad padding and EOS", () => {
  assert.throws(() => huffmanDecode(hex("60")), HpackError); // "/" then zero padding
  assert.throws(() => huffmanDecode(hex("ff ff ff ff")), HpackError); // EOS / overlong
  assert.throws(() => huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff ff")), HpackError);
});

Deno.test("HpackDecoder decodes the RFC 7541 C.3 requests (dynamic table, no Huffman)", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.equal(d.dynamicTableSize, 57);
  assert.deepEqual(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.equal(d.dynamicTableSize, 110);
  assert.deepEqual(
    d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
  assert.equal(d.dynamicTableSize, 164);
  assert.deepEqual(d.dynamicTable, [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ]);
});

Deno.test("HpackDecoder decodes the RFC 7541 C.4 requests (Huffman)", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))[3], [
    ":authority",
    "www.example.com",
  ]);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf"))[4], [
    "cache-control",
    "no-cache",
  ]);
  assert.deepEqual(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))[4],
    ["custom-key", "custom-value"],
  );
  assert.equal(d.dynamicTableSize, 164);
});

Deno.test("HpackDecoder decodes the RFC 7541 C.6 responses with eviction (table of 256)", () => {
  const d = new HpackDecoder(256);
  assert.deepEqual(
    d.decode(hex(
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    )),
    [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["location", "https://www.example.com"],
    ],
  );
  assert.equal(d.dynamicTableSize, 222);
  assert.deepEqual(d.decode(hex("4883 640e ffc1 c0bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  assert.equal(d.dynamicTableSize, 222);
  assert.deepEqual(
    d.decode(hex(
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    )),
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ],
  );
  assert.equal(d.dynamicTableSize, 215);
  assert.equal(d.dynamicTable.length, 3);
});

Deno.test("HpackDecoder applies table size updates and rejects bad blocks", () => {
  const d = new HpackDecoder();
  d.decode(hex("4003 6162 6303 7879 7a")); // abc: xyz, indexed
  assert.equal(d.dynamicTable.length, 1);
  d.decode(hex("20")); // size update to 0 evicts everything
  assert.equal(d.dynamicTable.length, 0);
  assert.throws(() => d.decode(hex("3fe2 1f")), HpackError); // 4097 > limit
  assert.throws(() => d.decode(hex("80")), HpackError); // index 0
  assert.throws(() => d.decode(hex("be")), HpackError); // empty dynamic table
  assert.throws(() => d.decode(hex("8220")), HpackError); // size update after a field
  assert.throws(() => d.decode(hex("0003 6162")), HpackError); // truncated string
});

Deno.test("encodeHeaders() writes literals without indexing that a decoder reads back", () => {
  const headers: [string, string][] = [
    [":method", "POST"],
    [":path", "/v1.PodResourcesLister/List"],
    ["content-type", "application/grpc"],
    ["x-long", "v".repeat(300)],
  ];
  const block = encodeHeaders(headers);
  assert.equal(block[0], 0x00);
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(block), headers);
  assert.equal(d.dynamicTable.length, 0);
});
