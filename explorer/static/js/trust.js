// What the page proves before it shows anything as verified, and the evidence
// it keeps when a proof fails. Network reads come in through ``get`` (a path
// to bytes), the browser's memory through ``storage`` (localStorage), so this
// runs the same in a test.
//
// (1) trust.json names the log's origin and key and the witness policy; the
//     first one seen is kept, and a later different one is a failure.
// (2) /log/checkpoint: the log's signature and the policy's cosignatures.
// (3) Consistency with the largest checkpoint this browser verified before:
//     a smaller one is a rollback, the same size with another root a fork,
//     a larger one must come with a consistency proof.
// (4) Each record shown: its C2SP tlog-proof (/v1/proofs/export), the entry
//     inside proven in a checkpoint consistent with (2), then decoded.

import { fromHex, toHex, utf8 } from "./verify/bytes.js";
import { verifyCosigned, witnessPolicy } from "./verify/checkpoint.js";
import { Inconsistent, ProofInvalid, SignatureInvalid, Unsupported, VerificationError } from "./verify/errors.js";
import { hashLeaf, verifyConsistency } from "./verify/merkle.js";
import { VerifierKey } from "./verify/note.js";
import { decodeEntry } from "./verify/record.js";
import { parseTlogProof, verifyTlogProof } from "./verify/tlogproof.js";

const decoder = new TextDecoder();

/** A failed proof: ``kind`` names it (i18n failure.<kind>), ``evidence`` is kept to share. */
export class TrustFailure extends Error {
  constructor(kind, message, evidence = {}) {
    super(message);
    this.name = "TrustFailure";
    this.kind = kind;
    this.evidence = { kind, message, at: new Date().toISOString(), ...evidence };
  }
}

function kindOf(error) {
  if (error instanceof Unsupported) return "unsupported";
  if (error instanceof Inconsistent) return "fork";
  if (error instanceof ProofInvalid) return "inclusion";
  if (error instanceof SignatureInvalid) return /cosigned by/.test(error.message) ? "quorum" : "signature";
  return "malformed";
}

export class Trust {
  constructor(get, storage) {
    this.get = get;
    this.storage = storage;
    this.current = null; // { checkpoint, note (bytes), cosigned }
    this.checkpoints = new Map(); // size -> root hex, every checkpoint verified in this visit
    this.notes = new Map(); // note text -> its verification, each note verified once
  }

  storageKey(name) {
    return `saksi:${this.origin}:${name}`;
  }

  /** (1) What the page pins, refused if it changed since this browser's last visit. */
  async load() {
    const text = decoder.decode(await this.get("trust.json"));
    let raw;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new TrustFailure("malformed", "trust.json is not JSON", { trust: text });
    }
    this.origin = String(raw.origin);
    try {
      this.logKey = await VerifierKey.parse(raw.log_key);
      const witnesses = await Promise.all((raw.witnesses ?? []).map((w) => VerifierKey.parse(w)));
      this.policy = witnessPolicy(witnesses, raw.quorum ?? 0);
    } catch (e) {
      throw new TrustFailure("malformed", `trust.json: ${e.message}`, { trust: text });
    }
    this.trust = raw;
    const pinned = this.storage.getItem(this.storageKey("log-key"));
    if (pinned && pinned !== raw.log_key) {
      throw new TrustFailure("keyChanged", `the log key was ${pinned}, now ${raw.log_key}`, {
        trust: raw,
        pinned_before: pinned,
      });
    }
    this.storage.setItem(this.storageKey("log-key"), raw.log_key);
    return raw;
  }

  async verified(note) {
    try {
      return await verifyCosigned(note, this.logKey, this.origin, this.policy);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      throw new TrustFailure(kindOf(e), e.message, { trust: this.trust, served: decoder.decode(note) });
    }
  }

  /** (2) and (3): the checkpoint served now, proven and consistent with what came before. */
  async refresh() {
    const note = await this.get("/log/checkpoint");
    const out = await this.verified(note);
    const seen = this.storage.getItem(this.storageKey("checkpoint"));
    if (seen) {
      // Kept by this browser after it verified it: only the log's signature
      // is asked again (the witness policy may have changed since).
      const before = await verifyCosigned(utf8(seen), this.logKey, this.origin).catch(() => null);
      if (before) await this.consistent(before, out, seen, note);
    }
    const size = out.checkpoint.size;
    this.storage.setItem(this.storageKey("checkpoint"), decoder.decode(note));
    this.notes.set(decoder.decode(note), out);
    this.current = { ...out, noteBytes: note };
    this.checkpoints.set(size, toHex(out.checkpoint.rootHash));
    return this.current;
  }

  /** Fails unless ``a`` and ``b`` (verified checkpoints) are views of one log. */
  async consistent(a, b, noteA, noteB) {
    const evidence = {
      trust: this.trust,
      seen_before: typeof noteA === "string" ? noteA : decoder.decode(noteA),
      served: typeof noteB === "string" ? noteB : decoder.decode(noteB),
    };
    const [sizeA, sizeB] = [a.checkpoint.size, b.checkpoint.size];
    if (sizeB < sizeA) {
      throw new TrustFailure("rollback", `the log was at ${sizeA} entries, the server shows ${sizeB}`, evidence);
    }
    if (sizeA === sizeB) {
      if (toHex(a.checkpoint.rootHash) !== toHex(b.checkpoint.rootHash)) {
        throw new TrustFailure("fork", `two roots for size ${sizeA}`, evidence);
      }
      return;
    }
    if (sizeA === 0n) return;
    const answer = decoder.decode(await this.get(`/v1/proofs/consistency?old=${sizeA}&new=${sizeB}`));
    let raw;
    try {
      raw = JSON.parse(answer);
    } catch {
      throw new TrustFailure("malformed", "the consistency proof is not JSON", { ...evidence, consistency_proof: answer });
    }
    evidence.consistency_proof = raw;
    try {
      const proof = (raw.consistency_proof ?? []).map((h) => fromHex(h, "consistency proof"));
      await verifyConsistency(sizeA, sizeB, a.checkpoint.rootHash, b.checkpoint.rootHash, proof);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      throw new TrustFailure("fork", e.message, evidence);
    }
  }

  /**
   * (4) Entry ``index``, proven: resolves to the decoded entry and its proof
   * file. The proof's checkpoint, when not the current one, is verified and
   * proven consistent with it.
   */
  async prove(index) {
    const file = await this.get(`/v1/proofs/export?index=${index}`);
    const evidence = { trust: this.trust, index, proof: decoder.decode(file) };
    let entry;
    try {
      const parsed = parseTlogProof(file);
      if (parsed.index !== BigInt(index) || !parsed.extra) {
        throw new ProofInvalid(`the proof is for entry ${parsed.index}, not ${index}`);
      }
      // Each distinct note verified once a visit: most proofs of a page come
      // with the checkpoint just verified.
      const leaf = await hashLeaf(parsed.extra);
      const out = await verifyTlogProof(parsed, leaf, this.logKey, this.origin, this.policy, this.notes);
      const size = out.checkpoint.size;
      const known = this.checkpoints.get(size);
      if (known === undefined) {
        await this.consistent(
          size < this.current.checkpoint.size ? out : this.current,
          size < this.current.checkpoint.size ? this.current : out,
          size < this.current.checkpoint.size ? parsed.checkpoint : this.current.noteBytes,
          size < this.current.checkpoint.size ? this.current.noteBytes : parsed.checkpoint,
        );
        this.checkpoints.set(size, toHex(out.checkpoint.rootHash));
      } else if (known !== toHex(out.checkpoint.rootHash)) {
        throw new Inconsistent(`two roots for size ${size}`);
      }
      entry = await decodeEntry(parsed.extra);
    } catch (e) {
      if (e instanceof TrustFailure) {
        Object.assign(e.evidence, evidence);
        throw e;
      }
      if (!(e instanceof VerificationError)) throw e;
      throw new TrustFailure(kindOf(e), e.message, evidence);
    }
    return { entry, evidence };
  }
}
