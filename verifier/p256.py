"""ECDSA over NIST P-256 with SHA-256: verification only, standard library only.

Some transparency logs sign their checkpoints with ECDSA rather than Ed25519
(Sigstore's Rekor v1: signed-note key type 0x02, the key a DER SubjectPublicKeyInfo,
the signature ASN.1 DER). An observer must be able to check those without a
cryptography library, so the curve arithmetic is here, written from the standard
(FIPS 186-5 section 6.4.2; the curve from SEC 2 / FIPS 186-5 D.1.2.3).

Verification handles only public data, so constant time does not matter here;
strictness does: the DER of keys and signatures must be minimal (no alternative
encodings of the same value), and the point must lie on the curve.
"""

from __future__ import annotations

import hashlib

from verifier.errors import MalformedInput, SignatureInvalid

__all__ = ["parse_spki", "verify_p256"]

# The curve y^2 = x^3 - 3x + b over GF(p), base point G of prime order N.
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
_OID_P256 = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7

Jacobian = tuple[int, int, int]  # (X, Y, Z): the point (X/Z^2, Y/Z^3); Z=0 infinity
_INFINITY: Jacobian = (1, 1, 0)


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x - 3 * x + B)) % P == 0


def _double(pt: Jacobian) -> Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P  # a = -3
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    return x3, y3, 2 * y * z % P


def _add(p1: Jacobian, p2: Jacobian) -> Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else _INFINITY
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    return x3, y3, h * z1 * z2 % P


def _twin_multiply(a: int, pa: Jacobian, b: int, pb: Jacobian) -> Jacobian:
    """a*pa + b*pb by one left-to-right pass (Shamir's trick)."""
    both = _add(pa, pb)
    acc = _INFINITY
    for bit in range(max(a.bit_length(), b.bit_length()) - 1, -1, -1):
        acc = _double(acc)
        pick = ((a >> bit) & 1, (b >> bit) & 1)
        if pick == (1, 1):
            acc = _add(acc, both)
        elif pick == (1, 0):
            acc = _add(acc, pa)
        elif pick == (0, 1):
            acc = _add(acc, pb)
    return acc


def _der(data: bytes, at: int, tag: int, what: str) -> tuple[bytes, int]:
    """(contents, next offset) of the DER element with ``tag`` at ``at``."""
    if at + 2 > len(data) or data[at] != tag:
        raise MalformedInput(f"{what}: expected DER tag {tag:#04x}")
    length, at = data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if count not in (1, 2) or at + count > len(data):
            raise MalformedInput(f"{what}: bad DER length")
        length = int.from_bytes(data[at : at + count], "big")
        if length < 0x80 or (count == 2 and length < 0x100):
            raise MalformedInput(f"{what}: non-minimal DER length")
        at += count
    if at + length > len(data):
        raise MalformedInput(f"{what}: DER element runs past the end")
    return data[at : at + length], at + length


def _der_integer(data: bytes, at: int, what: str) -> tuple[int, int]:
    raw, at = _der(data, at, 0x02, what)
    if not raw or raw[0] & 0x80:
        raise MalformedInput(f"{what}: not a positive DER integer")
    if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
        raise MalformedInput(f"{what}: non-minimal DER integer")
    return int.from_bytes(raw, "big"), at


def parse_spki(spki: bytes) -> tuple[int, int]:
    """The point (x, y) of a DER SubjectPublicKeyInfo holding a P-256 key.

    Raises:
        MalformedInput: not exactly such a structure, or the point is not on the
            curve (compressed points are not accepted).
    """
    what = "ECDSA public key"
    body, end = _der(spki, 0, 0x30, what)
    if end != len(spki):
        raise MalformedInput(f"{what}: trailing bytes")
    algorithm, at = _der(body, 0, 0x30, what)
    oid, rest = _der(algorithm, 0, 0x06, what)
    curve, rest = _der(algorithm, rest, 0x06, what)
    if oid != _OID_EC_PUBLIC_KEY or curve != _OID_P256 or rest != len(algorithm):
        raise MalformedInput(f"{what}: not an EC key on P-256")
    bits, at = _der(body, at, 0x03, what)
    if at != len(body) or len(bits) != 66 or bits[:2] != b"\x00\x04":
        raise MalformedInput(f"{what}: expected an uncompressed point")
    x, y = int.from_bytes(bits[2:34], "big"), int.from_bytes(bits[34:], "big")
    if not _on_curve(x, y):
        raise MalformedInput(f"{what}: the point is not on P-256")
    return x, y


def verify_p256(spki: bytes, message: bytes, signature: bytes) -> None:
    """Check an ASN.1 DER ECDSA-P256-SHA256 ``signature`` over ``message``.

    Raises:
        MalformedInput: the key is not a P-256 SubjectPublicKeyInfo.
        SignatureInvalid: the signature is malformed or does not verify.
    """
    qx, qy = parse_spki(spki)
    try:
        body, end = _der(signature, 0, 0x30, "ECDSA signature")
        r, at = _der_integer(body, 0, "ECDSA signature r")
        s, at = _der_integer(body, at, "ECDSA signature s")
    except MalformedInput as e:
        raise SignatureInvalid(str(e)) from e
    if end != len(signature) or at != len(body):
        raise SignatureInvalid("ECDSA signature: trailing bytes")
    if not (0 < r < N and 0 < s < N):
        raise SignatureInvalid("ECDSA signature: r or s out of range")
    digest = int.from_bytes(hashlib.sha256(message).digest(), "big")
    w = pow(s, -1, N)
    point = _twin_multiply(digest * w % N, (*G, 1), r * w % N, (qx, qy, 1))
    x, _, z = point
    if z == 0 or x * pow(z * z, -1, P) % P % N != r:
        raise SignatureInvalid("ECDSA signature does not verify")
