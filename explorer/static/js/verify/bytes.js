// Strict byte encodings shared by the note formats (verifier/_encoding.py).

import { MalformedInput } from "./errors.js";

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX = /^([0-9a-f]{2})*$/;
export const MAX_UINT63 = (1n << 63n) - 1n;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8(text) {
  return encoder.encode(text);
}

/** UTF-8 bytes to text; invalid UTF-8 is refused, never replaced. */
export function fromUtf8(bytes, what) {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new MalformedInput(`${what}: not valid UTF-8`);
  }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Lowercase hex, even length. */
export function fromHex(text, what = "hex") {
  if (typeof text !== "string" || !HEX.test(text)) {
    throw new MalformedInput(`${what}: expected lowercase hex`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Standard padded base64, refusing any non-canonical spelling. */
export function fromBase64(text, what) {
  if (typeof text !== "string" || !B64.test(text) || text.length % 4) {
    throw new MalformedInput(
      `${what}: expected canonical base64, found ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  let binary;
  try {
    binary = atob(text);
  } catch {
    throw new MalformedInput(`${what}: invalid base64`);
  }
  const out = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (toBase64(out) !== text) {
    throw new MalformedInput(`${what}: non-canonical base64`);
  }
  return out;
}

/** A decimal with no sign, no leading zeros and no spaces, as a BigInt. */
export function parseDecimal(text, what, maximum = MAX_UINT63) {
  if (!DECIMAL.test(text)) {
    throw new MalformedInput(
      `${what}: expected a decimal number, found ${JSON.stringify(text.slice(0, 40))}`,
    );
  }
  const value = BigInt(text);
  if (value > maximum) throw new MalformedInput(`${what}: ${value} exceeds ${maximum}`);
  return value;
}
