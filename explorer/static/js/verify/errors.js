// Typed verification errors, as verifier/errors.py names them. A verify
// function resolves to a value or throws one of these: never returns false.

export class VerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** The bytes are not in the format they claim (and so prove nothing). */
export class MalformedInput extends VerificationError {}

/** A signature by a pinned key does not verify, or no pinned key signed. */
export class SignatureInvalid extends VerificationError {}

/** A Merkle proof does not lead to the root it must. */
export class ProofInvalid extends VerificationError {}

/** Two views of one log that cannot both be true: the evidence of a fork. */
export class Inconsistent extends VerificationError {}

/** This browser cannot check what is asked (no Ed25519 in its WebCrypto). */
export class Unsupported extends VerificationError {}
