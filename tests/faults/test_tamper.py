"""Tamper detection: a database administrator edits rows behind the service's back.

Each trial copies a clean log, drops the append-only triggers (as an administrator
could), applies one random mutation, and runs ``check_log``: it must report the
problem and, where the mutation touched an entry, name that entry's index. The
start-up check is run too and its detections counted (with the triggers dropped
it refuses on the guards alone; ``test_writer_tamper.py`` puts them back and
tries each tampering on the writer). An untouched copy is checked as well: it
must pass. The fitness run tries 1,000 mutations per backend (RELIABILITY.md
T1); SAKSI_TAMPER_TRIALS overrides the count.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.errors import IntegrityFailure
from ledger.fullcheck import check_log
from ledger.ledger import Ledger
from ledger.startup import recover_state
from ledger.storage.rows import leaf_key
from ledger.storage.sql import SqlStorage
from tests.conftest import ORIGIN, FixedClock, create_log
from tests.evidence import scale

SIZE = 1300

Mutation = Callable[[sa.Connection, random.Random, str], int | None]


def _flip(blob: bytes, rng: random.Random) -> bytes:
    out = bytearray(blob)
    out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _row(conn, sql, **params):
    return conn.execute(sa.text(sql), params).first()


def edit_entry_byte(conn, rng, _):
    i = rng.randrange(SIZE)
    data = _row(conn, "SELECT data FROM entries WHERE idx = :i", i=i)[0]
    conn.execute(
        sa.text("UPDATE entries SET data = :d WHERE idx = :i"),
        {"d": _flip(bytes(data), rng), "i": i},
    )
    return i


def rewrite_entry_consistently(conn, rng, _):
    # The attacker replaces an entry and recomputes its leaf hash: tiles differ.
    import hashlib

    i = rng.randrange(SIZE)
    data = b"forged result " + rng.randbytes(40)
    h = hashlib.sha256(b"\0" + data).digest()
    conn.execute(
        sa.text(
            "UPDATE entries SET data = :d, leaf_hash = :h, leaf_key = :k WHERE idx = :i"
        ),
        {"d": data, "h": h, "k": leaf_key(h), "i": i},
    )
    return i


def edit_leaf_hash(conn, rng, _):
    i = rng.randrange(SIZE)
    h = _row(conn, "SELECT leaf_hash FROM entries WHERE idx = :i", i=i)[0]
    conn.execute(
        sa.text("UPDATE entries SET leaf_hash = :h WHERE idx = :i"),
        {"h": _flip(bytes(h), rng), "i": i},
    )
    return i


def edit_leaf_key(conn, rng, _):
    # Breaks dedupe lookups (a repeat would get a second leaf), not the tree.
    i = rng.randrange(SIZE)
    conn.execute(
        sa.text("UPDATE entries SET leaf_key = leaf_key + 1 WHERE idx = :i"),
        {"i": i},
    )
    return i


def delete_entry(conn, rng, _):
    i = rng.randrange(SIZE)
    conn.execute(sa.text("DELETE FROM entries WHERE idx = :i"), {"i": i})
    return i


def swap_entries(conn, rng, _):
    i, j = sorted(rng.sample(range(SIZE), 2))
    a = _row(conn, "SELECT data, leaf_hash, leaf_key FROM entries WHERE idx = :i", i=i)
    b = _row(conn, "SELECT data, leaf_hash, leaf_key FROM entries WHERE idx = :i", i=j)
    conn.execute(sa.text("DELETE FROM entries WHERE idx IN (:i, :j)"), {"i": i, "j": j})
    conn.execute(
        sa.text(
            "INSERT INTO entries (idx, data, leaf_hash, leaf_key) "
            "VALUES (:i, :d, :h, :k)"
        ),
        [
            {"i": i, "d": b[0], "h": b[1], "k": b[2]},
            {"i": j, "d": a[0], "h": a[1], "k": a[2]},
        ],
    )
    return i


def truncate_entries(conn, rng, _):
    k = rng.randrange(SIZE - 300, SIZE)
    conn.execute(sa.text("DELETE FROM entries WHERE idx >= :k"), {"k": k})
    return k


def append_extra_entry(conn, rng, _):
    conn.execute(
        sa.text(
            "INSERT INTO entries (idx, data, leaf_hash, leaf_key) "
            "VALUES (:i, :d, :h, 0)"
        ),
        {"i": SIZE, "d": b"smuggled", "h": rng.randbytes(32)},
    )
    return None


def edit_tile(conn, rng, _):
    level, idx, hashes = _row(
        conn,
        "SELECT level, idx, hashes FROM tiles ORDER BY level, idx LIMIT 1 OFFSET :o",
        o=rng.randrange(5),
    )
    conn.execute(
        sa.text("UPDATE tiles SET hashes = :h WHERE level = :l AND idx = :i"),
        {"h": _flip(bytes(hashes), rng), "l": level, "i": idx},
    )
    return None


def edit_tile_root(conn, rng, _):
    level, idx, root = _row(
        conn,
        "SELECT level, idx, root FROM tiles ORDER BY level, idx LIMIT 1 OFFSET :o",
        o=rng.randrange(5),
    )
    conn.execute(
        sa.text("UPDATE tiles SET root = :r WHERE level = :l AND idx = :i"),
        {"r": _flip(bytes(root), rng), "l": level, "i": idx},
    )
    return None


def delete_tile(conn, rng, _):
    conn.execute(
        sa.text("DELETE FROM tiles WHERE idx = :i AND level = 0"),
        {"i": rng.randrange(5)},
    )
    return None


def edit_checkpoint(conn, rng, _):
    size, note, root = _row(
        conn,
        "SELECT size, note, root FROM checkpoints ORDER BY size LIMIT 1 OFFSET :o",
        o=rng.randrange(1, 8),
    )
    if rng.random() < 0.5:
        conn.execute(
            sa.text("UPDATE checkpoints SET note = :n WHERE size = :s"),
            {"n": _flip(bytes(note), rng), "s": size},
        )
    else:
        conn.execute(
            sa.text("UPDATE checkpoints SET root = :r WHERE size = :s"),
            {"r": _flip(bytes(root), rng), "s": size},
        )
    return None


def edit_head(conn, rng, _):
    if rng.random() < 0.5:
        conn.execute(
            sa.text("UPDATE tree_head SET size = size - :k"), {"k": rng.randint(1, 50)}
        )
    else:
        root = _row(conn, "SELECT root FROM tree_head")[0]
        conn.execute(
            sa.text("UPDATE tree_head SET root = :r"), {"r": _flip(bytes(root), rng)}
        )
    return None


MUTATIONS: list[Mutation] = [
    edit_entry_byte,
    rewrite_entry_consistently,
    edit_leaf_hash,
    edit_leaf_key,
    delete_entry,
    swap_entries,
    truncate_entries,
    append_extra_entry,
    edit_tile,
    edit_tile_root,
    delete_tile,
    edit_checkpoint,
    edit_head,
]


def drop_triggers(conn: sa.Connection, dialect: str) -> None:
    if dialect == "sqlite":
        names = conn.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        )
        for (name,) in list(names):
            conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
    else:
        for table in ("entries", "tiles", "checkpoints", "tree_head"):
            conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def build_clean_log(url: str, signer) -> None:
    storage = create_log(url, signer)
    ledger = Ledger.of_entries(
        storage, signer, signer.verifier_key, ORIGIN, clock=FixedClock()
    )
    ledger.start()
    rng = random.Random(7)
    done = 0
    while done < SIZE:
        count = min(rng.choice([1, 3, 50, 200]), SIZE - done)
        ledger.append_many(
            [f"{done + k}:".encode() + rng.randbytes(300) for k in range(count)]
        )
        done += count
    ledger.close()
    storage.close()


def trials() -> int:
    return int(os.environ.get("SAKSI_TAMPER_TRIALS", "0"))


@pytest.mark.slow
def test_every_mutation_is_caught(backend, tmp_path, signer, request, evidence):
    n_trials = trials() or scale(240 if backend == "sqlite" else 60, 1_000)
    if backend == "sqlite":
        template = tmp_path / "clean.db"
        build_clean_log(f"sqlite:///{template}", signer)

        def fresh(n: int) -> str:
            path = tmp_path / f"trial-{n}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"

        def discard(url: str) -> None:
            Path(url.removeprefix("sqlite:///")).unlink()
    else:
        cluster = request.getfixturevalue("pg_cluster")
        template_url = cluster.new_database()
        build_clean_log(template_url, signer)
        template_name = sa.engine.make_url(template_url).database
        admin = sa.create_engine(cluster.url(), isolation_level="AUTOCOMMIT")

        def fresh(n: int) -> str:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(f'CREATE DATABASE "t{n}" TEMPLATE "{template_name}"')
                )
            return cluster.url(f"t{n}")

        def discard(url: str) -> None:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(f'DROP DATABASE "{sa.engine.make_url(url).database}"')
                )

    # The clean control: an untouched copy passes both checks.
    url = fresh(n_trials)
    storage = SqlStorage.open(url)
    clean_problems = check_log(storage, signer.verifier_key, ORIGIN).problems
    recover_state(storage, signer.verifier_key, ORIGIN)
    storage.close()
    discard(url)
    assert not clean_problems, clean_problems

    rng = random.Random(1234)
    caught = at_start = exact = named = 0
    kinds: Counter[str] = Counter()
    for n in range(n_trials):
        mutation = MUTATIONS[n % len(MUTATIONS)]
        url = fresh(n)
        storage = SqlStorage.open(url)
        with storage.engine.begin() as conn:
            drop_triggers(conn, storage.dialect)
            bad_index = mutation(conn, rng, storage.dialect)
        report = check_log(storage, signer.verifier_key, ORIGIN)
        # The dropped triggers are reported first; the mutation must be too.
        assert report.problems[0].kind == "guards"
        data = [p for p in report.problems if p.kind != "guards"]
        assert data, f"{mutation.__name__} was not detected"
        first = data[0]
        if bad_index is not None and mutation is not truncate_entries:
            # Exact where stored tiles allow it, else the narrowest signed range.
            end = first.end if first.end is not None else first.index + 1
            assert first.index <= bad_index < end, (mutation.__name__, first)
            exact += end == first.index + 1
            named += 1
        caught += 1
        kinds[mutation.__name__] += 1
        try:
            recover_state(storage, signer.verifier_key, ORIGIN)
        except IntegrityFailure:
            at_start += 1
        storage.close()
        discard(url)
    print(
        f"\n{backend}: {caught}/{n_trials} mutations detected by check, "
        f"{at_start} of them also by the start-up check; {exact}/{named} entry "
        f"mutations named by exact index; kinds: {dict(kinds)}"
    )
    assert caught == n_trials
    evidence.record(
        "T1",
        attempts=n_trials,
        detected=caught,
        false_alarms=len(clean_problems),
        backend=storage.dialect,
        kinds=len(kinds),
        entry_mutations_index_named=named,
        named_exactly=exact,
        refused_at_start=at_start,
        clean_copies_passed=1,
    )
