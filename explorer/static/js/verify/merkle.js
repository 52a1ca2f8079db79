// RFC 6962 / RFC 9162 Merkle tree hashing and proof verification, the
// browser's twin of verifier/rfc6962.py and verifier/proof_check.py.
//
// leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); an
// inclusion proof is checked as RFC 9162 2.1.3.2 says, a consistency proof as
// 2.1.4.2 says. Indices and sizes are BigInts (a Number is taken and
// converted), so a tree of up to 2^63 leaves is computed exactly.

import { concat, equal, toHex } from "./bytes.js";
import { Inconsistent, MalformedInput, ProofInvalid } from "./errors.js";

export const HASH_SIZE = 32;
// A tree of fewer than 2^64 leaves never needs more than 64 hashes in a proof.
export const MAX_PROOF_HASHES = 64;

export async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
}

export function hashLeaf(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export function hashChildren(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function checkHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    const found = value instanceof Uint8Array ? value.length : typeof value;
    throw new MalformedInput(`${what}: expected ${HASH_SIZE} bytes, found ${found}`);
  }
}

function checkProof(proof) {
  if (!Array.isArray(proof)) throw new MalformedInput("proof: expected a list of hashes");
  if (proof.length > MAX_PROOF_HASHES) {
    throw new MalformedInput(
      `proof: expected at most ${MAX_PROOF_HASHES} hashes, found ${proof.length}`,
    );
  }
  proof.forEach((item, i) => checkHash(item, `proof hash ${i}`));
}

function compareRoots(calculated, expected, what) {
  if (!equal(calculated, expected)) {
    throw new ProofInvalid(
      `${what}: calculated root ${toHex(calculated)} != expected ${toHex(expected)}`,
    );
  }
}

function big(value, what) {
  if (typeof value === "bigint") return value;
  if (Number.isInteger(value)) return BigInt(value);
  throw new MalformedInput(`${what}: expected an integer`);
}

/** The root ``proof`` leads to for leaf ``index`` of a tree of ``size``. */
export async function rootFromInclusionProof(index, size, leafHash, proof) {
  index = big(index, "index");
  size = big(size, "size");
  if (!(index >= 0n && index < size)) {
    throw new ProofInvalid(`inclusion: index ${index} is not below tree size ${size}`);
  }
  checkHash(leafHash, "leaf hash");
  checkProof(proof);
  // fn walks the leaf's path, sn the tree's last leaf.
  let fn = index;
  let sn = size - 1n;
  let node = leafHash;
  for (const item of proof) {
    if (sn === 0n) throw new ProofInvalid(`inclusion: proof too long (${proof.length} hashes)`);
    if (fn & 1n || fn === sn) {
      node = await hashChildren(item, node);
      if (!(fn & 1n)) {
        // Right edge: skip the levels where this node has no right sibling.
        while (!(fn & 1n || fn === 0n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      node = await hashChildren(node, item);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofInvalid(`inclusion: proof too short (${proof.length} hashes)`);
  return node;
}

/** Resolves if ``leafHash`` is leaf ``index`` of the tree (``size``, ``root``). */
export async function verifyInclusion(index, size, leafHash, proof, root) {
  checkHash(root, "root");
  const calculated = await rootFromInclusionProof(index, size, leafHash, proof);
  compareRoots(calculated, root, "inclusion");
}

/** [old root, new root] recomputed from a consistency proof (0 < old < new). */
export async function rootsFromConsistencyProof(oldSize, newSize, oldRoot, proof) {
  oldSize = big(oldSize, "old size");
  newSize = big(newSize, "new size");
  if (!(oldSize > 0n && oldSize < newSize)) {
    throw new ProofInvalid(
      `consistency: need 0 < old size < new size, found ${oldSize}, ${newSize}`,
    );
  }
  checkHash(oldRoot, "old root");
  checkProof(proof);
  if (proof.length === 0) throw new ProofInvalid("consistency: empty proof between different sizes");
  const hashes = [...proof];
  // A power-of-two old tree is itself a node of the new one: its root is the seed.
  if ((oldSize & (oldSize - 1n)) === 0n) hashes.unshift(oldRoot);
  let fn = oldSize - 1n;
  let sn = newSize - 1n;
  // Skip the levels where the old tree's last node is a right child.
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let first = hashes[0];
  let second = hashes[0];
  for (const item of hashes.slice(1)) {
    if (sn === 0n) throw new ProofInvalid(`consistency: proof too long (${proof.length} hashes)`);
    if (fn & 1n || fn === sn) {
      first = await hashChildren(item, first);
      second = await hashChildren(item, second);
      if (!(fn & 1n)) {
        while (!(fn & 1n || fn === 0n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      second = await hashChildren(second, item);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofInvalid(`consistency: proof too short (${proof.length} hashes)`);
  return [first, second];
}

/**
 * Resolves if the tree (oldSize, oldRoot) is a prefix of (newSize, newRoot).
 * As the reference verifier: an old size of 0 is refused; equal sizes need an
 * empty proof and equal roots (two roots for one size: Inconsistent, a fork).
 */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  oldSize = big(oldSize, "old size");
  newSize = big(newSize, "new size");
  checkHash(oldRoot, "old root");
  checkHash(newRoot, "new root");
  if (oldSize <= 0n || newSize < oldSize) {
    throw new ProofInvalid(
      `consistency: need 0 < old size <= new size, found ${oldSize}, ${newSize}`,
    );
  }
  if (oldSize === newSize) {
    checkProof(proof);
    if (proof.length) throw new ProofInvalid("consistency: equal sizes need an empty proof");
    if (!equal(oldRoot, newRoot)) {
      throw new Inconsistent(
        `consistency: two roots for size ${oldSize}: ${toHex(oldRoot)} and ${toHex(newRoot)}`,
      );
    }
    return;
  }
  const [first, second] = await rootsFromConsistencyProof(oldSize, newSize, oldRoot, proof);
  compareRoots(first, oldRoot, "consistency (old tree)");
  compareRoots(second, newRoot, "consistency (new tree)");
}
