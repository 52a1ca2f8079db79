// C2SP tlog-tiles paths and the entry bundle format (verifier/tile_format.py).

import { MalformedInput } from "./errors.js";

export const TILE_WIDTH = 256n;

/** 1234067 -> "x001/x234/067": three digits a segment, "x" before all but the last. */
export function encodeIndex(n) {
  n = BigInt(n);
  if (n < 0n) throw new MalformedInput(`tile index ${n} is negative`);
  const parts = [];
  do {
    parts.unshift((n % 1000n).toString().padStart(3, "0"));
    n /= 1000n;
  } while (n > 0n);
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join("/");
}

/** The path of tile (level, n), partial when width < 256. */
export function tilePath(level, n, width = 256) {
  const partial = BigInt(width) < TILE_WIDTH ? `.p/${width}` : "";
  return `tile/${level}/${encodeIndex(n)}${partial}`;
}

/** The path of entry bundle n, partial when width < 256. */
export function entriesPath(n, width = 256) {
  const partial = BigInt(width) < TILE_WIDTH ? `.p/${width}` : "";
  return `tile/entries/${encodeIndex(n)}${partial}`;
}

/** An entry bundle's entries: each a big-endian u16 length, then its bytes. */
export function parseEntryBundle(data, expected) {
  const entries = [];
  let at = 0;
  while (at < data.length) {
    if (at + 2 > data.length) throw new MalformedInput("entry bundle: truncated length");
    const length = (data[at] << 8) | data[at + 1];
    at += 2;
    if (at + length > data.length) throw new MalformedInput("entry bundle: truncated entry");
    entries.push(data.subarray(at, at + length));
    at += length;
  }
  if (expected !== undefined && entries.length !== expected) {
    throw new MalformedInput(
      `entry bundle: expected ${expected} entries, found ${entries.length}`,
    );
  }
  return entries;
}
