"""Fixtures: fixed test keys, a fixed clock, fresh logs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from keys import Ed25519Signer
from ledger.ledger import Ledger
from ledger.publisher import CheckpointPublisher
from ledger.sequencer import SequencerConfig
from ledger.storage.rows import Head, LogMeta
from ledger.storage.sql import SqlStorage
from tests.helpers import TEST_SEED
from tests.pg import PgCluster, find_pg_bin
from verifier.rfc6962 import EMPTY_ROOT

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")

ORIGIN = "test.saksi.example/log"

# The fitness size knob and the `evidence` fixture (tests/evidence.py).
pytest_plugins = ["tests.evidence"]


@pytest.fixture(autouse=True)
def _observer_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's saksi-verify state (trusted checkpoints, audit progress) is
    its own, never the user's ~/.local/state."""
    monkeypatch.setenv("SAKSI_VERIFY_STATE", str(tmp_path / "observer-state"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = find_pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is required in CI")
        pytest.skip("PostgreSQL binaries not installed")
    cluster = PgCluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer(ORIGIN, TEST_SEED)


def create_log(url: str, signer: Ed25519Signer, origin: str = ORIGIN) -> SqlStorage:
    storage = SqlStorage.open(url)
    storage.migrate()
    note = CheckpointPublisher(origin, signer, signer.verifier_key).sign(0, EMPTY_ROOT)
    storage.initialize(
        LogMeta(origin, str(signer.verifier_key)), Head(0, EMPTY_ROOT, note, 1_000)
    )
    return storage


class FixedClock:
    """Starts at a fixed time; every read moves 1 ms forward."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@pytest.fixture
def make_ledger(db_url: str, signer: Ed25519Signer) -> Iterator[Callable[..., Ledger]]:
    opened: list[Ledger] = []
    storage_holder: list[SqlStorage] = []

    def make(**kwargs: object) -> Ledger:
        if not storage_holder:
            storage_holder.append(create_log(db_url, signer))
        storage = SqlStorage.open(db_url)
        config = kwargs.pop("config", SequencerConfig())
        ledger = Ledger.of_entries(
            storage,
            signer,
            signer.verifier_key,
            ORIGIN,
            clock=kwargs.pop("clock", FixedClock()),
            config=config,
            **kwargs,
        )  # type: ignore[arg-type]
        ledger.start()
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        try:
            ledger.close()
        finally:
            ledger.storage.close()
    for storage in storage_holder:
        storage.close()
