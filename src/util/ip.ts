/**
 * @module
 * IP address parsing without `node:net` (whose import costs ~45 ms of plugin start-up):
 * IPv4 dotted quads and IPv6 (RFC 4291 text forms, embedded IPv4 allowed, no zone).
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** 4 for an IPv4 address, 6 for an IPv6 address, 0 otherwise (like `node:net` isIP). */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (IPV4.test(text)) return 4;
  return parseIpv6(text) ? 6 : 0;
}

/** Parses an IP address: 4 bytes for IPv4, 16 for IPv6; undefined when invalid. */
export function parseIp(text: string): number[] | undefined {
  if (IPV4.test(text)) return text.split(".").map(Number);
  return parseIpv6(text);
}

function parseIpv6(text: string): number[] | undefined {
  if (text.includes("%")) return undefined;
  const toWords = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (g.includes(".")) {
        if (i !== groups.length - 1 || !IPV4.test(g)) return undefined;
        const [a, b, c, d] = g.split(".").map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const words: number[] = [];
  const ellipsis = text.indexOf("::");
  if (ellipsis === -1) {
    const all = toWords(text);
    if (all === undefined || all.length !== 8) return undefined;
    words.push(...all);
  } else {
    if (text.indexOf("::", ellipsis + 1) !== -1) return undefined;
    const head = toWords(text.slice(0, ellipsis));
    const tail = toWords(text.slice(ellipsis + 2));
    if (head === undefined || tail === undefined || head.length + tail.length > 7) {
      return undefined;
    }
    words.push(...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail);
  }
  const bytes: number[] = [];
  for (const w of words) bytes.push(w >> 8, w & 0xff);
  return bytes;
}
