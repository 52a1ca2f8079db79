// The page's verification code against the published vectors (../shared/vectors),
// the same files the Python verifier is tested against (tests/vectors/).
// Run: node --test tests/explorer/js/   (SAKSI_VECTORS names another directory)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { fromBase64, fromHex, toBase64, toHex, utf8 } from "../../../explorer/static/js/verify/bytes.js";
import {
  parseCheckpoint,
  verifyCheckpoint,
  verifyCosigned,
  verifyInclusionInCheckpoint,
  witnessPolicy,
} from "../../../explorer/static/js/verify/checkpoint.js";
import {
  Inconsistent,
  MalformedInput,
  ProofInvalid,
  SignatureInvalid,
  VerificationError,
} from "../../../explorer/static/js/verify/errors.js";
import {
  hashChildren,
  hashLeaf,
  rootFromInclusionProof,
  sha256,
  verifyConsistency,
  verifyInclusion,
} from "../../../explorer/static/js/verify/merkle.js";
import {
  computeKeyId,
  KEY_TYPE_COSIGNATURE_V1,
  parseNote,
  VerifierKey,
  verifyNote,
} from "../../../explorer/static/js/verify/note.js";
import { pae, verifyEnvelopeSignature } from "../../../explorer/static/js/verify/dsse.js";
import { decodeEntry } from "../../../explorer/static/js/verify/record.js";
import { parseTlogProof, verifyTlogProof } from "../../../explorer/static/js/verify/tlogproof.js";
import {
  encodeIndex,
  entriesPath,
  parseEntryBundle,
  tilePath,
} from "../../../explorer/static/js/verify/tiles.js";

// Node 18 (Debian's) keeps WebCrypto off the global object; the modules look
// it up only when they hash or verify, so providing it here is in time.
if (!globalThis.crypto?.subtle) globalThis.crypto = (await import("node:crypto")).webcrypto;

const here = dirname(fileURLToPath(import.meta.url));
const VECTORS = process.env.SAKSI_VECTORS ?? resolve(here, "../../../../shared/vectors");
const load = (name) => JSON.parse(readFileSync(join(VECTORS, name), "utf8"));
const hexes = (list) => list.map((h) => fromHex(h));

async function rejects(promise, kind) {
  await assert.rejects(promise, (e) => e instanceof kind, `expected ${kind.name}`);
}

// The Merkle tree hash of leaves[0:n], RFC 6962 2.1, by its definition.
async function mth(leafHashes) {
  if (leafHashes.length === 1) return leafHashes[0];
  let k = 1;
  while (k * 2 < leafHashes.length) k *= 2;
  return hashChildren(await mth(leafHashes.slice(0, k)), await mth(leafHashes.slice(k)));
}

// ---- RFC 6962 / 9162 -------------------------------------------------------

const REFERENCE = load("rfc6962_reference.json");

test("hasher vectors", async () => {
  for (const v of REFERENCE.hasher_vectors) {
    let got;
    if (v.kind === "empty_root") got = await sha256(new Uint8Array());
    else if (v.kind === "leaf") got = await hashLeaf(fromHex(v.input));
    else got = await hashChildren(fromHex(v.left), fromHex(v.right));
    assert.equal(toHex(got), v.want, v.desc);
  }
});

test("reference tree: leaf hashes and the root of every size", async () => {
  const tree = REFERENCE.reference_tree;
  const leaves = await Promise.all(tree.leaves_data.map((d) => hashLeaf(fromHex(d))));
  assert.deepEqual(leaves.map(toHex), tree.leaf_hashes);
  for (let n = 1; n <= leaves.length; n++) {
    const want = tree.roots_by_size[String(n)] ?? tree.roots_by_size[n];
    if (want) assert.equal(toHex(await mth(leaves.slice(0, n))), want, `size ${n}`);
  }
});

test("published inclusion and consistency proofs verify", async () => {
  for (const p of REFERENCE.inclusion_proofs) {
    await verifyInclusion(p.leaf_index, p.tree_size, fromHex(p.leaf_hash), hexes(p.proof), fromHex(p.root));
  }
  for (const p of REFERENCE.consistency_proofs) {
    await verifyConsistency(p.size1, p.size2, fromHex(p.root1), fromHex(p.root2), hexes(p.proof));
  }
});

const DERIVED = load("merkle_derived_all_proofs_8leaf.json");

test("every proof of the 8-leaf tree verifies, and every bit flip in one is refused", async () => {
  for (const p of DERIVED.inclusion) {
    const proof = hexes(p.proof);
    const leaf = fromHex(p.leaf_hash);
    const root = fromHex(p.root);
    await verifyInclusion(p.leaf_index, p.tree_size, leaf, proof, root);
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((h) => h.slice());
      bad[i][i % 32] ^= 1 << (i % 8);
      await rejects(verifyInclusion(p.leaf_index, p.tree_size, leaf, bad, root), ProofInvalid);
    }
    const flipped = leaf.slice();
    flipped[0] ^= 0x80;
    await rejects(verifyInclusion(p.leaf_index, p.tree_size, flipped, proof, root), ProofInvalid);
  }
  for (const p of DERIVED.consistency) {
    const proof = hexes(p.proof);
    await verifyConsistency(p.size1, p.size2, fromHex(p.root1), fromHex(p.root2), proof);
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((h) => h.slice());
      bad[i][31 - (i % 32)] ^= 1;
      await rejects(
        verifyConsistency(p.size1, p.size2, fromHex(p.root1), fromHex(p.root2), bad),
        ProofInvalid,
      );
    }
  }
});

test("a proof longer or shorter than the tree's path is refused as such", async () => {
  for (const p of DERIVED.inclusion) {
    const proof = hexes(p.proof);
    const leaf = fromHex(p.leaf_hash);
    await rejects(rootFromInclusionProof(p.leaf_index, p.tree_size, leaf, [...proof, leaf]), ProofInvalid);
    if (proof.length) {
      await rejects(rootFromInclusionProof(p.leaf_index, p.tree_size, leaf, proof.slice(1)), ProofInvalid);
    }
  }
});

test("a consistency proof is refused when the old root is not the one it proves", async () => {
  let checked = 0;
  for (const p of DERIVED.consistency) {
    if (p.size1 === p.size2 || (p.size1 & (p.size1 - 1)) === 0) continue; // not a seed of the proof
    const root1 = fromHex(p.root1);
    root1[7] ^= 4;
    await rejects(verifyConsistency(p.size1, p.size2, root1, fromHex(p.root2), hexes(p.proof)), ProofInvalid);
    checked += 1;
  }
  assert.ok(checked > 10);
});

test("equal sizes with different roots are a fork (Inconsistent)", async () => {
  const a = fromHex(REFERENCE.reference_tree.leaf_hashes[0]);
  const b = fromHex(REFERENCE.reference_tree.leaf_hashes[1]);
  await rejects(verifyConsistency(3, 3, a, b, []), Inconsistent);
  await verifyConsistency(3, 3, a, a, []);
  await rejects(verifyConsistency(3, 3, a, a, [b]), ProofInvalid);
});

// Sizes beyond 2^53 arrive from JSON as inexact Numbers; the probes at such
// sizes all expect an error, which an inexact size gives too.
function probeRunner(name, run) {
  const data = load(name);
  test(`${name}: all ${data.probes.length} probes`, async () => {
    let refused = 0;
    for (const p of data.probes) {
      let error = null;
      try {
        await run(p);
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
        error = e;
      }
      assert.equal(error !== null, p.wantErr, `${p.source_file}: ${p.desc} (${error})`);
      if (error) refused += 1;
    }
    assert.equal(refused, data.probes.filter((p) => p.wantErr).length);
  });
}

const hash = (h) => (h === null || h === undefined ? new Uint8Array() : fromHex(h));

probeRunner("merkle_inclusion_probes.json", (p) =>
  verifyInclusion(p.leafIdx, p.treeSize, hash(p.leafHash), (p.proof ?? []).map(hash), hash(p.root)),
);
// One deliberate deviation, as the Python verifier's (tests/vectors/README.md):
// upstream accepts equal sizes with equal 12-byte "roots"; every hash here is
// exactly 32 bytes, so that probe is refused as malformed.
const deviates = (p) => !p.wantErr && p.root1.length !== 64;
probeRunner("merkle_consistency_probes.json", async (p) => {
  const run = verifyConsistency(p.size1, p.size2, hash(p.root1), hash(p.root2), (p.proof ?? []).map(hash));
  if (!deviates(p)) return run;
  await rejects(run, MalformedInput);
});

// ---- C2SP signed-note ------------------------------------------------------

const NOTES = load("signed_note.json");
const KEYS = Object.fromEntries(NOTES.keys.map((k) => [k.name, k]));

test("verifier keys: parse, key ID, print back", async () => {
  for (const k of NOTES.keys) {
    const key = await VerifierKey.parse(k.vkey);
    assert.equal(key.name, k.name);
    assert.equal(toHex(key.keyId), k.key_id_hex);
    assert.equal(toHex(key.publicKey), k.ed25519_public_hex);
    assert.equal(String(key), k.vkey);
  }
  const peter = KEYS.PeterNeumann;
  const preimage = new Uint8Array([...utf8("PeterNeumann\n\x01"), ...fromHex(peter.ed25519_public_hex)]);
  assert.equal(toHex(preimage), peter.key_id_preimage_hex);
});

test("bad verifier keys, every proper substring and every +1 mutation are refused", async () => {
  for (const bad of NOTES.must_reject_vkeys.filter((b) => b.vkey)) {
    await rejects(VerifierKey.parse(bad.vkey), MalformedInput);
  }
  const vkey = KEYS.PeterNeumann.vkey;
  for (let i = 0; i < vkey.length; i++) {
    for (let j = i; j <= vkey.length; j++) {
      if (i === 0 && j === vkey.length) continue;
      await rejects(VerifierKey.parse(vkey.slice(i, j)), MalformedInput);
    }
    const mutated = vkey.slice(0, i) + String.fromCharCode(vkey.charCodeAt(i) + 1) + vkey.slice(i + 1);
    await rejects(VerifierKey.parse(mutated), MalformedInput);
  }
});

test("published signed notes verify under their keys; unknown signers are ignored", async () => {
  const peter = await VerifierKey.parse(KEYS.PeterNeumann.vkey);
  const enoch = await VerifierKey.parse(KEYS.EnochRoot.vkey);
  const [one, two, example] = NOTES.signed_notes;
  const first = await verifyNote(utf8(one.signed_note), [peter]);
  assert.equal(first.note.text, one.text);
  const both = await verifyNote(utf8(two.signed_note), [peter]);
  assert.equal(both.note.signatures.length, 2);
  assert.deepEqual(both.verified.map((v) => v.key), [peter]);
  const all = await verifyNote(utf8(two.signed_note), [peter, enoch]);
  assert.deepEqual(all.verified.map((v) => v.key), [peter, enoch]);
  const foo = await VerifierKey.parse(KEYS["example.com/foo"].vkey);
  assert.equal((await verifyNote(utf8(example.signed_note), [foo])).note.text, example.text);
  await rejects(verifyNote(utf8(one.signed_note), []), SignatureInvalid);
  await rejects(verifyNote(utf8(one.signed_note), [enoch]), SignatureInvalid);
});

test("a key of the same name but another key ID is not the signer", async () => {
  const peter = await VerifierKey.parse(KEYS.PeterNeumann.vkey);
  const other = fromHex(KEYS.EnochRoot.ed25519_public_hex);
  const impostor = new VerifierKey("PeterNeumann", await computeKeyId("PeterNeumann", 1, other), 1, other);
  const note = utf8(NOTES.signed_notes[0].signed_note);
  const out = await verifyNote(note, [impostor, peter]);
  assert.deepEqual(out.verified.map((v) => v.key), [peter]);
  await rejects(verifyNote(note, [impostor]), SignatureInvalid);
});

test("base64 is taken only in its canonical spelling", () => {
  assert.deepEqual([...fromBase64("AA==", "x")], [0]);
  for (const bad of ["AB==", "AAB=", "AA=", "AA", "A===", "AA==\n", " AA==", "AA-_", "AA=A"]) {
    assert.throws(() => fromBase64(bad, "x"), MalformedInput, JSON.stringify(bad));
  }
  const root = toBase64(new Uint8Array(32));
  const loose = `${root.slice(0, 42)}B=`;
  assert.throws(() => parseCheckpoint(`origin\n8\n${loose}\n`), MalformedInput);
});

test("notes that must be refused are refused", async () => {
  const peter = await VerifierKey.parse(KEYS.PeterNeumann.vkey);
  const { text, signature_line: line } = NOTES.signed_notes[0];
  for (const c of NOTES.must_reject_notes) {
    const data = c.note !== undefined ? utf8(c.note) : c.note_hex ? fromHex(c.note_hex) : null;
    if (data) await rejects(verifyNote(data, [peter]), VerificationError);
  }
  await rejects(verifyNote(utf8(`${text}\n${line.repeat(101)}`), [peter]), MalformedInput);
  const corrupted = `${line.slice(0, 60)}ABCD${line.slice(60)}`;
  await rejects(verifyNote(utf8(`${text}\n${corrupted}`), [peter]), VerificationError);
  // One bit of the signature flipped: the known key's signature fails, whole note refused.
  const sig = parseNote(utf8(`${text}\n${line}`)).signatures[0];
  const raw = fromBase64(line.trimEnd().slice(line.lastIndexOf(" ") + 1), "line");
  raw[4] ^= 1;
  const flippedLine = `\u2014 ${sig.name} ${Buffer.from(raw).toString("base64")}\n`;
  await rejects(verifyNote(utf8(`${text}\n${flippedLine}`), [peter]), SignatureInvalid);
  // Two signatures by one key are refused as malformed.
  await rejects(verifyNote(utf8(`${text}\n${line}${line}`), [peter]), MalformedInput);
});

// ---- C2SP tlog-checkpoint --------------------------------------------------

const CHECKPOINTS = load("checkpoints.json");

test("real Ed25519 checkpoints verify offline; the ECDSA key type is refused as unsupported", async () => {
  let verified = 0;
  for (const cp of CHECKPOINTS.checkpoints) {
    const vkey = cp.vkey ?? cp.vkey_derived;
    if (!vkey || !String(cp.expect).startsWith("valid")) continue;
    const keyText = vkey.slice(vkey.indexOf("+", vkey.indexOf("+") + 1) + 1);
    if (fromBase64(keyText, "vkey")[0] === 0x01) {
      const key = await VerifierKey.parse(vkey);
      const extra = await Promise.all((cp.extra_vkeys ?? []).map((v) => VerifierKey.parse(v)));
      const origin = cp.origin ?? parseCheckpoint(parseNote(utf8(cp.note)).text).origin;
      const out = await verifyCheckpoint(utf8(cp.note), key, origin, extra);
      if (cp.tree_size !== undefined) assert.equal(out.checkpoint.size, BigInt(cp.tree_size));
      if (cp.root_b64) assert.equal(Buffer.from(out.checkpoint.rootHash).toString("base64"), cp.root_b64);
      assert.equal(out.verified.length, extra.length);
      await rejects(verifyCheckpoint(utf8(cp.note), key, `${origin}x`), SignatureInvalid);
      verified += 1;
    } else {
      await rejects(VerifierKey.parse(vkey), MalformedInput);
    }
  }
  assert.ok(verified >= 4, `only ${verified} checkpoints verified`);
});

test("Rekor v2: a real entry's inclusion in its signed checkpoint", async () => {
  const cp = CHECKPOINTS.checkpoints.find((c) => c.entry);
  const key = await VerifierKey.parse(cp.vkey_derived);
  const body = fromBase64(cp.entry.canonicalized_body_b64, "body");
  const leaf = await hashLeaf(body);
  assert.equal(toHex(leaf), cp.entry.leaf_hash_hex);
  const proof = cp.entry.inclusion_proof_b64.map((h) => fromBase64(h, "proof"));
  const checkpoint = await verifyInclusionInCheckpoint(utf8(cp.note), key, cp.origin, cp.entry.log_index, leaf, proof);
  assert.equal(checkpoint.size, BigInt(cp.tree_size));
  await rejects(
    verifyInclusionInCheckpoint(utf8(cp.note), key, cp.origin, cp.entry.log_index - 1, leaf, proof),
    ProofInvalid,
  );
});

test("checkpoint bodies: the C2SP example parses; malformed ones are refused", () => {
  const example = CHECKPOINTS.checkpoints.find((c) => c.id === "c2sp-example");
  const parsed = parseCheckpoint(parseNote(utf8(example.note)).text);
  assert.equal(parsed.origin, example.origin);
  assert.equal(parsed.size, BigInt(example.tree_size));
  const root = Buffer.from(parsed.rootHash).toString("base64");
  for (const bad of [
    "origin\n8\n",
    `origin\n08\n${root}\n`,
    `origin\n-1\n${root}\n`,
    `origin\n9223372036854775808\n${root}\n`,
    `origin\n8\n${root.slice(0, -4)}\n`,
    `origin\n8\n${root}\n\n`,
    `origin\n8\n${root}`,
    `\n8\n${root}\n`,
  ]) {
    assert.throws(() => parseCheckpoint(bad), MalformedInput, JSON.stringify(bad));
  }
  // Go's sumdb format rejects these; as C2SP checkpoints, each is malformed
  // or (the first) differs only in its origin, so it never matches the pin.
  for (const bad of CHECKPOINTS.sumdb_tlog_formats.must_reject_trees) {
    try {
      assert.notEqual(parseCheckpoint(bad).origin, "go.sum database tree");
    } catch (e) {
      if (!(e instanceof MalformedInput)) throw e;
    }
  }
});

// ---- C2SP tlog-cosignature -------------------------------------------------

const COSIG = load("cosignature_witness.json");

test("cosignature lines decode: key ID and timestamp", () => {
  for (const v of COSIG.decode_vectors) {
    const b64 = v.line ? v.line.slice(v.line.lastIndexOf(" ") + 1) : v.signature_b64;
    const raw = fromBase64(b64, "cosignature");
    if (v.expect === "error") {
      assert.notEqual(raw.length, 4 + 8 + 64);
      continue;
    }
    assert.equal(raw.length, v.decoded_len ?? 76);
    assert.equal(toHex(raw.subarray(0, 4)), v.key_id_hex);
    assert.equal(new DataView(raw.buffer, 4, 8).getBigUint64(0), BigInt(v.timestamp));
  }
});

test("cosignature key IDs depend on the key type", async () => {
  const [native, converted] = COSIG.key_id_vectors;
  const key = await VerifierKey.parse(native.vkey);
  assert.equal(key.keyType, KEY_TYPE_COSIGNATURE_V1);
  assert.equal(toHex(key.keyId), native.key_id_hex);
  const plain = await VerifierKey.parse(converted.vkey);
  assert.equal(toHex(plain.keyId), converted.key_id_type1_hex);
  const asCosigner = await computeKeyId(plain.name, KEY_TYPE_COSIGNATURE_V1, plain.publicKey);
  assert.equal(toHex(asCosigner), converted.key_id_type4_hex);
});

test("a witness's cosignature verifies, with its timestamp; a changed one does not", async () => {
  const d = COSIG.derived_cosignature;
  const witness = await VerifierKey.parse(d.vkey);
  const log = await VerifierKey.parse(KEYS.PeterNeumann.vkey);
  const out = await verifyCheckpoint(utf8(d.cosigned_checkpoint), log, "PeterNeumann", [witness]);
  assert.equal(out.verified.length, 1);
  assert.equal(out.verified[0].timestamp, BigInt(d.timestamp));
  // The witness's line alone (no log signature) is not a checkpoint of the log.
  await rejects(
    verifyCheckpoint(utf8(`${d.checkpoint_text}\n${d.signature_line}`), log, "PeterNeumann", [witness]),
    SignatureInvalid,
  );
  const raw = fromBase64(d.cosignature_b64, "cosignature");
  raw[11] ^= 1; // the timestamp's last byte: the signed message changes
  const bad = `${d.checkpoint_text}\n\u2014 ${d.cosigner_name} ${Buffer.from(raw).toString("base64")}\n`;
  await rejects(verifyNote(utf8(bad), [witness]), SignatureInvalid);
});

// ---- C2SP tlog-tiles -------------------------------------------------------

const TILES = load("tlog_tiles.json");

test("tile index encoding and paths", () => {
  for (const v of TILES.index_encoding) assert.equal(encodeIndex(v.n), v.encoded);
  for (const v of TILES.paths) {
    const path = v.entries ? entriesPath(v.n, v.width) : tilePath(v.level, v.n, v.width);
    assert.equal(path, v.path);
  }
});

test("the reference entry bundle gives the reference level-0 tile", async () => {
  const t = TILES.derived_reference_tree_tiles;
  assert.equal(entriesPath(0, 8), t.entries_bundle_path);
  assert.equal(tilePath(0, 0, 8), t.level0_tile_path);
  const entries = parseEntryBundle(fromHex(t.entries_bundle_hex), 8);
  const leaves = await Promise.all(entries.map((e) => hashLeaf(e)));
  assert.equal(leaves.map(toHex).join(""), t.level0_tile_hex);
  assert.throws(() => parseEntryBundle(fromHex(t.entries_bundle_hex).subarray(1)), MalformedInput);
  assert.throws(() => parseEntryBundle(fromHex(t.entries_bundle_hex), 7), MalformedInput);
});

// ---- Witness policy, C2SP tlog-proof, Saksi's own export ------------------

test("a witness policy: the quorum counts only the pinned witnesses that verified", async () => {
  const d = COSIG.derived_cosignature;
  const log = await VerifierKey.parse(KEYS.PeterNeumann.vkey);
  const witness = await VerifierKey.parse(d.vkey);
  const note = utf8(d.cosigned_checkpoint);
  const out = await verifyCosigned(note, log, "PeterNeumann", witnessPolicy([witness], 1));
  assert.equal(out.cosigned.get("EnochRoot"), BigInt(d.timestamp));
  const none = await verifyCosigned(note, log, "PeterNeumann", witnessPolicy([], 0));
  assert.equal(none.cosigned.size, 0); // a witness not pinned counts for nothing
  const plain = utf8(CHECKPOINTS.checkpoints.find((c) => c.id === "derived-reference-8").note);
  await rejects(verifyCosigned(plain, log, "PeterNeumann", witnessPolicy([witness], 1)), SignatureInvalid);
  assert.throws(() => witnessPolicy([log], 1), MalformedInput);
  assert.throws(() => witnessPolicy([witness], 2), MalformedInput);
});

const PROOFS = load("tlog_proof.json");

test("tlog-proof files parse and verify; a changed leaf or index does not", async () => {
  for (const v of PROOFS.proofs) {
    const parsed = parseTlogProof(utf8(v.proof_text));
    const log = await VerifierKey.parse(v.vkey ?? v.log_vkey);
    const witnesses = v.witness_vkey ? [await VerifierKey.parse(v.witness_vkey)] : [];
    const policy = witnessPolicy(witnesses, witnesses.length);
    const origin = parseCheckpoint(parseNote(parsed.checkpoint).text).origin;
    const leaf = fromHex(v.leaf_hash_hex);
    if (v.extra_b64) assert.equal(toBase64(parsed.extra), v.extra_b64);
    const out = await verifyTlogProof(parsed, leaf, log, origin, policy);
    assert.equal(out.cosigned.size, witnesses.length);
    const other = leaf.slice();
    other[0] ^= 1;
    await rejects(verifyTlogProof(parsed, other, log, origin, policy), ProofInvalid);
    // A note verified before is not verified again, but every proof still is.
    const known = new Map();
    await verifyTlogProof(parsed, leaf, log, origin, policy, known);
    assert.equal(known.size, 1);
    await rejects(verifyTlogProof(parsed, other, log, origin, policy, known), ProofInvalid);
    await rejects(verifyTlogProof({ ...parsed, index: parsed.index + 1n }, leaf, log, origin, policy), ProofInvalid);
  }
  for (const bad of ["", "c2sp.org/tlog-proof@v2\nindex 1\n\nx\n", "c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
    "c2sp.org/tlog-proof@v1\n\nx\n", "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx\n"]) {
    assert.throws(() => parseTlogProof(utf8(bad)), MalformedInput, JSON.stringify(bad));
  }
});

const GOLDEN = resolve(here, "../../golden");

test("Saksi's own export: the entry inside is proven, then decoded to its record", async () => {
  const data = new Uint8Array(readFileSync(join(GOLDEN, "answers/011.body")));
  const log = await VerifierKey.parse(readFileSync(join(GOLDEN, "log.vkey"), "utf8").trim());
  const parsed = parseTlogProof(data);
  const leaf = await hashLeaf(parsed.extra);
  const { checkpoint } = await verifyTlogProof(parsed, leaf, log, "test.saksi.example/log", witnessPolicy());
  assert.equal(checkpoint.size, 22n);
  const entry = await decodeEntry(parsed.extra);
  assert.equal(entry.record.subject, "recaps/ppwp/3171011001");
  assert.equal(entry.record.revision, 1);
  assert.equal(entry.payloadHash, "a4004d4f62113bcc4f5aab6b0c85ed3706da886003f1df42260aa1a2bd83d274");
  assert.deepEqual(entry.record.body.totals.votes, { 100025: 181, 100026: 150, 100027: 15 });
  // One byte of the entry changed: its leaf is not the proven one.
  const changed = parsed.extra.slice();
  changed[40] ^= 1;
  await rejects(verifyTlogProof(parsed, await hashLeaf(changed), log, "test.saksi.example/log", witnessPolicy()), ProofInvalid);
  await rejects(decodeEntry(utf8("{")), MalformedInput);
  await rejects(decodeEntry(utf8('{"envelope": {"payloadType": "text/plain", "payload": "", "signatures": []}}')), MalformedInput);
});

// ---- DSSE (tests/vectors/data/dsse_vectors.json, secure-systems-lab/dsse) --

const DSSE = JSON.parse(readFileSync(resolve(here, "../../vectors/data/dsse_vectors.json"), "utf8"));
const lenient = (text) => Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");

test("DSSE pre-authentication encoding, byte for byte", () => {
  for (const v of DSSE.vectors) {
    const type = v.id === "payload-type-swapped" ? "application/vnd.in-toto+json" : v.envelope.payloadType;
    assert.equal(toHex(pae(type, new Uint8Array(lenient(v.envelope.payload)))), v.pae, v.id);
  }
});

test("a record's signature verifies under its key, by the key's ID, and nothing else does", async () => {
  const v = DSSE.vectors.find((x) => x.id === "single-signature");
  const publicKey = fromHex(DSSE.keys.A.public);
  const keyid = toHex(await sha256(publicKey));
  const payload = fromBase64(v.envelope.payload, "payload");
  const sig = v.envelope.signatures[0].sig;
  await verifyEnvelopeSignature(v.envelope.payloadType, payload, keyid, sig, publicKey);
  await rejects(verifyEnvelopeSignature("text/plain", payload, keyid, sig, publicKey), SignatureInvalid);
  const other = payload.slice();
  other[0] ^= 1;
  await rejects(verifyEnvelopeSignature(v.envelope.payloadType, other, keyid, sig, publicKey), SignatureInvalid);
  const b = fromHex(DSSE.keys.B.public);
  await rejects(verifyEnvelopeSignature(v.envelope.payloadType, payload, keyid, sig, b), SignatureInvalid);
  await rejects(
    verifyEnvelopeSignature(v.envelope.payloadType, payload, toHex(await sha256(b)), sig, b),
    SignatureInvalid,
  );
});
