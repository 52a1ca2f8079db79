// C2SP tlog-checkpoint: "<origin>\n<size>\n<base64 root>\n" then optional
// non-empty extension lines, signed as a signed-note (verifier/checkpoint.py).
// verifyCheckpoint pins the origin and the key; whether a checkpoint is
// consistent with an earlier one takes a proof (merkle.js verifyConsistency).

import { fromBase64, parseDecimal } from "./bytes.js";
import { MalformedInput, SignatureInvalid } from "./errors.js";
import { HASH_SIZE, verifyInclusion } from "./merkle.js";
import { verifyNote } from "./note.js";

const MAX_ORIGIN_LENGTH = 256;

function hasControl(text) {
  return [...text].some((ch) => ch.codePointAt(0) < 0x20);
}

/** Parse a checkpoint body: { origin, size (BigInt), rootHash, extensions }. */
export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new MalformedInput("checkpoint: body must end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) {
    throw new MalformedInput(`checkpoint: expected at least 3 lines, found ${lines.length}`);
  }
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin || [...origin].length > MAX_ORIGIN_LENGTH) {
    throw new MalformedInput("checkpoint: origin must be 1..256 characters");
  }
  if (hasControl(origin)) throw new MalformedInput("checkpoint: control character in origin");
  const size = parseDecimal(sizeText, "checkpoint size");
  const rootHash = fromBase64(rootText, "checkpoint root");
  if (rootHash.length !== HASH_SIZE) {
    throw new MalformedInput(
      `checkpoint: root must be ${HASH_SIZE} bytes, found ${rootHash.length}`,
    );
  }
  for (const line of extensions) {
    if (!line || hasControl(line)) {
      throw new MalformedInput("checkpoint: extension lines must be non-empty text");
    }
  }
  return { origin, size, rootHash, extensions, text };
}

/**
 * Verify a signed checkpoint (bytes) against a pinned log key and origin:
 * (1) the note carries a valid signature by ``key``; (2) its text is a
 * well-formed checkpoint; (3) the origin is exactly the pinned one. Resolves
 * to { checkpoint, note, verified } (verified: every key of ``others`` whose
 * signature, a witness's cosignature, checked out too).
 */
export async function verifyCheckpoint(data, key, origin, others = []) {
  const { note, verified } = await verifyNote(data, [key, ...others]);
  if (!verified.some((v) => v.key === key)) {
    throw new SignatureInvalid(`checkpoint: no signature by the log's key ${key}`);
  }
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== origin) {
    throw new SignatureInvalid(
      `checkpoint: origin ${JSON.stringify(checkpoint.origin)}, expected ${JSON.stringify(origin)}`,
    );
  }
  return { checkpoint, note, verified: verified.filter((v) => v.key !== key) };
}

/**
 * A signed checkpoint, then that ``leafHash`` is leaf ``index`` in it. The
 * size is the signed one, never the caller's: a proof alone binds no size.
 */
export async function verifyInclusionInCheckpoint(data, key, origin, index, leafHash, proof) {
  const { checkpoint } = await verifyCheckpoint(data, key, origin);
  await verifyInclusion(index, checkpoint.size, leafHash, proof, checkpoint.rootHash);
  return checkpoint;
}

/**
 * A witness policy: the witnesses' cosigner keys (type 0x04) and how many of
 * them must have cosigned. Throws MalformedInput on a log key among them or
 * an impossible quorum.
 */
export function witnessPolicy(witnesses = [], quorum = 0) {
  for (const key of witnesses) {
    if (!key.isCosigner) {
      throw new MalformedInput(`witness key ${key.name}: expected a cosignature/v1 key (type 0x04)`);
    }
  }
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length) {
    throw new MalformedInput(`witness policy: need 0 <= quorum <= ${witnesses.length}, found ${quorum}`);
  }
  return Object.freeze({ witnesses: [...witnesses], quorum });
}

/**
 * The log's signature, the origin, then at least ``policy.quorum`` of the
 * pinned witnesses (verifier/cosignature.py verify_cosigned). Resolves to
 * { checkpoint, note, cosigned: Map(witness name -> timestamp BigInt) }.
 */
export async function verifyCosigned(data, logKey, origin, policy = witnessPolicy()) {
  const { checkpoint, note, verified } = await verifyCheckpoint(data, logKey, origin, policy.witnesses);
  const cosigned = new Map(verified.map((v) => [v.key.name, v.timestamp]));
  if (cosigned.size < policy.quorum) {
    const missing = policy.witnesses.map((k) => k.name).filter((n) => !cosigned.has(n));
    throw new SignatureInvalid(
      `checkpoint: cosigned by ${cosigned.size} of the pinned witnesses, the policy needs ` +
        `${policy.quorum} (missing: ${missing.join(", ")})`,
    );
  }
  return { checkpoint, note, cosigned };
}
