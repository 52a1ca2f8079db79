// C2SP signed-note: parse and verify notes; note verifier keys. The browser's
// twin of verifier/note.py, with the same limits (those of Go's sumdb/note):
// at most 100 signature lines, no control characters but newline, canonical
// base64. Signature lines of keys the caller did not name are ignored; a named
// key whose signature fails rejects the whole note.
//
// Key types: 0x01 Ed25519 (a log's key: signs the text); 0x04 cosignature/v1
// (C2SP tlog-cosignature, a witness's key: a big-endian u64 timestamp, then an
// Ed25519 signature over "cosignature/v1\ntime <t>\n" and the text). Ed25519
// is WebCrypto's: a browser without it gets Unsupported, never a pass.

import { concat, equal, fromBase64, fromUtf8, toBase64, toHex, utf8 } from "./bytes.js";
import { MalformedInput, SignatureInvalid, Unsupported } from "./errors.js";
import { sha256 } from "./merkle.js";

export const KEY_TYPE_ED25519 = 0x01;
export const KEY_TYPE_COSIGNATURE_V1 = 0x04;
const KEY_SIZES = new Map([
  [KEY_TYPE_ED25519, 32],
  [KEY_TYPE_COSIGNATURE_V1, 32],
]);
const COSIGNATURE_SIZE = 8 + 64;
export const MAX_NOTE_SIZE = 1 << 20;
export const MAX_SIGNATURES = 100;
const SIG_PREFIX = "\u2014 ";
// What Python's str.isspace() calls a space (the Python verifier's rule).
const SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/** SHA-256(name || 0x0A || type || key)[:4]. */
export async function computeKeyId(name, keyType, publicKey) {
  const digest = await sha256(concat(utf8(name), Uint8Array.of(0x0a, keyType), publicKey));
  return digest.subarray(0, 4);
}

export function cosignatureMessage(text, timestamp) {
  return utf8(`cosignature/v1\ntime ${timestamp}\n${text}`);
}

function checkName(name, what) {
  if (!name || name.includes("+") || SPACE.test(name)) {
    throw new MalformedInput(`${what}: invalid key name ${JSON.stringify(name.slice(0, 40))}`);
  }
  if ([...name].some((ch) => ch.codePointAt(0) < 0x20)) {
    throw new MalformedInput(`${what}: control character in key name`);
  }
}

export async function ed25519Verify(publicKey, signature, message) {
  let key;
  try {
    key = await globalThis.crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch (e) {
    if (e && e.name === "NotSupportedError") {
      throw new Unsupported("this browser's WebCrypto has no Ed25519: it cannot check signatures");
    }
    return false; // a key WebCrypto refuses (not a point on the curve) verifies nothing
  }
  try {
    return await globalThis.crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

/** A public note verifier key: who (name), which key (ID), how (type), the key. */
export class VerifierKey {
  constructor(name, keyId, keyType, publicKey) {
    this.name = name;
    this.keyId = keyId;
    this.keyType = keyType;
    this.publicKey = publicKey;
    Object.freeze(this);
  }

  /** Parse ``<name>+<hex key ID>+<base64(type || key)>``. */
  static async parse(text) {
    if (typeof text !== "string") throw new MalformedInput("verifier key: expected text");
    const first = text.indexOf("+");
    const second = first < 0 ? -1 : text.indexOf("+", first + 1);
    if (second < 0) throw new MalformedInput("verifier key: expected <name>+<key ID>+<key>");
    const name = text.slice(0, first);
    const idHex = text.slice(first + 1, second);
    checkName(name, "verifier key");
    if (!/^[0-9a-f]{8}$/.test(idHex)) {
      throw new MalformedInput(`verifier key: bad key ID ${JSON.stringify(idHex.slice(0, 16))}`);
    }
    const raw = fromBase64(text.slice(second + 1), "verifier key");
    if (!raw.length) throw new MalformedInput("verifier key: empty key");
    const keyType = raw[0];
    const publicKey = raw.slice(1);
    const size = KEY_SIZES.get(keyType);
    if (size === undefined) {
      throw new MalformedInput(
        `verifier key: unsupported key type 0x${keyType.toString(16).padStart(2, "0")}`,
      );
    }
    if (publicKey.length !== size) {
      throw new MalformedInput(
        `verifier key: expected a ${size}-byte key, found ${publicKey.length}`,
      );
    }
    const keyId = await computeKeyId(name, keyType, publicKey);
    if (toHex(keyId) !== idHex) {
      throw new MalformedInput("verifier key: key ID does not match name and key");
    }
    return new VerifierKey(name, keyId, keyType, publicKey);
  }

  toString() {
    return `${this.name}+${toHex(this.keyId)}+${toBase64(concat(Uint8Array.of(this.keyType), this.publicKey))}`;
  }

  get isCosigner() {
    return this.keyType === KEY_TYPE_COSIGNATURE_V1;
  }

  /**
   * Check this key's signature (as on its signature line) on ``message`` (the
   * note's text as bytes). Resolves to the cosignature's timestamp (a BigInt)
   * for a cosigner, null for a log key; throws SignatureInvalid.
   */
  async verify(message, signature) {
    let signed = message;
    let timestamp = null;
    if (this.keyType === KEY_TYPE_COSIGNATURE_V1) {
      if (signature.length !== COSIGNATURE_SIZE) {
        throw new SignatureInvalid(
          `cosignature by ${this.name}: expected ${COSIGNATURE_SIZE} bytes, found ${signature.length}`,
        );
      }
      timestamp = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
      if (timestamp >= 1n << 63n) {
        throw new SignatureInvalid(`cosignature by ${this.name}: bad timestamp`);
      }
      signed = cosignatureMessage(fromUtf8(message, "note"), timestamp);
      signature = signature.subarray(8);
    }
    const valid = signature.length === 64 && (await ed25519Verify(this.publicKey, signature, signed));
    if (!valid) {
      throw new SignatureInvalid(`invalid signature for key ${this}`);
    }
    return timestamp;
  }
}

function checkText(text) {
  if (!text.endsWith("\n")) throw new MalformedInput("note: text must end with a newline");
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code < 0x20 && ch !== "\n") {
      throw new MalformedInput(`note: control character 0x${code.toString(16).padStart(2, "0")} in text`);
    }
  }
}

/** Parse a signed note (bytes) without checking any signature. */
export function parseNote(data) {
  if (!(data instanceof Uint8Array)) throw new MalformedInput("note: expected bytes");
  if (data.length > MAX_NOTE_SIZE) {
    throw new MalformedInput(`note: ${data.length} bytes exceeds ${MAX_NOTE_SIZE}`);
  }
  const message = fromUtf8(data, "note");
  const split = message.lastIndexOf("\n\n");
  if (split < 0) throw new MalformedInput("note: no blank line before the signatures");
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  checkText(text);
  if (!block || !block.endsWith("\n")) {
    throw new MalformedInput("note: signature block missing or not newline-terminated");
  }
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) {
    throw new MalformedInput(`note: more than ${MAX_SIGNATURES} signatures`);
  }
  const signatures = [];
  const seen = new Set();
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) {
      throw new MalformedInput(`note: not a signature line: ${JSON.stringify(line.slice(0, 40))}`);
    }
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) throw new MalformedInput("note: signature line without a signature");
    const name = rest.slice(0, space);
    checkName(name, "note signature");
    const raw = fromBase64(rest.slice(space + 1), "note signature");
    if (raw.length < 5) throw new MalformedInput("note: signature too short");
    const keyId = raw.slice(0, 4);
    const id = `${name}+${toHex(keyId)}`;
    if (seen.has(id)) throw new MalformedInput(`note: two signatures by ${id}`);
    seen.add(id);
    signatures.push({ name, keyId, signature: raw.slice(4) });
  }
  return { text, signatures };
}

/**
 * Parse a note and check the signatures of the given keys. Resolves to
 * { note, verified: [{ key, timestamp }] } with at least one verified key.
 */
export async function verifyNote(data, keys) {
  const note = parseNote(data);
  const message = utf8(note.text);
  const verified = [];
  for (const sig of note.signatures) {
    const key = keys.find((k) => k.name === sig.name && equal(k.keyId, sig.keyId));
    if (!key) continue; // an unknown signer is ignored, as the spec requires
    verified.push({ key, timestamp: await key.verify(message, sig.signature) });
  }
  if (!verified.length) throw new SignatureInvalid("note has no verifiable signatures");
  return { note, verified };
}
