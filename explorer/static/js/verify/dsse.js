// DSSE v1 (verifier/dsse.py): each signature covers the pre-authentication
// encoding PAE = "DSSEv1" SP len(type) SP type SP len(payload) SP payload. A
// Saksi key ID is the hex SHA-256 of the Ed25519 public key.

import { concat, fromBase64, toHex, utf8 } from "./bytes.js";
import { SignatureInvalid } from "./errors.js";
import { sha256 } from "./merkle.js";
import { ed25519Verify } from "./note.js";

export function pae(payloadType, payload) {
  const kind = utf8(payloadType);
  return concat(utf8(`DSSEv1 ${kind.length} `), kind, utf8(` ${payload.length} `), payload);
}

/**
 * Resolves if ``sig`` (base64) by the key ``keyid`` names is a signature of
 * (payloadType, payload) under ``publicKey`` (32 bytes), and ``keyid`` is that
 * key's ID; throws SignatureInvalid otherwise.
 */
export async function verifyEnvelopeSignature(payloadType, payload, keyid, sig, publicKey) {
  if (publicKey.length !== 32 || toHex(await sha256(publicKey)) !== keyid) {
    throw new SignatureInvalid(`key ${keyid.slice(0, 16)}…: the registry's key does not have this ID`);
  }
  const signature = fromBase64(sig, "envelope signature");
  if (signature.length !== 64 || !(await ed25519Verify(publicKey, signature, pae(payloadType, payload)))) {
    throw new SignatureInvalid(`the record's signature by ${keyid.slice(0, 16)}… does not verify`);
  }
}
