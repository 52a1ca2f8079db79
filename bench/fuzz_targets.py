"""The fuzz targets: one per parser that takes bytes from outside the process.

Each target takes ``bytes``, hands them to one parser (and, where the format has
a writer, checks that what parses writes back to the same bytes), and lets only
that parser's declared errors pass: any other exception is a crash. ``TARGETS``
maps a target's name to it; ``bench.fuzz`` runs them under atheris (libFuzzer)
and ``tests/fuzz`` replays their corpus (``tests/fuzz/corpus/<name>/``).

Targets are deterministic and offline. The parsers that read a path (the key
file, the importers, the monitor's configuration) get a scratch file, written
again for every input, under one scratch directory per process: the runner's
``SAKSI_FUZZ_SCRATCH``, or a temporary directory removed at exit. Nothing here
runs a key derivation or opens a socket.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

from domains import inputs, kawalpemilu, sirekap
from keys import keyfile, pem
from keys.errors import KeyLoadError
from monitor.config import ConfigError, load_config
from verifier import (
    checkpoint,
    cosignature,
    dsse,
    jcs,
    note,
    p256,
    proof_bundle,
    record,
    tile_format,
    tlog_proof,
    witness_protocol,
)
from verifier.errors import VerificationError

__all__ = ["SCRATCH_VARIABLE", "TARGETS", "Target"]

SCRATCH_VARIABLE = "SAKSI_FUZZ_SCRATCH"


class RoundTripError(AssertionError):
    """A parser accepted bytes that its own writer spells differently."""


@dataclass(frozen=True, slots=True)
class Target:
    """One fuzz target: what it runs, what it may raise, and which parsers it covers.

    ``parsers`` names every parser the target reaches, as ``module.function``;
    ``max_len`` is the longest input the fuzzer makes (libFuzzer's ``-max_len``).
    """

    name: str
    run: Callable[[bytes], object]
    errors: tuple[type[BaseException], ...]
    parsers: tuple[str, ...]
    max_len: int = 4096

    def __call__(self, data: bytes) -> None:
        """Run the target on ``data``; a declared error is a refusal, not a crash."""
        try:
            self.run(data)
        except self.errors:
            return


# -- scratch files -----------------------------------------------------------------

_scratch: list[Path] = []


def _scratch_dir() -> Path:
    if not _scratch:
        given = os.environ.get(SCRATCH_VARIABLE)
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
        else:
            shm = "/dev/shm"  # noqa: S108 (memory: a file write per input is cheap)
            fast = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
            path = Path(tempfile.mkdtemp(prefix="saksi-fuzz-", dir=fast))
            atexit.register(shutil.rmtree, path, True)
        _scratch.append(path)
    return _scratch[0]


def _file(name: str, data: bytes) -> Path:
    """``data`` written to the scratch file ``name`` (the same file every time)."""
    path = _scratch_dir() / name
    path.write_bytes(data)
    return path


# -- fixed keys: public test material, derived from fixed seeds ----------------------

_LOG_SEED = hashlib.sha256(b"saksi fuzz log key").digest()
_WITNESS_SEED = hashlib.sha256(b"saksi fuzz witness key").digest()
FUZZ_ORIGIN = "fuzz.saksi.example/log"
FUZZ_WITNESS = "fuzz.saksi.example/witness"


def log_signing_key() -> nacl.signing.SigningKey:
    """The log key the cosignature target pins (its seeds are signed by it)."""
    return nacl.signing.SigningKey(_LOG_SEED)


def witness_signing_key() -> nacl.signing.SigningKey:
    """The witness key the cosignature target pins."""
    return nacl.signing.SigningKey(_WITNESS_SEED)


_LOG_KEY = note.VerifierKey.from_public_key(
    FUZZ_ORIGIN, bytes(log_signing_key().verify_key)
)
_POLICY = cosignature.WitnessPolicy(
    (cosignature.cosigner_key(FUZZ_WITNESS, bytes(witness_signing_key().verify_key)),),
    1,
)


def _text(data: bytes) -> str:
    # Parsers of text get what a strict UTF-8 decoder leaves of the bytes.
    return data.decode("utf-8", "replace")


def _round_trip(what: str, written: bytes | str, data: bytes | str) -> None:
    if written != data:
        raise RoundTripError(f"{what}: parsed, but writes back differently")


# -- the verifier's formats ------------------------------------------------------------


def _dsse_envelope(data: bytes) -> None:
    envelope = dsse.parse_envelope(data)
    again = dsse.parse_envelope(jcs.canonicalize(dsse.envelope_to_json(envelope)))
    _round_trip("envelope", repr(again), repr(envelope))


def _record(data: bytes) -> None:
    parsed = record.parse_record(data)
    _round_trip("record", parsed.payload, data)


def _log_entry(data: bytes) -> None:
    entry = record.parse_log_entry(data)
    _round_trip(
        "log entry", record.format_log_entry(entry.envelope, entry.logged_at), data
    )


def _logged_entry(data: bytes) -> None:
    record.decode_logged_entry(data)


def _json(data: bytes) -> None:
    jcs.parse_json(data, 1 << 16)


def _canonical_json(data: bytes) -> None:
    value = jcs.parse_canonical(data, 1 << 16)
    _round_trip("canonical JSON", jcs.canonicalize(value), data)


def _checkpoint(data: bytes) -> None:
    text = _text(data)
    _round_trip("checkpoint", checkpoint.parse_checkpoint(text).to_text(), text)


def _note(data: bytes) -> None:
    _round_trip("note", note.format_note(note.parse_note(data)), data)


def _verifier_key(data: bytes) -> None:
    text = _text(data)
    _round_trip("verifier key", str(note.VerifierKey.parse(text)), text)


def _cosignature(data: bytes) -> None:
    for line in note.parse_note(data).signatures:
        if len(line.signature) == note.COSIGNATURE_SIZE:
            cosignature.parse_cosignature(line)
    cosignature.verify_cosigned(data, _LOG_KEY, FUZZ_ORIGIN, _POLICY)


def _tlog_proof(data: bytes) -> None:
    parsed = tlog_proof.parse_tlog_proof(data)
    _round_trip("tlog-proof", tlog_proof.format_tlog_proof(parsed), data)


def _add_checkpoint(data: bytes) -> None:
    old, proof, signed = witness_protocol.parse_add_checkpoint(data)
    _round_trip(
        "add-checkpoint",
        witness_protocol.format_add_checkpoint(old, proof, signed),
        data,
    )


def _witness_key(data: bytes) -> None:
    witness_protocol.WitnessKey.parse(_text(data))


def _tile_path(data: bytes) -> None:
    path = _text(data)
    level, index, width = tile_format.parse_tile_path(path)
    written = (
        tile_format.entries_path(index, width)
        if level is None
        else tile_format.tile_path(level, index, width)
    )
    _round_trip("tile path", written, path)


def _tile(data: bytes) -> None:
    # The first byte picks the width the caller expects (1..256).
    width = data[0] + 1 if data else tile_format.TILE_WIDTH
    hashes = tile_format.parse_tile(data[1:], width)
    _round_trip("tile", b"".join(hashes), data[1:])


def _entry_bundle(data: bytes) -> None:
    entries = tile_format.parse_entry_bundle(data)
    _round_trip("entry bundle", tile_format.format_entry_bundle(entries), data)


def _read_bundle(stream: bytes) -> None:
    reader = proof_bundle.BundleReader(io.BytesIO(stream))
    for _ in reader.entries(1 << 40):
        pass


def _bundle(data: bytes) -> None:
    _read_bundle(data)


def _bundle_lines(data: bytes) -> None:
    # The JSON lines inside the gzip member: mutations of compressed bytes
    # rarely get past the inflater, so this target compresses them itself.
    _read_bundle(gzip.compress(data, compresslevel=1, mtime=0))


def _spki(data: bytes) -> None:
    p256.parse_spki(data)


# -- key files -------------------------------------------------------------------------

_OPS_MAX, _MEM_MAX = keyfile.KdfProfile.SENSITIVE.value


def _key_file(data: bytes) -> None:
    # The parsing only: what the KDF would be asked to do is checked, never run.
    sealed = keyfile._read_sealed(_file("key.json", data))
    if sealed.ops > _OPS_MAX or sealed.mem > _MEM_MAX:
        raise AssertionError(
            f"key file accepted with a KDF cost beyond the strongest profile "
            f"(opslimit {sealed.ops}, memlimit {sealed.mem})"
        )


def _pem(data: bytes) -> None:
    with contextlib.suppress(KeyLoadError):
        pem.public_key_from_pem(data)
    pem.signer_from_pem(data, None, "fuzz")


# -- importers and configuration --------------------------------------------------

# The regions of the corpus's village (a branch of the commission's table).
_WILAYAH = (
    b"kode,parent,nama\n75,,GORONTALO\n7505,75,GORONTALO UTARA\n"
    b"750503,7505,ANGGREK\n7505032025,750503,DATAHU\n7505032026,750503,DUNU\n"
)


def _sirekap_lines(data: bytes) -> None:
    for station in sirekap.read_stations(_file("stations.jsonl", data)):
        sirekap.tally_body(station)


def _sirekap_file(data: bytes) -> None:
    folder = _scratch_dir() / "hhcw"
    folder.mkdir(exist_ok=True)
    (folder / "3171011001001.json").write_bytes(data)
    for station in sirekap.read_stations(folder):
        sirekap.tally_body(station)


def _kawalpemilu(data: bytes) -> None:
    nodes = kawalpemilu.read_nodes(_file("nodes.jsonl", data))
    wilayah = _scratch_dir() / "wilayah.csv"
    if not wilayah.exists():
        wilayah.write_bytes(_WILAYAH)
    matching = kawalpemilu.match_regions(nodes, wilayah)
    list(kawalpemilu.district_bodies(nodes, matching))
    for source in kawalpemilu.SOURCES:
        list(kawalpemilu.tally_bodies(nodes, matching, source))


_VKEY_FILES = {"log.vkey": f"{_LOG_KEY}\n", "witness.vkey": f"{_POLICY.witnesses[0]}\n"}


def _monitor_config(data: bytes) -> None:
    # The configuration names files (keys, state, logs); only the two key files
    # beside it exist. Device and process files are skipped: reading
    # /dev/zero or /dev/stdin is what the operator asked for, not a parser fault.
    if b"/dev" in data or b"/proc" in data:
        return
    folder = _scratch_dir() / "monitor"
    folder.mkdir(exist_ok=True)
    for name, text in _VKEY_FILES.items():
        if not (folder / name).exists():
            (folder / name).write_text(text, encoding="utf-8")
    path = folder / "monitor.toml"
    path.write_bytes(data)
    load_config(path)


# -- the registry ----------------------------------------------------------------------

_V = (VerificationError,)
_R = "verifier.record."
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("dsse_envelope", _dsse_envelope, _V, ("verifier.dsse.parse_envelope",)),
        Target("record", _record, _V, (_R + "parse_record",)),
        Target("log_entry", _log_entry, _V, (_R + "parse_log_entry",)),
        Target("logged_entry", _logged_entry, _V, (_R + "decode_logged_entry",)),
        Target("json", _json, _V, ("verifier.jcs.parse_json",)),
        Target(
            "canonical_json", _canonical_json, _V, ("verifier.jcs.parse_canonical",)
        ),
        Target(
            "checkpoint", _checkpoint, _V, ("verifier.checkpoint.parse_checkpoint",)
        ),
        Target("note", _note, _V, ("verifier.note.parse_note",)),
        Target("verifier_key", _verifier_key, _V, ("verifier.note.VerifierKey.parse",)),
        Target(
            "cosignature",
            _cosignature,
            _V,
            (
                "verifier.cosignature.parse_cosignature",
                "verifier.cosignature.verify_cosigned",
            ),
        ),
        Target(
            "tlog_proof",
            _tlog_proof,
            _V,
            ("verifier.tlog_proof.parse_tlog_proof",),
            max_len=8192,
        ),
        Target(
            "add_checkpoint",
            _add_checkpoint,
            _V,
            ("verifier.witness_protocol.parse_add_checkpoint",),
        ),
        Target(
            "witness_key",
            _witness_key,
            _V,
            ("verifier.witness_protocol.WitnessKey.parse",),
        ),
        Target("tile_path", _tile_path, _V, ("verifier.tile_format.parse_tile_path",)),
        Target("tile", _tile, _V, ("verifier.tile_format.parse_tile",), max_len=8200),
        Target(
            "entry_bundle",
            _entry_bundle,
            _V,
            ("verifier.tile_format.parse_entry_bundle",),
            max_len=16384,
        ),
        Target(
            "bundle",
            _bundle,
            _V,
            ("verifier.proof_bundle.BundleReader",),
            max_len=8192,
        ),
        Target(
            "bundle_lines",
            _bundle_lines,
            _V,
            ("verifier.proof_bundle.BundleReader",),
            max_len=8192,
        ),
        Target("p256_spki", _spki, _V, ("verifier.p256.parse_spki",)),
        Target("key_file", _key_file, (KeyLoadError,), ("keys.keyfile.load_key_file",)),
        Target(
            "pem",
            _pem,
            (KeyLoadError,),
            ("keys.pem.public_key_from_pem", "keys.pem.signer_from_pem"),
        ),
        Target(
            "sirekap_lines",
            _sirekap_lines,
            (inputs.MalformedInput,),
            ("domains.sirekap.read_stations", "domains.sirekap.tally_body"),
        ),
        Target(
            "sirekap_file",
            _sirekap_file,
            (inputs.MalformedInput,),
            ("domains.sirekap.read_stations", "domains.sirekap.tally_body"),
            max_len=8192,  # room for a number longer than int() reads
        ),
        Target(
            "kawalpemilu",
            _kawalpemilu,
            (inputs.MalformedInput,),
            (
                "domains.kawalpemilu.read_nodes",
                "domains.kawalpemilu.match_regions",
                "domains.kawalpemilu.tally_bodies",
                "domains.kawalpemilu.district_bodies",
            ),
        ),
        Target(
            "monitor_config",
            _monitor_config,
            (ConfigError,),
            ("monitor.config.load_config", "monitor.config.parse_config"),
        ),
    )
}
