// C2SP tlog-proof@v1, the offline proof of one entry (verifier/tlog_proof.py):
//
//   c2sp.org/tlog-proof@v1
//   extra <base64>        (optional; Saksi puts the log entry itself here)
//   index <decimal>
//   <base64 hash>...      (the inclusion proof)
//                         (an empty line)
//   <the signed checkpoint, cosignatures included>

import { fromBase64, parseDecimal } from "./bytes.js";
import { verifyCosigned } from "./checkpoint.js";
import { MalformedInput } from "./errors.js";
import { MAX_PROOF_HASHES, verifyInclusion } from "./merkle.js";
import { MAX_NOTE_SIZE } from "./note.js";

export const HEADER = "c2sp.org/tlog-proof@v1";
const MAX_EXTRA = 1 << 17;
const MAX_PROOF_FILE = MAX_NOTE_SIZE + MAX_EXTRA + 8 * 1024;

/** Parse a proof file (bytes): { index (BigInt), proof, checkpoint (bytes), extra }. */
export function parseTlogProof(data) {
  if (!(data instanceof Uint8Array)) throw new MalformedInput("tlog-proof: expected bytes");
  if (data.length > MAX_PROOF_FILE) throw new MalformedInput(`tlog-proof: ${data.length} bytes is too large`);
  let split = -1;
  for (let i = 0; i + 1 < data.length; i++) {
    if (data[i] === 0x0a && data[i + 1] === 0x0a) {
      split = i;
      break;
    }
  }
  if (split < 0 || split + 2 >= data.length) {
    throw new MalformedInput("tlog-proof: no empty line before the checkpoint");
  }
  const head = data.subarray(0, split);
  if (head.some((b) => b > 0x7f)) {
    throw new MalformedInput("tlog-proof: the lines before the checkpoint must be ASCII");
  }
  const lines = String.fromCharCode(...head).split("\n");
  if (lines[0] !== HEADER) throw new MalformedInput(`tlog-proof: first line must be ${JSON.stringify(HEADER)}`);
  const rest = lines.slice(1);
  let extra = null;
  if (rest.length && rest[0].startsWith("extra ")) {
    extra = fromBase64(rest.shift().slice("extra ".length), "tlog-proof extra");
    if (extra.length > MAX_EXTRA) throw new MalformedInput("tlog-proof: extra data too large");
  }
  if (!rest.length || !rest[0].startsWith("index ")) {
    throw new MalformedInput("tlog-proof: expected an 'index <n>' line");
  }
  const index = parseDecimal(rest.shift().slice("index ".length), "tlog-proof index");
  if (rest.length > MAX_PROOF_HASHES) throw new MalformedInput(`tlog-proof: more than ${MAX_PROOF_HASHES} hashes`);
  const proof = rest.map((line, n) => {
    const hash = fromBase64(line, `tlog-proof hash ${n}`);
    if (hash.length !== 32) {
      throw new MalformedInput(`tlog-proof hash ${n}: expected 32 bytes, found ${hash.length}`);
    }
    return hash;
  });
  return { index, proof, checkpoint: data.subarray(split + 2), extra };
}

/**
 * The checkpoint under the pinned key and policy, then that ``leafHash`` is
 * entry ``index`` in it. Resolves to { checkpoint, note, cosigned }.
 * ``verified`` (note text -> that result) keeps each note's verification, for
 * a reader whose proofs mostly come with the same checkpoint.
 */
export async function verifyTlogProof(parsed, leafHash, logKey, origin, policy, verified = new Map()) {
  const text = new TextDecoder().decode(parsed.checkpoint);
  let out = verified.get(text);
  if (!out) {
    out = await verifyCosigned(parsed.checkpoint, logKey, origin, policy);
    verified.set(text, out);
  }
  await verifyInclusion(parsed.index, out.checkpoint.size, leafHash, parsed.proof, out.checkpoint.rootHash);
  return out;
}
