"""Every command's failures exit with the code of the one table (``cli.run``).

0 ok, 1 failed or refused, 2 usage, 3 I/O. Each case runs ``saksi`` (``python
-m api``) or ``saksi-verify`` as a user does and checks the exit code, that the
error is said in a line (with a hint for ``saksi``) and that no traceback shows.
The commands are read from the real parsers: a new command without cases here
fails ``test_every_command_has_cases``, and every command also gets an unknown
flag and, if it has required arguments, none at all (both exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

from cli.main import build_parser
from keys import Ed25519Signer, load_key_file
from keys.pem import private_key_to_pem
from tests.conftest import ORIGIN as TEST_ORIGIN
from tests.helpers import ROOT, SHARED, init_log, load_vectors, run_saksi
from tests.recordlog import RecordLog
from tests.tilelog import NoteKey, TileServer, view
from verifier.commands import build_parser as verify_parser
from verifier.witness_protocol import WitnessKey

PASS = "exit-codes-passphrase"
WRONG = "not-the-passphrase"
ORIGIN = "exit-codes.example/log"
DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port
HEX = "ab" * 32  # a well-formed public key to grant
SAMPLE = SHARED / "data/sirekap2024/tps_ppwp_dki_sample/tps_ppwp_dki_sample.jsonl"

OK, FAILED, USAGE, IO = 0, 1, 2, 3


@dataclass(frozen=True)
class Case:
    """One way to fail: ``args`` after the command, ``{name}`` from ``world``."""

    why: str
    want: int
    args: str = ""
    passphrase: str | None = PASS

    def argv(self, names: dict[str, str]) -> list[str]:
        return [arg.format(**names) for arg in shlex.split(self.args)]


NEW_LOG = f"--origin {ORIGIN} --dir {{tmp}}/log"
GRANT = f"--admin-key {{admin}} --public-key {HEX} --role tps"
REVOKE = f"--admin-key {{admin}} --key-id {HEX}"
SERVE = "--dir {dir} --db {db} --listen {listen}"
PROVISION = "--admin-key {admin} --out {tmp}/keys --kdf interactive --level"
TILES = "--log {tiles} --key {tiles_vkey}"

CASES: dict[tuple[str, ...], list[Case]] = {
    ("saksi", "init"): [
        Case("missing --origin", USAGE, "--dir {tmp}/log"),
        Case("over a log", USAGE, f"--origin {ORIGIN} --dir {{dir}}"),
        Case("a database that holds a log", USAGE, f"{NEW_LOG} --db {{db}}"),
        Case("bad origin", USAGE, "--origin 'has space' --dir {tmp}/log"),
        Case("unsupported --db", USAGE, f"{NEW_LOG} --db bogus://x"),
        Case(
            "unreachable --db",
            IO,
            f"{NEW_LOG} --db postgresql+psycopg://saksi@127.0.0.1:9/saksi",
        ),
        Case("no passphrase set", USAGE, NEW_LOG, passphrase=None),
        Case("passphrase too short", USAGE, NEW_LOG, passphrase="short"),
        Case("missing --passphrase-file", IO, f"{NEW_LOG} --passphrase-file {{tmp}}/x"),
        Case("missing --policy", IO, f"{NEW_LOG} --policy {{tmp}}/none"),
        Case("malformed --policy", USAGE, f"{NEW_LOG} --policy {{not_json}}"),
        Case("missing --admin-key", IO, f"{NEW_LOG} --admin-key {{tmp}}/none"),
        Case(
            "an admin key that does not open",
            FAILED,
            f"{NEW_LOG} --admin-key {{admin}}",
            passphrase=WRONG,
        ),
    ],
    ("saksi", "check"): [
        Case("no log in --dir", IO, "--dir {tmp}"),
        Case("malformed log.vkey", USAGE, "--dir {junk_dir} --db {db}"),
        Case("another log's log.vkey", FAILED, "--dir {other_dir} --db {db}"),
        Case("unsupported --db", USAGE, "--dir {dir} --db bogus://x"),
        Case(
            "missing --trusted-checkpoint",
            IO,
            "--dir {dir} --db {db} --trusted-checkpoint {tmp}/none",
        ),
    ],
    ("saksi", "publish"): [
        Case("no log in --dir", IO, "--dir {tmp} --out {tmp}/out --once"),
        Case(
            "another log's log.vkey",
            FAILED,
            "--dir {other_dir} --db {db} --out {tmp}/out --once",
        ),
        Case(
            "a malformed log.vkey",
            USAGE,
            "--dir {junk_dir} --db {db} --out {tmp}/out --once",
        ),
        Case("--out in no directory", IO, "--dir {dir} --out {tmp}/no/out --once"),
        Case("--out is a file", USAGE, "--dir {dir} --out {not_json} --once"),
        Case("--interval 0", USAGE, "--dir {dir} --out {tmp}/out --interval 0"),
    ],
    ("saksi", "backup"): [
        Case("no log in --dir", IO, "--dir {tmp} --out {tmp}/b.db"),
        Case(
            "another log's log.vkey",
            FAILED,
            "--dir {other_dir} --db {db} --out {tmp}/b",
        ),
        Case("an --out that exists", USAGE, "--dir {dir} --db {db} --out {not_json}"),
        Case("unsupported --db", USAGE, "--dir {dir} --db bogus://x --out {tmp}/b"),
        Case("--out in no directory", IO, "--dir {dir} --db {db} --out {tmp}/no/b"),
    ],
    ("saksi", "restore"): [
        Case("no backup file", IO, "{tmp}/none.db --dir {dir}"),
        Case("not a database", IO, "{not_json} --dir {dir}"),
        Case("another log's copy", FAILED, "{db_file} --dir {other_dir}"),
        Case("unsupported --db", USAGE, "{not_json} --dir {dir} --db bogus://x"),
    ],
    ("saksi", "monitor"): [
        Case(
            "a checkpoint under another key", FAILED, "--config {monitor_other} --once"
        ),
        Case("an unreachable log", IO, "--config {monitor_down} --once"),
        Case("a malformed configuration", USAGE, "--config {not_json} --check-config"),
        Case("missing --config", USAGE, "--once"),
        Case("no configuration file", IO, "--config {tmp}/none.toml --once"),
    ],
    ("saksi", "audit", "plan"): [
        Case("missing --name", USAGE, "--dir {dir} --db {db} --key {admin}"),
        Case(
            "--seed-after 0",
            USAGE,
            f"--url {DOWN} --key {{admin}} --name x --seed-after 0",
        ),
        Case(
            "the margin method on a party ballot",
            USAGE,
            "--dir {dir} --db {db} --key {admin} --name x --ballot pdpr",
        ),
        Case(
            "unreachable --url", IO, f"--url {DOWN} --key {{admin}} --name x --size 3"
        ),
    ],
    ("saksi", "audit", "sample"): [
        Case("missing --plan", USAGE, "--dir {dir} --db {db}"),
        Case("entry 0 is no plan", FAILED, "--dir {dir} --db {db} --plan 0"),
        Case(
            "no directory for --out",
            IO,
            "--dir {dir} --db {db} --plan 0 --out {tmp}/none/sample.json",
        ),
    ],
    ("saksi", "audit", "report"): [
        Case("no audit named", USAGE, "--out {tmp}/report"),
        Case(
            "two audits named",
            USAGE,
            "--audit {not_json} --log {tiles} --out {tmp}/report",
        ),
        Case("not an audit's JSON", USAGE, "--audit {not_json} --out {tmp}/report"),
        Case(
            "JSON without an audit's figures",
            USAGE,
            "--audit {checks_json} --out {tmp}/report",
        ),
        Case("missing --audit file", IO, "--audit {tmp}/none.json --out {tmp}/r"),
        Case("--log without --key", USAGE, "--log {tiles} --out {tmp}/report"),
        Case("unreachable --log", IO, f"--log {DOWN} --key {{vkey}} --out {{tmp}}/r"),
        Case(
            "not a sample file",
            USAGE,
            "--audit {not_json} --sample {not_json} --out {tmp}/report",
        ),
        Case(
            "a sample file past the bound",
            USAGE,
            "--audit {not_json} --sample {huge} --out {tmp}/report",
        ),
    ],
    ("saksi", "export", "bundle"): [
        Case("no selection", USAGE, "--dir {dir} --db {db} --out {tmp}/b.bundle"),
        Case(
            "bad --region",
            USAGE,
            "--dir {dir} --db {db} --region 3x --out {tmp}/b.bundle",
        ),
        Case(
            "a --checkpoint that is not this log's",
            FAILED,
            "--dir {dir} --db {db} --region 31 --checkpoint {proof} --out {tmp}/b",
        ),
        Case(
            "missing --checkpoint file",
            IO,
            "--dir {dir} --db {db} --region 31 --checkpoint {tmp}/x --out {tmp}/b",
        ),
        Case(
            "--out in no directory",
            IO,
            "--dir {dir} --db {db} --region 31 --out {tmp}/no/b.bundle",
        ),
        Case("no log in --dir", IO, "--dir {tmp} --region 31 --out {tmp}/b.bundle"),
    ],
    ("saksi", "serve"): [
        Case("bad --listen", USAGE, "--dir {dir} --listen localhost"),
        Case("no log in --dir", IO, "--dir {tmp} --listen {listen}"),
        Case("wrong passphrase", FAILED, SERVE, passphrase=WRONG),
        Case("missing --passphrase-file", IO, f"{SERVE} --passphrase-file {{tmp}}/x"),
        Case(
            "missing --trusted-checkpoint",
            IO,
            f"{SERVE} --trusted-checkpoint {{tmp}}/x",
        ),
        Case("--workers 2 on SQLite", USAGE, f"{SERVE} --workers 2"),
        Case("--workers 0", USAGE, f"{SERVE} --workers 0"),
    ],
    ("saksi", "keys", "new"): [
        Case("--out exists", USAGE, "--out {admin} --kdf interactive"),
        Case("--out in no directory", IO, "--out {tmp}/no/k.key"),
        Case("no passphrase set", USAGE, "--out {tmp}/k.key", passphrase=None),
        Case("passphrase too short", USAGE, "--out {tmp}/k.key", passphrase="x"),
        Case(
            "missing --passphrase-file",
            IO,
            "--out {tmp}/k.key --passphrase-file {tmp}/none",
        ),
    ],
    ("saksi", "keys", "show"): [
        Case("--key and --pem", USAGE, "--key {admin} --pem {public_pem}"),
        Case("missing --key", IO, "--key {tmp}/none"),
        Case("malformed --key", USAGE, "--key {not_json}"),
        Case("wrong passphrase", FAILED, "--key {admin}", passphrase=WRONG),
        Case("missing --pem", IO, "--pem {tmp}/none"),
        Case("--pem not a PEM", USAGE, "--pem {not_json}"),
    ],
    ("saksi", "keys", "export"): [
        Case("nothing to export", USAGE, "--key {admin}"),
        Case("missing --key", IO, "--key {tmp}/none --public-pem {tmp}/p"),
        Case(
            "wrong passphrase",
            FAILED,
            "--key {admin} --public-pem {tmp}/p",
            passphrase=WRONG,
        ),
        Case("--public-pem exists", USAGE, "--key {admin} --public-pem {vkey}"),
        Case(
            "--private-pem in no directory", IO, "--key {admin} --private-pem {tmp}/a/p"
        ),
    ],
    ("saksi", "keys", "import"): [
        Case("missing --pem", IO, "--pem {tmp}/none --out {tmp}/k.key"),
        Case(
            "a PEM that does not open",
            FAILED,
            "--pem {private_pem} --out {tmp}/k.key",
            passphrase=WRONG,
        ),
        Case("--pem not a private key", USAGE, "--pem {public_pem} --out {tmp}/k.key"),
        Case("--out exists", USAGE, "--pem {private_pem} --out {admin}"),
    ],
    ("saksi", "keys", "grant"): [
        Case("no log named", USAGE, GRANT),
        Case(
            "bad --public-key",
            USAGE,
            "--db {db} --admin-key {admin} --public-key ab --role tps",
        ),
        Case("unreachable --url", IO, f"--url {DOWN} {GRANT}"),
        Case("missing --admin-key", IO, f"--url {DOWN} {GRANT} --admin-key {{tmp}}/x"),
        Case("wrong passphrase", FAILED, f"--db {{db}} {GRANT}", passphrase=WRONG),
        Case(
            "not the pinned log",
            FAILED,
            f"--db {{db}} {GRANT} --log-key {{other_vkey}}",
        ),
    ],
    ("saksi", "keys", "revoke"): [
        Case("unreachable --url", IO, f"--url {DOWN} {REVOKE}"),
        Case("missing --admin-key", IO, f"--url {DOWN} {REVOKE} --admin-key {{tmp}}/x"),
        Case("a key never granted", FAILED, f"--db {{db}} {REVOKE}"),
    ],
    ("saksi", "keys", "list"): [
        Case("no log named", USAGE),
        Case("unreachable --url", IO, f"--url {DOWN}"),
        Case("--size beyond the log", FAILED, "--db {db} --size 99"),
    ],
    ("saksi", "keys", "provision"): [
        Case("bad --prefix", USAGE, f"--db {{db}} {PROVISION} district --prefix 123"),
        Case(
            "--level above --prefix",
            USAGE,
            f"--db {{db}} {PROVISION} province --prefix 3101",
        ),
        Case("unreachable --url", IO, f"--url {DOWN} {PROVISION} district --prefix 31"),
        Case(
            "missing --admin-key",
            IO,
            f"--url {DOWN} {PROVISION} district --prefix 31 --admin-key {{tmp}}/x",
        ),
        Case(
            "wrong passphrase",
            FAILED,
            f"--db {{db}} {PROVISION} district --prefix 31",
            passphrase=WRONG,
        ),
        Case(
            "missing --key-passphrase-file",
            IO,
            f"--db {{db}} {PROVISION} district --prefix 31 "
            "--key-passphrase-file {tmp}/x",
        ),
        Case(
            "no regions in the log",
            FAILED,
            f"--db {{db}} {PROVISION} district --prefix 31",
        ),
    ],
    ("saksi", "submit"): [
        Case("no record file", USAGE, f"--url {DOWN} --key {{admin}}"),
        Case("unreachable --url", IO, f"--url {DOWN} --key {{admin}} {{record}}"),
        Case(
            "missing record file",
            IO,
            f"--url {DOWN} --key {{admin}} {{tmp}}/none.json",
        ),
        Case("malformed record", USAGE, f"--url {DOWN} --key {{admin}} {{not_json}}"),
        Case("missing --key", IO, f"--url {DOWN} --key {{tmp}}/none {{record}}"),
        Case(
            "wrong passphrase",
            FAILED,
            "--db {db} --key {admin} {record}",
            passphrase=WRONG,
        ),
        Case(
            "not the pinned log",
            FAILED,
            "--db {db} --key {admin} {record} --log-key {other_vkey}",
        ),
        Case("refused by the log", FAILED, "--db {db} --key {admin} {record}"),
    ],
    # A pinned log at --url that is down is retried for ~30 s, and the demo
    # always pins: reachability is covered by the other commands.
    ("saksi", "demo"): [
        Case("--count below 2", USAGE, f"--url {DOWN} --dir {{dir}} --count 1"),
        Case("no log in --dir", IO, f"--url {DOWN} --dir {{tmp}}"),
        Case("missing --data", IO, f"--url {DOWN} --dir {{dir}} --data {{tmp}}/none"),
        Case(
            "wrong passphrase",
            FAILED,
            f"--url {DOWN} --dir {{dir}}",
            passphrase=WRONG,
        ),
    ],
    ("saksi", "regions", "load"): [
        Case(
            "kawalpemilu2019 without --path",
            USAGE,
            f"--url {DOWN} --key {{admin}} --format kawalpemilu2019",
        ),
        Case(
            "missing --wilayah",
            IO,
            f"--url {DOWN} --key {{admin}} --wilayah {{tmp}}/none",
        ),
        Case("missing --key", IO, f"--url {DOWN} --key {{tmp}}/none --prefix 3101"),
        Case("unreachable --url", IO, f"--url {DOWN} --key {{admin}} --prefix 3101"),
    ],
    ("saksi", "results", "import"): [
        Case(
            "missing PATH",
            IO,
            f"--url {DOWN} --key {{admin}} --format sirekap {{tmp}}/none",
        ),
        Case(
            "malformed PATH",
            USAGE,
            f"--url {DOWN} --key {{admin}} --format sirekap {{not_json}}",
        ),
        Case(
            "wrong passphrase",
            FAILED,
            f"--url {DOWN} --key {{admin}} --format sirekap {{station}}",
            passphrase=WRONG,
        ),
        Case(
            "unreachable --url",
            IO,
            f"--url {DOWN} --key {{admin}} --format sirekap {{station}}",
        ),
    ],
    ("saksi", "results", "recap"): [
        Case("bad --region", USAGE, f"--url {DOWN} --keys {{dir}} --region 1"),
        Case(
            "missing --keys",
            IO,
            f"--url {DOWN} --keys {{tmp}}/none",
        ),
        Case("unreachable --url", IO, f"--url {DOWN} --keys {{dir}}"),
    ],
    ("saksi", "results", "show"): [
        Case("no log named", USAGE),
        Case("bad --region", USAGE, f"--url {DOWN} --region 12345"),
        Case("unreachable --url", IO, f"--url {DOWN}"),
    ],
    ("saksi-verify", "checkpoint"): [
        Case("unreachable --log", IO, f"--log {DOWN} --key {{tiles_vkey}}"),
        Case("not a verifier key", USAGE, "--log {tiles} --key {not_json}"),
        Case("signed by another key", FAILED, "--log {tiles} --key {tiles_other}"),
    ],
    ("saksi-verify", "inclusion"): [
        Case("nothing to look for", USAGE, TILES),
        Case("unreachable --log", IO, f"--log {DOWN} --key {{tiles_vkey}} --index 0"),
        Case(
            "missing --receipt",
            IO,
            f"{TILES} --receipt {{tmp}}/none",
        ),
        Case(
            "signed by another key",
            FAILED,
            "--log {tiles} --key {tiles_other} --index 0",
        ),
    ],
    ("saksi-verify", "consistency"): [
        Case("nothing to compare", USAGE, "--key {tiles_vkey}"),
        Case(
            "missing --old",
            IO,
            f"{TILES} --old {{tmp}}/none --new {{tmp}}/none",
        ),
    ],
    ("saksi-verify", "audit"): [
        Case("neither --log nor --bundle", USAGE, "--key {tiles_vkey}"),
        Case("unreachable --log", IO, f"--log {DOWN} --key {{tiles_vkey}}"),
        Case(
            "missing --key file",
            IO,
            "--log {tiles} --key {tmp}/none",
        ),
        Case("signed by another key", FAILED, "--log {tiles} --key {tiles_other}"),
    ],
    ("saksi-verify", "bundle"): [
        Case(
            "unreachable --log",
            IO,
            f"--log {DOWN} --key {{tiles_vkey}} --out {{tmp}}/b",
        ),
        Case("--out in no directory", IO, f"{TILES} --out {{tmp}}/no/b"),
    ],
    ("saksi-verify", "proof"): [
        Case(
            "a tampered proof",
            FAILED,
            "{tampered_proof} --key {proof_vkey} --leaf-hash {proof_leaf}",
        ),
        Case("bad --leaf-hash", USAGE, "{proof} --key {proof_vkey} --leaf-hash xyz"),
        Case(
            "missing proof file",
            IO,
            "{tmp}/none --key {proof_vkey}",
        ),
    ],
    ("saksi-verify", "check-bundle"): [
        Case("not a bundle", FAILED, "{not_json} --key {vkey}"),
        Case("missing bundle file", IO, "{tmp}/none.bundle --key {vkey}"),
        Case("--key names no file", IO, "{not_json} --key {tmp}/none.vkey"),
        Case("missing --pin file", IO, "{not_json} --key {vkey} --pin {tmp}/none"),
    ],
    ("saksi-verify", "sample"): [
        Case("missing --plan", USAGE, TILES),
        Case("an opaque entry is no plan", FAILED, f"{TILES} --plan 0"),
        Case("unreachable --log", IO, f"--log {DOWN} --key {{tiles_vkey}} --plan 0"),
        Case("missing --check file", IO, f"{TILES} --plan 0 --check {{tmp}}/none"),
    ],
    ("saksi-verify", "compare"): [
        Case(
            "unreachable --log", IO, f"--log {DOWN} --key {{tiles_vkey}} --peer {DOWN}"
        ),
    ],
    ("saksi-verify", "witness"): [
        Case(
            "bad --listen",
            USAGE,
            "--log-key {tiles_vkey} --key-file {witness_key} --listen nowhere",
        ),
        Case(
            "missing --key-file",
            IO,
            "--log-key {tiles_vkey} --key-file {tmp}/none --listen 127.0.0.1:0",
        ),
    ],
    ("saksi-verify", "witness-key"): [
        Case("--out exists", USAGE, "--name w.example --out {vkey}"),
        Case("--out in no directory", IO, "--name w.example --out {tmp}/no/w.key"),
    ],
}


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    children = [
        (name, child)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, child in action.choices.items()
    ]
    if not children:
        return [(path, parser)]
    return [leaf for name, child in children for leaf in _leaves(child, (*path, name))]


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return _leaves(build_parser(), ("saksi",)) + _leaves(
        verify_parser(), ("saksi-verify",)
    )


def _needs_arguments(parser: argparse.ArgumentParser) -> bool:
    return any(a.required for a in parser._actions) or any(
        g.required for g in parser._mutually_exclusive_groups
    )


def _params() -> list[object]:
    params = []
    for path, parser in _commands():
        name = " ".join(path)
        generated = [Case("unknown flag", USAGE, "--no-such-flag")]
        if _needs_arguments(parser):
            generated.append(Case("no arguments", USAGE))
        for each in generated + CASES.get(path, []):
            params.append(pytest.param(path, each, id=f"{name}: {each.why}"))
    return params


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One log and the files the cases name, by placeholder."""
    base = tmp_path_factory.mktemp("exit-codes")
    log = base / "log"
    init_log(log, f"sqlite:///{log / 'saksi.db'}", ORIGIN, PASS)
    admin = load_key_file(log / "admin.key", PASS.encode())
    other = str(Ed25519Signer(ORIGIN, bytes([9]) * 32).verifier_key)
    other_dir, junk_dir = base / "other", base / "junk"
    other_dir.mkdir()
    (other_dir / "log.vkey").write_text(other + "\n")
    junk_dir.mkdir()
    (junk_dir / "log.vkey").write_text("not a key\n")
    checks_json = base / "checks.json"
    checks_json.write_text('{"checks": []}')
    not_json = base / "not.json"
    not_json.write_text("this is { not JSON\n")
    huge = base / "huge.json"  # sparse: past every sample file's bound
    with huge.open("wb") as f:
        f.truncate((256 << 20) + 1)
    record = base / "record.json"
    record.write_text(
        json.dumps({"schema": "nothing.known/v1", "subject": "x/1", "body": {}})
    )
    private_pem = base / "private.pem"
    private_pem.write_bytes(private_key_to_pem(admin, PASS.encode()))
    public_pem = base / "public.pem"
    run_saksi(
        "keys", "export", "--key", str(log / "admin.key"), "--public-pem",
        str(public_pem), passphrase=PASS,
    )  # fmt: skip
    station = base / "station.jsonl"
    with SAMPLE.open(encoding="utf-8") as sample:
        station.write_text(sample.readline(), encoding="utf-8")
    witness_key = base / "witness.key"
    witness_key.write_text(WitnessKey.generate("w.example").to_text())
    witness_key.chmod(0o600)
    proof = next(
        p
        for p in load_vectors("tlog_proof.json")["proofs"]
        if p["id"] == "reference-leaf5-cosigned"
    )
    proof_file, tampered = base / "leaf5.tlog-proof", base / "tampered.tlog-proof"
    proof_file.write_text(proof["proof_text"])
    tampered.write_text(proof["proof_text"].replace("index 5", "index 4"))
    key = NoteKey("exit-codes.example/tiles", bytes([3]) * 32)
    server = TileServer()
    server.serve(view([b"a", b"b", b"c"], key, key.name))
    # A small Saksi log, served as tiles, for the monitor.
    saksi_log = RecordLog(
        f"sqlite:///{base / 'monitored.db'}",
        Ed25519Signer(TEST_ORIGIN, bytes([5]) * 32),
    )
    try:
        entries = [saksi_log.ledger.reader.entry_bytes(i) for i in range(1)]
    finally:
        saksi_log.close()
    monitored = NoteKey(TEST_ORIGIN, bytes([5]) * 32)
    saksi_tiles = TileServer()
    saksi_tiles.serve(view(entries, monitored, TEST_ORIGIN))
    monitors = {}
    for name, vkey, url in (
        (
            "monitor_other",
            NoteKey(TEST_ORIGIN, bytes([4]) * 32).verifier_key,
            saksi_tiles.url,
        ),
        ("monitor_down", monitored.verifier_key, f"http://127.0.0.1:{_free_port()}"),
    ):
        (base / f"{name}.vkey").write_text(f"{vkey}\n")
        config = base / f"{name}.toml"
        config.write_text(
            f'[log]\nurl = "{url}"\ntiles = "{url}"\nkey = "{name}.vkey"\n'
            f'[monitor]\nstate = "{name}-state"\nalert_log = "{name}.jsonl"\n'
            "workers = 0\n"
        )
        monitors[name] = str(config)
    try:
        yield {
            "dir": str(log),
            "db": f"sqlite:///{log / 'saksi.db'}",
            "db_file": str(log / "saksi.db"),
            "admin": str(log / "admin.key"),
            "vkey": str(log / "log.vkey"),
            "other_vkey": other,
            "other_dir": str(other_dir),
            "junk_dir": str(junk_dir),
            "not_json": str(not_json),
            "huge": str(huge),
            "checks_json": str(checks_json),
            "record": str(record),
            "private_pem": str(private_pem),
            "public_pem": str(public_pem),
            "station": str(station),
            "witness_key": str(witness_key),
            "proof": str(proof_file),
            "tampered_proof": str(tampered),
            "proof_vkey": proof["log_vkey"],
            "proof_leaf": proof["leaf_hash_hex"],
            "tiles": server.url,
            "tiles_vkey": str(key.verifier_key),
            "tiles_other": str(NoteKey(key.name, bytes([4]) * 32).verifier_key),
            **monitors,
        }
    finally:
        server.stop()
        saksi_tiles.stop()


def test_every_command_has_cases():
    commands = {path for path, _ in _commands()}
    assert set(CASES) == commands, (
        f"commands without cases: {sorted(commands - set(CASES))}; "
        f"cases for no command: {sorted(set(CASES) - commands)}"
    )
    assert all(CASES.values())


def _run(path: tuple[str, ...], argv: list[str], passphrase: str | None):
    if path[0] == "saksi":
        return run_saksi(*path[1:], *argv, passphrase=passphrase, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "SAKSI_KEY_PASSPHRASE"}
    return subprocess.run(
        [sys.executable, "-m", "verifier.cli", *path[1:], *argv],
        capture_output=True,
        text=True,
        env=env,  # SAKSI_VERIFY_STATE: this test's (conftest)
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("path", "each"), _params())
def test_exit_code(world, tmp_path, path, each):
    names = world | {"tmp": str(tmp_path), "listen": f"127.0.0.1:{_free_port()}"}
    argv = each.argv(names)
    out = _run(path, argv, each.passphrase)
    shown = f"{' '.join(path)} {' '.join(argv)}\n{out.stderr}"
    assert out.returncode == each.want, shown
    assert "Traceback" not in out.stderr, shown
    prog = path[0]
    if "usage:" in out.stderr:  # argparse
        assert f"{prog} " in out.stderr, shown
        assert "error:" in out.stderr, shown
    else:
        assert f"{prog}: error: " in out.stderr, shown
        if prog == "saksi":
            assert "saksi: hint: " in out.stderr, shown
